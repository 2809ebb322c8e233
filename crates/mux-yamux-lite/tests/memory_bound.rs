//! Hostile peer, memory amplification through the read blocks: DATA
//! payloads of every size around the read path's thresholds, each for one
//! of many streams the application never reads, each followed by a block's
//! worth of data the application reads at once. Kept as slices of the
//! driver's 256 KiB read blocks, every held payload would keep its whole
//! block alive. Measured with a counting global allocator, so this file
//! holds a single test.
// Indexing and arithmetic run on the test's own constants, not on peer data.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use mux_alloc_count::CountingAlloc;
use mux_core::MuxedStream;
use mux_yamux_lite::frame::{Flags, Frame};
use mux_yamux_lite::{Connection, Role, Stream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use support::{
    bounded, connect_with_capacity, encode_on, handshake_with_window, on_each_wire, quiet_on,
};
use tokio::io::AsyncReadExt;

/// Counts the live heap bytes of the whole test binary.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

/// Live heap bytes of the whole test binary.
fn live() -> usize {
    mux_alloc_count::live_bytes().expect("the counting allocator is installed")
}

/// The driver's read block (`driver/read_buffer.rs`) at the default
/// `max_frame_payload`.
const BLOCK: usize = 256 * 1024;
/// Streams that receive data the application never reads.
const UNREAD_STREAMS: u32 = 16;
/// Payload sizes of the unread streams' frames: around the copy threshold
/// (16 KiB), the copy helper's piece (2 KiB), a page, `max_frame_payload`
/// (64 KiB) and fractions of a block, plus single bytes.
const SIZES: [usize; 16] = [
    16_384, 16_383, 16_385, 1, 65_536, 2_048, 2_049, 4_096, 16_389, 65_535, 4_095, 32_768, 43_690,
    24_576, 8_192, 52_429,
];
/// Payload sizes of the data the application reads: all copied (below
/// 16 KiB), so they fill blocks without holding them.
const FILLER_SIZES: [usize; 5] = [16_383, 10_000, 4_097, 16_000, 777];
/// What the test harness itself may hold at the end: the 64 KiB pipe (which
/// may double while full), the stream table grown by the streams read, and
/// the frames the raw peer still buffers.
const HARNESS: usize = 512 * 1024;

fn data(id: u32, flags: Flags, len: usize) -> Frame {
    support::data(id, flags, &vec![0x5a; len])
}

/// Accepts every stream: keeps the unread ones (ids up to
/// `2 * UNREAD_STREAMS`) and reads every other one to its end, counting
/// the bytes read into `read`.
fn serve(conn: Connection, unread: Arc<Mutex<Vec<Stream>>>, read: Arc<AtomicU64>) {
    tokio::spawn(async move {
        while let Ok(mut s) = conn.accept_stream().await {
            if s.id().get() <= 2 * UNREAD_STREAMS {
                unread.lock().expect("not poisoned").push(s);
                continue;
            }
            let read = read.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    read.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
}

/// The flood: round-robin over the unread streams, each frame the next of
/// [`SIZES`] up to the stream's window, each followed by about a block
/// (less the frame, minus a varying remainder) of read data on streams
/// that each carry one window and then FIN. Returns the bytes sent to
/// unread streams and to read ones.
fn flood(window: usize, mut out: impl FnMut(Frame)) -> (usize, usize) {
    let mut left = vec![window; UNREAD_STREAMS as usize];
    let (mut unread, mut read) = (0, 0);
    let (mut filler_id, mut filler_left) = (2 * UNREAD_STREAMS + 1, window);
    let mut syn = Flags::SYN;
    let mut turn = 0usize;
    while left.iter().any(|&l| l > 0) {
        let stream = turn % left.len();
        let len = SIZES[turn / left.len() % SIZES.len()].min(left[stream]);
        turn += 1;
        if len == 0 {
            continue;
        }
        left[stream] -= len;
        unread += len;
        out(data(2 * stream as u32 + 1, Flags::NONE, len));
        let mut gap = BLOCK.saturating_sub(len + 10 + (turn % 7) * 1000);
        let mut piece = turn;
        while gap > 0 {
            let len = FILLER_SIZES[piece % FILLER_SIZES.len()]
                .min(gap)
                .min(filler_left);
            piece += 1;
            let fin = if len == filler_left {
                Flags::FIN
            } else {
                Flags::NONE
            };
            out(data(filler_id, syn.with(fin), len));
            syn = Flags::NONE;
            gap -= len.min(gap);
            filler_left -= len;
            read += len;
            if filler_left == 0 {
                (filler_id, filler_left, syn) = (filler_id + 2, window, Flags::SYN);
            }
        }
    }
    (unread, read)
}

/// Lets the other tasks run until `done` holds ([`bounded`] limits the wait).
async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn unread_data_costs_at_most_twice_its_bytes_whatever_the_frames() {
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            config.read_blocks_kept = 4;
            config.accept_backlog = 4096;
            config.max_inbound_streams = 4096;
            let kept = config.read_blocks_kept;
            let window = config.initial_window as usize;
            let (conn, mut peer) = connect_with_capacity(Role::Server, config, 64 * 1024);
            handshake_with_window(&mut peer, 256 * 1024).await;
            let unread_streams = Arc::new(Mutex::new(Vec::new()));
            let consumed = Arc::new(AtomicU64::new(0));
            serve(conn.clone(), unread_streams.clone(), consumed.clone());
            let (mut reader, mut writer) = peer.split();
            let replies = tokio::spawn(async move { reader.recv_until_eof().await });
            let syns = encode_on(wire, (0..UNREAD_STREAMS).map(|i| support::syn(2 * i + 1)));
            writer.send_raw(&syns).await.expect("connection alive");
            until(|| unread_streams.lock().expect("not poisoned").len() == UNREAD_STREAMS as usize)
                .await;

            let before = live();
            let mut batch = Vec::new();
            let (unread, read) = flood(window, |f| batch.push(f));
            for frames in batch.chunks(64) {
                let bytes = encode_on(wire, frames.iter().cloned());
                writer.send_raw(&bytes).await.expect("connection alive");
            }
            drop(batch);
            until(|| {
                conn.stats().bytes_received == (unread + read) as u64
                    && consumed.load(Ordering::Relaxed) == read as u64
            })
            .await;
            let held = live().saturating_sub(before);
            assert!(!conn.is_closed());

            // The documented bound (`Config::read_blocks_kept`): twice the
            // unread bytes, plus the blocks kept and the one being filled.
            let bound = 2 * unread + (kept + 1) * BLOCK + HARNESS;
            assert!(
                held <= bound,
                "{held} heap bytes held for {unread} unread bytes ({:.1}x); bound {bound}",
                held as f64 / unread as f64
            );
            replies.abort();
        })
    })
    .await;
}
