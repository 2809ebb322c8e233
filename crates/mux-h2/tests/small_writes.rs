//! Many small writes between two mux-h2 ends: hyper's HTTP/2 flood guard
//! sends GOAWAY (`ENHANCE_YOUR_CALM`) once a peer holds too many small DATA
//! frames unread, so a burst of small writes must leave as few frames.
// Test helpers outside `#[test]` fns panic on failure by design, and size
// arithmetic in tests cannot overflow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod common;

use common::{echo, open, start};
use mux_h2::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITES: usize = 100_000;
const WRITE_LEN: usize = 10;

/// The `i`-th 10-byte message: its index and a fixed tail, so a lost,
/// repeated or reordered message shows.
fn message(i: usize) -> [u8; WRITE_LEN] {
    let mut m = [0xA5u8; WRITE_LEN];
    m[..8].copy_from_slice(&(i as u64).to_be_bytes());
    m
}

/// Writes `WRITES` messages of `WRITE_LEN` bytes, one `write_all` each,
/// then reads the whole echo: the peer's echo of each small read and this
/// side's unread receive buffer both see the burst.
async fn echo_small_writes(mode: Mode) {
    let (url, _) = start(echo).await;
    let mut conn = open(&url, mode).await;
    for i in 0..WRITES {
        conn.write_all(&message(i))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: write {i}: {e}"));
    }
    conn.shutdown().await.unwrap();
    let mut got = Vec::with_capacity(WRITES * WRITE_LEN);
    let read = conn.read_to_end(&mut got).await;
    read.unwrap_or_else(|e| panic!("{mode:?}: read after {} bytes: {e}", got.len()));
    assert_eq!(got.len(), WRITES * WRITE_LEN, "{mode:?}: length");
    for (i, m) in got.chunks(WRITE_LEN).enumerate() {
        assert_eq!(m, message(i), "{mode:?}: message {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_100k_small_writes_echo() {
    echo_small_writes(Mode::Connect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_100k_small_writes_echo() {
    echo_small_writes(Mode::Post).await;
}
