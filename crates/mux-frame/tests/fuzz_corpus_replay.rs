//! Replays the `frame_decode` fuzz corpus through the fuzz target's checks on
//! stable Rust, so corpus regressions fail `cargo test`.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/frame_decode.rs"]
mod frame_decode;

#[test]
fn fuzz_corpus_replays_cleanly() {
    replay::replay_corpus("frame_decode", frame_decode::check);
}
