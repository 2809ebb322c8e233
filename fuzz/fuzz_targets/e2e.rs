//! Drives a real `Connection` over a scripted socket with arbitrary peer
//! bytes, socket behaviour and application calls; see `checks/e2e.rs` for
//! the input format and the invariants.
#![no_main]

#[path = "../checks/e2e.rs"]
mod e2e;

libfuzzer_sys::fuzz_target!(|data: &[u8]| e2e::check(data));
