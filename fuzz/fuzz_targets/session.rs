//! Drives one `Session` with arbitrary peer frames and application calls;
//! see `checks/session.rs` for the input format and the invariants.
#![no_main]

#[path = "../checks/session.rs"]
mod session;

libfuzzer_sys::fuzz_target!(|data: &[u8]| session::check(data));
