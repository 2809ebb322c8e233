//! Heap allocations per frame in steady state, counted by a global
//! allocator: a bulk stream may allocate one `Bytes` per application write
//! (its payload) and nothing per frame beyond it; a stream of small
//! messages allocates nothing per message once warmed up.
//!
//! Everything runs on one current-thread runtime over an in-memory pipe, and
//! allocations are counted per thread, so each test's count covers both
//! connections, their drivers and the application, and nothing else.
#![allow(clippy::arithmetic_side_effects, clippy::unwrap_used)]
// The only unsafe code: a `GlobalAlloc` that forwards to `System` and
// counts calls. Test-only; there is no safe way to observe the heap.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mux_yamux_lite::{Config, Connection, Role, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

thread_local! {
    /// Allocation calls (including reallocations) made by this thread.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; only calls are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` or `realloc` above, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// A connected stream pair over a 1 MiB pipe; the connections are returned
/// so they outlive the streams.
async fn stream_pair() -> (Stream, Stream, Connection, Connection) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let client = Connection::new(a, Role::Client, Config::default());
    let server = Connection::new(b, Role::Server, Config::default());
    let mut out = client.open_stream().await.unwrap();
    out.write_all(b"hi").await.unwrap();
    let mut inbound = server.accept_stream().await.unwrap();
    let mut hi = [0u8; 2];
    inbound.read_exact(&mut hi).await.unwrap();
    (out, inbound, client, server)
}

#[tokio::test]
async fn bulk_transfer_allocates_one_payload_per_write_and_nothing_per_frame() {
    const WRITE: usize = 64 * 1024;
    const WARMUP: usize = 128;
    const MEASURED: usize = 512;
    let (mut tx, mut rx, _client, _server) = stream_pair().await;
    let block = vec![0x5au8; WRITE];
    let reader = async move {
        let mut buf = vec![0u8; WRITE];
        let mut total = 0;
        while total < (WARMUP + MEASURED) * WRITE {
            let n = rx.read(&mut buf).await.unwrap();
            assert!(n > 0, "early EOF");
            total += n;
        }
        rx
    };
    let writer = async {
        for _ in 0..WARMUP {
            tx.write_all(&block).await.unwrap();
        }
        let before = allocations();
        for _ in 0..MEASURED {
            tx.write_all(&block).await.unwrap();
        }
        allocations() - before
    };
    let (counted, _rx) = tokio::join!(writer, reader);
    // One `Bytes` per write (it is framed as one 64 KiB DATA frame), and
    // a little slack for queue growth. Measured: exactly one per write.
    let per_write = counted as f64 / MEASURED as f64;
    assert!(
        counted <= MEASURED + MEASURED / 32,
        "{counted} allocations for {MEASURED} writes ({per_write:.2} per write)"
    );
}

#[tokio::test]
async fn small_messages_allocate_nothing_per_message_once_warm() {
    const WARMUP: usize = 200;
    const MEASURED: usize = 2000;
    let (mut client, mut server, _c, _s) = stream_pair().await;
    let echo = async move {
        let mut buf = [0u8; 64];
        loop {
            if server.read_exact(&mut buf).await.is_err() {
                return;
            }
            server.write_all(&buf).await.unwrap();
        }
    };
    let exchanges = async {
        let mut buf = [7u8; 64];
        let mut before = 0;
        for i in 0..WARMUP + MEASURED {
            if i == WARMUP {
                before = allocations();
            }
            client.write_all(&buf).await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
        }
        allocations() - before
    };
    let counted = tokio::select! {
        counted = exchanges => counted,
        () = echo => panic!("echo ended early"),
    };
    // Measured: none at all.
    let per_exchange = counted as f64 / MEASURED as f64;
    assert!(
        counted <= MEASURED / 100,
        "{counted} allocations for {MEASURED} round trips ({per_exchange:.2} each)"
    );
}
