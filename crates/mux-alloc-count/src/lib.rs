//! A counting global allocator, for tests and benchmarks that observe the
//! heap.
//!
//! [`CountingAlloc`] forwards every call to [`std::alloc::System`] and
//! counts as it goes:
//!
//! - always, the live heap bytes of the whole process, read with
//!   [`live_bytes`];
//! - when built with [`CountingAlloc::with_thread_counts`], also per thread:
//!   the allocation calls the calling thread made ([`thread_allocations`])
//!   and the bytes it allocated minus the bytes it freed
//!   ([`thread_live_bytes`]). Code that runs on one current-thread runtime
//!   is then measured alone, whatever other threads of the test binary do.
//!
//! Each reader returns `None` while its kind of counting is not installed,
//! so a test cannot pass by reading a counter that nothing updates.
//!
//! A test or binary installs it as its global allocator:
//!
//! ```
//! use mux_alloc_count::CountingAlloc;
//!
//! #[global_allocator]
//! static ALLOC: CountingAlloc = CountingAlloc::with_thread_counts();
//!
//! fn main() {
//!     let before = mux_alloc_count::thread_allocations().unwrap(); // ok: counted per thread
//!     let block = vec![0u8; 4096];
//!     assert_eq!(mux_alloc_count::thread_allocations(), Some(before + 1));
//!     assert!(mux_alloc_count::live_bytes().unwrap() >= block.len()); // ok: installed above
//! }
//! ```

// `GlobalAlloc` is an unsafe trait, so implementing it needs `unsafe`. This
// crate is test support only; its one impl forwards every call unchanged to
// `System` and updates counters (see the SAFETY comment on the impl).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Heap bytes currently allocated through [`CountingAlloc`], all threads.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Set by the first counted allocation: [`CountingAlloc`] is installed.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Set by the first allocation counted per thread: the installed
/// [`CountingAlloc`] keeps per-thread counts.
static THREAD_ACTIVE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Allocation calls (reallocations included) made by this thread.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed by this thread; negative when it
    /// frees more than it allocated (memory allocated by other threads).
    static THREAD_LIVE: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting live bytes (and, if asked, per-thread
/// allocations and live bytes). See the [crate] documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc {
    per_thread: bool,
}

impl CountingAlloc {
    /// Counts the live heap bytes of the whole process only: one relaxed
    /// atomic add per call, the least a benchmark should pay.
    pub const fn new() -> Self {
        Self { per_thread: false }
    }

    /// Counts the live heap bytes of the whole process, and per thread the
    /// allocation calls and the live bytes.
    pub const fn with_thread_counts() -> Self {
        Self { per_thread: true }
    }

    /// Records that `added` bytes were allocated and `freed` bytes freed by
    /// one call; `allocation` says whether the call allocated (`alloc`,
    /// `alloc_zeroed`, `realloc`) rather than only freed (`dealloc`).
    #[inline]
    fn count(self, allocation: bool, added: usize, freed: usize) {
        LIVE.fetch_add(added, Ordering::Relaxed);
        LIVE.fetch_sub(freed, Ordering::Relaxed);
        if !ACTIVE.load(Ordering::Relaxed) {
            ACTIVE.store(true, Ordering::Relaxed);
        }
        if self.per_thread {
            if !THREAD_ACTIVE.load(Ordering::Relaxed) {
                THREAD_ACTIVE.store(true, Ordering::Relaxed);
            }
            // `try_with`: the allocator also runs while a thread's locals
            // are torn down. Neither local has a destructor or allocates.
            if allocation {
                let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get().wrapping_add(1)));
            }
            let delta = (added as isize).wrapping_sub(freed as isize);
            let _ = THREAD_LIVE.try_with(|n| n.set(n.get().wrapping_add(delta)));
        }
    }
}

// SAFETY: every method forwards to `System`, which upholds the `GlobalAlloc`
// contract, with the caller's arguments unchanged (the caller's obligations
// are therefore `System`'s), and returns `System`'s result unchanged. The
// counting touches only atomics and const-initialized thread-locals without
// destructors: it never allocates, never unwinds and never re-enters the
// allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl's comment.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.count(true, layout.size(), 0);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl's comment.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.count(true, layout.size(), 0);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, that
        // is from `System`.
        unsafe { System.dealloc(ptr, layout) };
        self.count(false, 0, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, that
        // is from `System`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.count(true, new_size, layout.size());
        }
        new
    }
}

/// Live heap bytes of the whole process, or `None` when [`CountingAlloc`]
/// is not the global allocator.
pub fn live_bytes() -> Option<usize> {
    ACTIVE
        .load(Ordering::Relaxed)
        .then(|| LIVE.load(Ordering::Relaxed))
}

/// Allocation calls (`alloc`, `alloc_zeroed` and `realloc`) made so far by
/// the calling thread, or `None` when the global allocator is not a
/// [`CountingAlloc::with_thread_counts`].
pub fn thread_allocations() -> Option<u64> {
    THREAD_ACTIVE
        .load(Ordering::Relaxed)
        .then(|| THREAD_ALLOCATIONS.with(Cell::get))
}

/// Bytes allocated minus bytes freed so far by the calling thread, or
/// `None` when the global allocator is not a
/// [`CountingAlloc::with_thread_counts`]. Negative when the thread freed
/// memory that other threads allocated.
pub fn thread_live_bytes() -> Option<isize> {
    THREAD_ACTIVE
        .load(Ordering::Relaxed)
        .then(|| THREAD_LIVE.with(Cell::get))
}
