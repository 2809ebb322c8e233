//! `CountingAlloc::new` as the global allocator: the process's live bytes
//! are counted; per-thread counts are not, and say so.
#![allow(clippy::arithmetic_side_effects, clippy::unwrap_used)]

use std::hint::black_box;

use mux_alloc_count::{live_bytes, thread_allocations, thread_live_bytes, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn counts_live_bytes_of_the_process_and_no_thread_counts() {
    const BLOCK: usize = 1 << 20;
    let before = live_bytes().unwrap();
    let block = black_box(vec![1u8; BLOCK]);
    // Half a block of slack: the test harness's own thread may free meanwhile.
    assert!(live_bytes().unwrap() >= before + BLOCK / 2);
    drop(block);
    assert_eq!(thread_allocations(), None);
    assert_eq!(thread_live_bytes(), None);
}
