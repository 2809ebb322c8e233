//! `CountingAlloc::with_thread_counts` as the global allocator: the
//! calling thread's allocations and live bytes, and the process's live
//! bytes. One test, so that no other test thread allocates meanwhile; the
//! process-wide figures allow half a block of slack for the harness's own
//! thread.
#![allow(clippy::arithmetic_side_effects, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};

use mux_alloc_count::{live_bytes, thread_allocations, thread_live_bytes, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::with_thread_counts();

const BLOCK: usize = 1 << 20;

#[test]
fn counts_this_threads_calls_and_bytes_and_the_whole_process() {
    // An allocation and its release, on this thread.
    let (calls, live, process) = (
        thread_allocations().unwrap(),
        thread_live_bytes().unwrap(),
        live_bytes().unwrap(),
    );
    let mut block = black_box(Vec::<u8>::with_capacity(BLOCK));
    assert_eq!(thread_allocations().unwrap() - calls, 1);
    assert_eq!(thread_live_bytes().unwrap() - live, BLOCK as isize);
    assert!(live_bytes().unwrap() >= process + BLOCK / 2);

    // A reallocation is one call, and counts its growth.
    block.reserve_exact(2 * BLOCK);
    assert_eq!(thread_allocations().unwrap() - calls, 2);
    assert_eq!(thread_live_bytes().unwrap() - live, 2 * BLOCK as isize);
    drop(black_box(block));
    assert_eq!(thread_allocations().unwrap() - calls, 2);
    assert_eq!(thread_live_bytes().unwrap(), live);

    // Another thread's allocation is not this thread's, but is the
    // process's; freeing it here makes this thread's balance negative.
    // (Spawning and joining allocate and free on this thread too, so the
    // counts are read in between, while the other thread allocates.)
    let both = Arc::new(Barrier::new(2));
    let other = {
        let both = both.clone();
        std::thread::spawn(move || {
            both.wait();
            let block = black_box(vec![1u8; BLOCK]);
            both.wait();
            block
        })
    };
    let (calls, live) = (thread_allocations().unwrap(), thread_live_bytes().unwrap());
    let process = live_bytes().unwrap();
    both.wait();
    both.wait();
    assert_eq!(thread_allocations().unwrap(), calls);
    assert_eq!(thread_live_bytes().unwrap(), live);
    assert!(live_bytes().unwrap() >= process + BLOCK / 2);
    let theirs = other.join().unwrap();
    let live = thread_live_bytes().unwrap();
    drop(theirs);
    assert_eq!(thread_live_bytes().unwrap() - live, -(BLOCK as isize));
}
