//! Replays the `session` fuzz corpus through the fuzz target's checks on
//! stable Rust, so corpus regressions fail `cargo test`.

use std::path::PathBuf;

#[path = "../../../fuzz/checks/session.rs"]
mod session;

#[test]
fn fuzz_session_corpus_replays_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/session");
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
        if std::panic::catch_unwind(|| session::check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "seeds broke an invariant: {failed:?}");
}
