//! Replays the `frame_decode` fuzz corpus through the fuzz target's checks on
//! stable Rust, so corpus regressions fail `cargo test`.

use std::path::PathBuf;

#[path = "../../../fuzz/checks/frame_decode.rs"]
mod frame_decode;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frame_decode");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no seeds in {}", dir.display());
    for path in paths {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| frame_decode::check(&data));
        assert!(outcome.is_ok(), "{} broke an invariant", path.display());
    }
}
