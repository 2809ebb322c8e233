//! Hostile peer, memory amplification: heap held per byte of granted window
//! when the peer sends one-byte DATA frames. Measured with a counting global
//! allocator, so this file holds a single test.
#![allow(clippy::arithmetic_side_effects)]
// The only unsafe code: a `GlobalAlloc` that forwards to `System` and
// counts live bytes. Test-only; there is no safe way to observe the heap.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use mux_yamux_lite::frame::{Flags, Frame};
use mux_yamux_lite::Role;
use support::{bounded, connect, data, encode_all, quiet_config, syn};

/// Live heap bytes of the whole test binary.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[tokio::test]
async fn one_byte_data_frames_cost_their_bytes_not_a_buffer_each() {
    bounded(async {
        let config = quiet_config();
        let window = config.initial_window as usize;
        let (conn, mut peer) = connect(Role::Server, config);
        peer.handshake().await;
        peer.send(syn(1)).await;
        // Exactly the window, one byte per frame, on a stream never read.
        let flood = encode_all(std::iter::repeat_n(data(1, Flags::NONE, b"x"), window));
        let before = LIVE.load(Ordering::SeqCst);
        for chunk in flood.chunks(64 * 1024) {
            peer.send_raw(chunk).await;
        }
        peer.send(Frame::Ping {
            ack: false,
            opaque: 1,
        })
        .await;
        assert_eq!(
            peer.recv_significant().await,
            Some(Frame::Ping {
                ack: true,
                opaque: 1
            })
        );
        assert_eq!(conn.stats().bytes_received, window as u64);
        assert!(!conn.is_closed());
        let held = usize::try_from(LIVE.load(Ordering::SeqCst) - before).unwrap_or(0);
        // The window promises the peer can make us buffer `window` bytes;
        // allow 4x for bookkeeping, plus the fixed costs of a connection:
        // the 1 MiB pipe and the driver's read buffer (256 KiB, which may
        // be mid-reallocation). Before small payloads were coalesced this
        // held about 48x the window.
        let bound = 4 * window + (1 << 20) + 2 * 256 * 1024;
        assert!(
            held <= bound,
            "{held} heap bytes held for {window} bytes of window ({}x)",
            held / window
        );
        drop(flood);
    })
    .await;
}
