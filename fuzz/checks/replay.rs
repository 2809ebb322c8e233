//! Replays one committed fuzz corpus through a target's check on stable
//! Rust, for the `cargo test` replay tests of each crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// Runs `check` on every file of `fuzz/corpus/<target>` and fails, naming
/// each offending file, if any of them panics. Called from a crate under
/// `crates/`, whose manifest directory is two levels below the root.
pub(crate) fn replay_corpus(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no seeds in {}", dir.display());
    let mut failed = Vec::new();
    for path in paths {
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "seeds broke an invariant: {failed:?}");
}
