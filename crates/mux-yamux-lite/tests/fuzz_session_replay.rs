//! Replays the `session` fuzz corpus through the fuzz target's checks on
//! stable Rust, so corpus regressions fail `cargo test`.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/session.rs"]
mod session;

#[test]
fn fuzz_session_corpus_replays_cleanly() {
    replay::replay_corpus("session", session::check);
}
