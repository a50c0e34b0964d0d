//! systemd's socket activation without systemd: `systemd-socket-activate`
//! on free loopback ports, and the `ExecStart=` line of a unit file.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::client::{free_port, is_listening};
use crate::procs::{require_program, wait_until, ProcessGuard};
use crate::tmp::TempDir;

/// `systemd-socket-activate` listening on `ports` loopback sockets (the
/// first on 127.0.0.1, the others on `[::1]`) with `flags`, running `argv`;
/// its stderr in `dir/stderr`. Retried on new ports if another process
/// took one first. Returns the process and its ports.
pub fn socket_activate(
    dir: &TempDir,
    ports: usize,
    flags: &[&str],
    argv: &[&str],
) -> (ProcessGuard, Vec<u16>) {
    let activate = require_program("systemd-socket-activate");
    let mut last = String::new();
    for _ in 0..3 {
        let chosen: Vec<u16> = (0..ports).map(|_| free_port()).collect();
        let mut cmd = Command::new(&activate);
        for (i, port) in chosen.iter().enumerate() {
            let host = if i == 0 { "127.0.0.1" } else { "[::1]" };
            cmd.arg(format!("--listen={host}:{port}"));
        }
        cmd.args(flags)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
        let mut process = ProcessGuard::spawn("systemd-socket-activate", &mut cmd)
            .expect("starting systemd-socket-activate");
        let up = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            is_listening(chosen[0]) || process.try_wait().is_some()
        });
        if up && process.try_wait().is_none() {
            return (process, chosen);
        }
        last = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    }
    panic!("systemd-socket-activate did not start: {last}");
}

/// The command a unit's `ExecStart=` line runs, as systemd 252 reads it
/// (systemd.service(5) "Command lines", systemd.syntax(7) "Quoting"):
/// [`exec_start_parsed`]'s words, then the environment expansion systemd
/// does when it starts the command: `$$` is a literal `$` (skipped after
/// the `:` prefix).
pub fn exec_start(unit_text: &str) -> Vec<String> {
    let (words, expand) = parse_exec_start(unit_text);
    if !expand {
        return words;
    }
    words.iter().map(|w| expand_environment(w)).collect()
}

/// The command of a unit's `ExecStart=` line as systemd stores it when it
/// loads the unit (what `systemd --test` dumps as "Command Line"), before
/// environment expansion: the prefixes `-`, `:`, `+`, `!` dropped from the
/// first word; words split on unquoted white space; `"..."` and `'...'`
/// (anywhere in a word) unquoted; C escapes (`\n`, `\"`, `\\`, `\s`,
/// `\xNN`, `\NNN`, `\uNNNN`...) resolved; a lone `\;` a literal `;`;
/// then, per word, `%%` is `%`. What this does not model panics: other
/// specifiers, the `@` prefix, a lone `;` (a second command), a trailing
/// `\` (a continued line).
pub fn exec_start_parsed(unit_text: &str) -> Vec<String> {
    parse_exec_start(unit_text).0
}

/// The words, and whether the environment is expanded (no `:` prefix).
fn parse_exec_start(unit_text: &str) -> (Vec<String>, bool) {
    let line = unit_text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in:\n{unit_text}"));
    assert!(
        !line.ends_with('\\'),
        "a continued ExecStart= line is not modelled: {line}"
    );
    let mut rest = line.as_bytes();
    let mut words = Vec::new();
    loop {
        while let [b' ' | b'\t' | b'\r' | b'\n', tail @ ..] = rest {
            rest = tail;
        }
        let ends_word = |tail: &[u8]| matches!(tail, [] | [b' ' | b'\t' | b'\r' | b'\n', ..]);
        match rest {
            [] => break,
            [b';', tail @ ..] if ends_word(tail) => {
                panic!("a second command (a lone ;) is not modelled: {line}")
            }
            [b'\\', b';', tail @ ..] if ends_word(tail) => {
                words.push(b";".to_vec());
                rest = tail;
            }
            _ => {
                let (word, tail) = first_word(rest, line);
                words.push(word);
                rest = tail;
            }
        }
    }
    let mut words: Vec<String> = words
        .into_iter()
        .map(|w| String::from_utf8(w).unwrap_or_else(|_| panic!("not UTF-8: {line}")))
        .collect();
    assert!(!words.is_empty(), "an empty ExecStart= line: {unit_text}");
    let mut expand = true;
    let program = words[0].clone();
    let mut path = program.as_str();
    while let Some(c) = path.chars().next().filter(|c| "-@:+!".contains(*c)) {
        assert!(c != '@', "the @ prefix is not modelled: {line}");
        if c == ':' {
            expand = false;
        }
        path = &path[1..];
    }
    words[0] = path.to_owned();
    let words = words.iter().map(|w| expand_specifiers(w, line)).collect();
    (words, expand)
}

/// One word as systemd's `extract_first_word` with `EXTRACT_UNQUOTE |
/// EXTRACT_CUNESCAPE` takes it, and what follows it.
fn first_word<'a>(mut rest: &'a [u8], line: &str) -> (Vec<u8>, &'a [u8]) {
    let mut word = Vec::new();
    let mut quote: Option<u8> = None;
    loop {
        match (rest, quote) {
            ([], None) => return (word, rest),
            ([], Some(q)) => panic!("unterminated {} quote: {line}", q as char),
            ([b'\\', tail @ ..], _) => {
                let (bytes, tail) = unescape(tail, line);
                word.extend_from_slice(&bytes);
                rest = tail;
            }
            ([c, tail @ ..], Some(q)) if *c == q => {
                quote = None;
                rest = tail;
            }
            ([c, tail @ ..], Some(_)) => {
                word.push(*c);
                rest = tail;
            }
            ([c @ (b'"' | b'\''), tail @ ..], None) => {
                quote = Some(*c);
                rest = tail;
            }
            ([b' ' | b'\t' | b'\r' | b'\n', ..], None) => return (word, rest),
            ([c, tail @ ..], None) => {
                word.push(*c);
                rest = tail;
            }
        }
    }
}

/// systemd's `cunescape_one`: the escape after a backslash.
fn unescape<'a>(rest: &'a [u8], line: &str) -> (Vec<u8>, &'a [u8]) {
    let digits = |n: usize, radix: u32| -> (u32, &'a [u8]) {
        let text = rest
            .get(1..=n)
            .and_then(|d| std::str::from_utf8(d).ok())
            .unwrap_or_else(|| panic!("a short escape: {line}"));
        let value = u32::from_str_radix(text, radix)
            .unwrap_or_else(|_| panic!("a bad escape \\{}: {line}", rest[0] as char));
        assert!(value != 0, "\\0 is refused: {line}");
        (value, &rest[1 + n..])
    };
    let char_bytes = |c: u32| -> Vec<u8> {
        char::from_u32(c)
            .unwrap_or_else(|| panic!("not a character: {c:x}: {line}"))
            .to_string()
            .into_bytes()
    };
    match rest {
        [] => panic!("a trailing backslash: {line}"),
        [b'a', tail @ ..] => (vec![7], tail),
        [b'b', tail @ ..] => (vec![8], tail),
        [b'f', tail @ ..] => (vec![12], tail),
        [b'n', tail @ ..] => (vec![b'\n'], tail),
        [b'r', tail @ ..] => (vec![b'\r'], tail),
        [b't', tail @ ..] => (vec![b'\t'], tail),
        [b'v', tail @ ..] => (vec![11], tail),
        [b's', tail @ ..] => (vec![b' '], tail),
        [c @ (b'\\' | b'"' | b'\''), tail @ ..] => (vec![*c], tail),
        [b'x', ..] => {
            let (value, tail) = digits(2, 16);
            (vec![value as u8], tail)
        }
        [b'u', ..] => {
            let (value, tail) = digits(4, 16);
            (char_bytes(value), tail)
        }
        [b'U', ..] => {
            let (value, tail) = digits(8, 16);
            (char_bytes(value), tail)
        }
        [b'0'..=b'7', ..] => {
            // Three octal digits, the first one included.
            let text = std::str::from_utf8(rest.get(..3).unwrap_or_default()).unwrap_or("");
            let value = u32::from_str_radix(text, 8)
                .ok()
                .filter(|v| (1..=255).contains(v))
                .unwrap_or_else(|| panic!("a bad octal escape: {line}"));
            (vec![value as u8], &rest[3..])
        }
        [c, ..] => panic!("an unknown escape \\{}: {line}", *c as char),
    }
}

/// Specifiers in one word: `%%` is `%`; the others are not modelled.
fn expand_specifiers(word: &str, line: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            other => panic!("the specifier %{other:?} is not modelled: {line}"),
        }
    }
    out
}

/// systemd's expansion of one stored word when the command starts: `$$`
/// is `$`; variables (`$NAME` as a word, `${NAME}`) are not modelled.
pub fn expand_environment(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('$') => out.push('$'),
            other => panic!("the variable ${other:?}... in {word:?} is not modelled"),
        }
    }
    out
}

/// The service units `gen systemd` writes and the package installs, each
/// with the `systemd-socket-activate` flags that stand in for its socket
/// unit: `Accept=yes` with the connection on stdin for the template, a
/// listening socket on fd 3 for the daemon.
pub const SERVICE_UNITS: [(&str, &[&str]); 2] = [
    ("inetd-health@.service", &["--accept", "--inetd"]),
    ("inetd-health-daemon.service", &[]),
];

/// Runs the `ExecStart=` command of `unit_text` as systemd would for a
/// socket on one loopback port, with `flags` (from [`SERVICE_UNITS`]).
pub fn activate_unit(dir: &TempDir, unit_text: &str, flags: &[&str]) -> (ProcessGuard, u16) {
    let argv = exec_start(unit_text);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (process, ports) = socket_activate(dir, 1, flags, &argv);
    (process, ports[0])
}
