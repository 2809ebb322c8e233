//! A tunnel dropped right after a successful `shutdown` still delivers every
//! byte written before it, then EOF, in every mode and both directions.
//!
//! Each case runs twice. With the reader **stalled** until the writer has
//! dropped its tunnel, the last chunk is still waiting for the peer's
//! window when `shutdown` returns, so a drop that discards queued data
//! always shows. With the reader **streaming** (on a multi-threaded runtime,
//! and once on a single thread) the drop races the HTTP/2 connection task.
// Test helpers outside `#[test]` fns panic on failure by design, and size
// arithmetic in tests cannot overflow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::{open, start};
use mux_h2::{H2Conn, Mode, STREAM_WINDOW};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// The size of each `write_all` after the first, as in the benchmark that
/// found the loss.
const WRITE: usize = 64 * 1024;

/// The hang guard on every await: far above what a transfer takes.
const GUARD: Duration = Duration::from_secs(20);

/// How the reader keeps up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// Reads only once the writer has dropped its tunnel. The writer sends
    /// one stream window plus 8 KiB, its 16 KiB writes offset by 8 KiB, so
    /// the last one straddles the end of the window: half of it can leave
    /// only after the reader has started.
    Stalled,
    /// Reads 4 MiB as it arrives.
    Streaming,
}

impl Reader {
    /// How many bytes the writer sends.
    fn total(self) -> usize {
        match self {
            Self::Stalled => STREAM_WINDOW as usize + 8 * 1024,
            Self::Streaming => 4 * 1024 * 1024,
        }
    }
}

/// The byte at `offset` of the stream: a lost, repeated or reordered block
/// shows up as a mismatch at its offset, not only as a wrong length.
fn pattern(offset: usize) -> u8 {
    (offset ^ (offset >> 8) ^ (offset >> 16).wrapping_mul(31)) as u8
}

/// Awaits `fut`, failing the test if it takes longer than [`GUARD`].
async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no progress within {GUARD:?}"))
}

/// Writes `total` pattern bytes (8 KiB, then [`WRITE`]-byte writes), shuts
/// down, and drops the tunnel at once.
async fn write_shutdown_drop(mut conn: H2Conn, name: &str, total: usize) {
    let mut offset = 0;
    while offset < total {
        let len = if offset == 0 { 8 * 1024 } else { WRITE };
        let block: Vec<u8> = (offset..(offset + len).min(total)).map(pattern).collect();
        guard(name, conn.write_all(&block))
            .await
            .unwrap_or_else(|e| panic!("{name}: write at {offset}: {e}"));
        offset += block.len();
    }
    guard(name, conn.shutdown())
        .await
        .unwrap_or_else(|e| panic!("{name}: shutdown: {e}"));
    drop(conn);
}

/// Reads to EOF, checking each byte against [`pattern`]. Returns how many
/// bytes came before EOF, or the read error with that count.
async fn read_checked(mut conn: H2Conn, name: &str) -> Result<usize, (usize, std::io::Error)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0;
    loop {
        let n = match guard(name, conn.read(&mut buf)).await {
            Ok(0) => return Ok(offset),
            Ok(n) => n,
            Err(e) => return Err((offset, e)),
        };
        for (i, &byte) in buf[..n].iter().enumerate() {
            assert_eq!(
                byte,
                pattern(offset + i),
                "{name}: wrong byte at offset {}",
                offset + i
            );
        }
        offset += n;
    }
}

fn check(name: &str, total: usize, result: Result<usize, (usize, std::io::Error)>) {
    match result {
        Ok(n) => assert_eq!(n, total, "{name}: EOF after {n} of {total} bytes"),
        Err((n, e)) => panic!("{name}: read failed after {n} of {total} bytes: {e}"),
    }
}

/// The client writes, shuts down and drops; the server reads everything.
async fn client_to_server(mode: Mode, reader: Reader) {
    let name = format!("{mode:?} client→server, {reader:?} reader");
    let total = reader.total();
    let dropped = Arc::new(Notify::new());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (server_name, server_dropped) = (name.clone(), dropped.clone());
    let (url, _) = start(move |conn: H2Conn| {
        let (done_tx, name, dropped) =
            (done_tx.clone(), server_name.clone(), server_dropped.clone());
        async move {
            if reader == Reader::Stalled {
                guard(&name, dropped.notified()).await;
            }
            let _ = done_tx.send(read_checked(conn, &name).await);
        }
    })
    .await;
    let conn = guard(&name, open(&url, mode)).await;
    write_shutdown_drop(conn, &name, total).await;
    dropped.notify_one();
    let result = guard(&name, done_rx.recv()).await.expect("server handler");
    check(&name, total, result);
}

/// The server writes, shuts down and drops; the client reads everything.
async fn server_to_client(mode: Mode, reader: Reader) {
    let name = format!("{mode:?} server→client, {reader:?} reader");
    let total = reader.total();
    let dropped = Arc::new(Notify::new());
    let (server_name, server_dropped) = (name.clone(), dropped.clone());
    let (url, _) = start(move |conn: H2Conn| {
        let (name, dropped) = (server_name.clone(), server_dropped.clone());
        async move {
            write_shutdown_drop(conn, &name, total).await;
            dropped.notify_one();
        }
    })
    .await;
    let conn = guard(&name, open(&url, mode)).await;
    if reader == Reader::Stalled {
        guard(&name, dropped.notified()).await;
    }
    check(&name, total, read_checked(conn, &name).await);
}

/// Both readers, one after the other.
async fn both_readers(mode: Mode, client_writes: bool) {
    for reader in [Reader::Stalled, Reader::Streaming] {
        if client_writes {
            client_to_server(mode, reader).await;
        } else {
            server_to_client(mode, reader).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_client_to_server() {
    both_readers(Mode::Connect, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_server_to_client() {
    both_readers(Mode::Connect, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_client_to_server() {
    both_readers(Mode::Post, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_server_to_client() {
    both_readers(Mode::Post, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_upgrade_client_to_server() {
    both_readers(Mode::Http1Upgrade, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_upgrade_server_to_client() {
    both_readers(Mode::Http1Upgrade, false).await;
}

/// Streaming on a single thread, where the HTTP/2 connection task runs only
/// when the writer yields.
#[tokio::test]
async fn streaming_on_one_thread() {
    for mode in [Mode::Connect, Mode::Post, Mode::Http1Upgrade] {
        client_to_server(mode, Reader::Streaming).await;
        server_to_client(mode, Reader::Streaming).await;
    }
}
