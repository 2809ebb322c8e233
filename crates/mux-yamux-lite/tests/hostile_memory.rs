//! Hostile peer, memory amplification: heap held per byte of granted window
//! when the peer sends one-byte DATA frames. Measured with a counting global
//! allocator, so this file holds a single test (run on both wires).
#![allow(clippy::arithmetic_side_effects, clippy::expect_used)]

mod support;

use mux_alloc_count::CountingAlloc;
use mux_yamux_lite::frame::{Flags, Frame};
use mux_yamux_lite::Role;
use support::{bounded, connect, data, encode_on, on_each_wire, quiet_on, syn};

/// Counts the live heap bytes of the whole test binary.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

/// Live heap bytes of the whole test binary.
fn live() -> usize {
    mux_alloc_count::live_bytes().expect("the counting allocator is installed")
}

#[tokio::test]
async fn one_byte_data_frames_cost_their_bytes_not_a_buffer_each() {
    on_each_wire(|wire| {
        bounded(async move {
            let config = quiet_on(wire);
            let window = config.initial_window as usize;
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            peer.send(syn(1)).await;
            // Exactly the window, one byte per frame, on a stream never read.
            let flood = encode_on(
                wire,
                std::iter::repeat_n(data(1, Flags::NONE, b"x"), window),
            );
            let before = live();
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
            let held = live().saturating_sub(before);
            // The window promises the peer can make us buffer `window` bytes;
            // allow 4x for bookkeeping, plus the fixed costs of a connection:
            // the 1 MiB pipe and the driver's read buffer (256 KiB, which may
            // be mid-reallocation). Small payloads are coalesced: kept one
            // frame each, they would hold about 48x the window.
            let bound = 4 * window + (1 << 20) + 2 * 256 * 1024;
            assert!(
                held <= bound,
                "{held} heap bytes held for {window} bytes of window ({}x)",
                held / window
            );
            drop(flood);
        })
    })
    .await;
}
