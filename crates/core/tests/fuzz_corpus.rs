//! Replays the fuzz corpora and regressions under `cargo test`.
//!
//! Every file in fuzz/corpus/<target>/ (seeds and what libFuzzer kept) and
//! fuzz/regressions/<target>/ (inputs that once failed) goes through the
//! same function the fuzz target runs (fuzz/src/lib.rs, included here as a
//! module), so the invariants are checked in CI without libFuzzer or a
//! nightly toolchain. See docs/fuzzing.md.

#[path = "../../../fuzz/src/lib.rs"]
mod fuzz_checks;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of a directory, sorted, dot files (`.gitkeep`) left out.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// Runs every file under `fuzz/<kind>/<target>/` through its target's
/// checks; returns how many ran, and the failures by file.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let root = fuzz_dir().join(kind);
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut ran = 0;
    let mut failures = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(&(_, check)) = fuzz_checks::TARGETS.iter().find(|(t, _)| *t == name) else {
            panic!("{}: no fuzz target of that name", dir.display());
        };
        for file in files_in(&dir) {
            let data = std::fs::read(&file).unwrap();
            ran += 1;
            if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {why}", file.display()));
            }
        }
    }
    (ran, failures)
}

#[test]
fn every_target_has_seeds() {
    for (target, _) in fuzz_checks::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        assert!(!files_in(&dir).is_empty(), "{}: no seeds", dir.display());
    }
}

#[test]
fn corpus_replays_clean() {
    let (ran, failures) = replay("corpus");
    assert!(ran > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn regressions_replay_clean() {
    let (ran, failures) = replay("regressions");
    // A replay of nothing (a moved directory, a filter gone wrong) would
    // pass without checking anything.
    assert!(ran > 0, "no regression input replayed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
