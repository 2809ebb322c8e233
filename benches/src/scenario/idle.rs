//! Idle memory: heap bytes per idle open stream, both sides together.
//!
//! The opener opens `streams` streams and writes 1 byte on each (so a lazy
//! SYN is sent, too); the acceptor accepts each, reads its byte and writes
//! 1 byte back (so each stream is acknowledged, too); the opener reads the
//! replies. With every stream open on both sides and nothing in flight,
//! the live heap (from [`mux_alloc_count::live_bytes`]) is compared with
//! the heap before the first open. The handles' own size counts (they are
//! kept in vectors sized up front).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::contender::{Acceptor, Opener};
use crate::measure::join_error;

/// How long the connection may settle before each heap reading.
pub const SETTLE: Duration = Duration::from_millis(1500);

/// Heap bytes per open stream, or `None` without the counting allocator.
pub async fn bytes_per_stream<O: Opener, A: Acceptor>(
    opener: &O,
    mut acceptor: A,
    streams: usize,
) -> io::Result<Option<f64>> {
    tokio::time::sleep(SETTLE).await;
    let Some(before) = mux_alloc_count::live_bytes() else {
        return Ok(None);
    };
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut held = Vec::with_capacity(streams);
        let mut byte = [0u8; 1];
        for _ in 0..streams {
            let mut stream = acceptor.accept().await?;
            stream.read_exact(&mut byte).await?;
            stream.write_all(&byte).await?;
            stream.flush().await?;
            held.push(stream);
        }
        let _ = release_rx.await;
        drop(held);
        Ok::<_, io::Error>(acceptor)
    });
    let mut held = Vec::with_capacity(streams);
    for _ in 0..streams {
        let mut stream = opener.open().await?;
        stream.write_all(b"x").await?;
        stream.flush().await?;
        held.push(stream);
    }
    let mut byte = [0u8; 1];
    for stream in &mut held {
        stream.read_exact(&mut byte).await?;
    }
    tokio::time::sleep(SETTLE).await;
    let after = mux_alloc_count::live_bytes().unwrap_or(before);
    let per_stream = (after as f64 - before as f64) / streams as f64;
    let _ = release_tx.send(());
    drop(held);
    server.await.map_err(join_error)??;
    Ok(Some(per_stream))
}
