//! The blocks of `docs/` that tests run as written: a fenced block whose
//! info string names it (```` ```toml patroni-8008 ````).

/// The text of the block of `docs/DOC` fenced as ```` ```INFO ````.
///
/// # Panics
/// The document, or the block, is missing: the docs and their test
/// disagree.
pub fn block(doc: &str, info: &str) -> String {
    let path = format!("{}/../../docs/{doc}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let start = text
        .find(&format!("```{info}\n"))
        .unwrap_or_else(|| panic!("no ```{info} block in docs/{doc}"));
    let body = &text[start + info.len() + 4..];
    body[..body.find("```").expect("the block's end")].to_owned()
}
