//! A counting global allocator, for the idle-memory scenario.
//!
//! [`CountingAlloc`] forwards every call to [`std::alloc::System`] and keeps
//! the number of live heap bytes in an atomic. A binary opts in with
//! `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`; the
//! summary runner does, the criterion benches do not. [`live_bytes`] reads
//! the count, and is `None` when the allocator is not installed.

// `GlobalAlloc` is an unsafe trait, so implementing it needs `unsafe`. This
// module is the only place in the package that does; every method only
// forwards its arguments unchanged to `System` and updates counters.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Heap bytes currently allocated through [`CountingAlloc`].
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Set by the first allocation, so that [`live_bytes`] knows whether the
/// allocator is installed.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting live bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

// SAFETY: every method forwards to `System`, which upholds the `GlobalAlloc`
// contract, with the caller's arguments unchanged (the caller's obligations
// are therefore `System`'s). The counters are plain atomics: they allocate
// nothing and never unwind.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl's comment.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            ACTIVE.store(true, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl's comment.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            ACTIVE.store(true, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; see the impl's comment.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl's comment.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
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
