//! Feeds arbitrary bytes to `FrameCodec` in input-chosen chunks; see
//! `checks/frame_decode.rs` for the input format and the invariants.
#![no_main]

#[path = "../checks/frame_decode.rs"]
mod frame_decode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| frame_decode::check(data));
