//! Writing and draining streams without per-stream buffers.
//!
//! Writers send slices of one static 64 KiB block; readers copy into a
//! per-thread scratch buffer inside a single poll. So 10,000 concurrent
//! streams cost the benchmark no memory of its own, and every contender
//! sees the same application reads and writes: [`CHUNK`] bytes each.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::CHUNK;

/// The bytes every writer sends.
static DATA: [u8; CHUNK] = [0x5a; CHUNK];

/// Reads per poll before the drain yields to other tasks.
const READS_PER_POLL: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; CHUNK]);
}

/// Writes `total` bytes in writes of `write` bytes (at most [`CHUNK`]),
/// then shuts the write side down (FIN), and gives the stream back.
///
/// The caller keeps the stream until the peer has read everything: a
/// dropped `H2Conn` (CONNECT mode) can discard bytes it still buffers,
/// where a dropped TCP socket would still deliver them.
pub async fn write_then_close<W: AsyncWrite + Unpin>(
    mut w: W,
    total: usize,
    write: usize,
) -> io::Result<W> {
    write_bytes(&mut w, total, write).await?;
    w.shutdown().await?;
    Ok(w)
}

/// Writes `total` bytes in writes of `write` bytes (at most [`CHUNK`]) and
/// flushes.
pub async fn write_bytes<W: AsyncWrite + Unpin>(
    w: &mut W,
    total: usize,
    write: usize,
) -> io::Result<()> {
    let write = write.clamp(1, CHUNK);
    let mut left = total;
    while left > 0 {
        let n = left.min(write);
        w.write_all(&DATA[..n]).await?;
        left -= n;
    }
    w.flush().await
}

/// Writes [`CHUNK`]-sized blocks until an error (for a writer that is
/// meant to block forever on a peer that never reads).
pub async fn write_forever<W: AsyncWrite + Unpin>(mut w: W) -> io::Result<()> {
    loop {
        w.write_all(&DATA).await?;
    }
}

/// Reads until EOF and returns the number of bytes read.
pub async fn drain<R: AsyncRead + Unpin>(mut r: R) -> io::Result<usize> {
    let mut total = 0usize;
    poll_fn(|cx| {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for _ in 0..READS_PER_POLL {
                let mut buf = ReadBuf::new(&mut scratch[..]);
                match Pin::new(&mut r).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(())) => total += buf.filled().len(),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    })
    .await?;
    Ok(total)
}
