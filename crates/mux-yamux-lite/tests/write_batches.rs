//! How much the driver hands the transport per write: up to 512 KiB (plus
//! the frame that crosses the mark) once the transport has taken a batch of
//! 256 KiB whole, and 256 KiB while it pushes back (the hostile-peer tests
//! hold that bound with a pipe that never drains). Larger writes carry a
//! few streams over TCP faster (docs/DECISIONS.md); the smaller
//! bound keeps a transport that does not drain from holding control frames
//! behind a long queue.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use mux_yamux_lite::{Config, Connection, Role};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, WriteHalf};

/// The frame that crosses the mark: a 64 KiB payload and its 10 bytes of
/// header (`Config::max_frame_payload`'s default).
const ONE_FRAME: usize = 64 * 1024 + 10;
const BACKED_UP_LIMIT: usize = 256 * 1024;
const LIMIT: usize = 512 * 1024;

/// The write half of a pipe that records how many bytes each write took.
struct RecordWrites {
    inner: WriteHalf<DuplexStream>,
    sizes: Arc<Mutex<Vec<usize>>>,
}

impl RecordWrites {
    fn note(&self, poll: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &poll {
            self.sizes.lock().unwrap().push(*n);
        }
        poll
    }
}

impl AsyncWrite for RecordWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Bytes each of the four streams sends.
const PER_STREAM: usize = 4 << 20;

/// Four streams send [`PER_STREAM`] bytes each through a 16 MiB pipe, which
/// takes every batch whole; returns the sizes of the client's transport
/// writes once the server has read and checked everything.
async fn send_and_record() -> Vec<usize> {
    let (a, b) = tokio::io::duplex(16 << 20);
    let (a_read, a_write) = tokio::io::split(a);
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let recorded = RecordWrites {
        inner: a_write,
        sizes: sizes.clone(),
    };
    let client = Connection::new(
        tokio::io::join(a_read, recorded),
        Role::Client,
        Config::default(),
    );
    let server = Connection::new(b, Role::Server, Config::default());

    let readers = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let mut s = server.accept_stream().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::with_capacity(PER_STREAM);
                s.read_to_end(&mut got).await.unwrap();
                assert_eq!(got.len(), PER_STREAM);
                let fill = got.first().copied().unwrap();
                assert!(got.iter().all(|&b| b == fill), "bytes of another stream");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let mut writers = Vec::new();
    for i in 0..4u8 {
        let mut s = client.open_stream().await.unwrap();
        writers.push(tokio::spawn(async move {
            let chunk = vec![i; 64 * 1024];
            for _ in 0..PER_STREAM / chunk.len() {
                s.write_all(&chunk).await.unwrap();
            }
            s.shutdown().await.unwrap();
            // Kept until the reader is done, as an application would.
            s
        }));
    }
    let mut kept = Vec::new();
    for w in writers {
        kept.push(w.await.unwrap());
    }
    readers.await.unwrap();
    let sizes = sizes.lock().unwrap().clone();
    sizes
}

#[tokio::test]
async fn a_transport_that_takes_whole_batches_gets_writes_of_up_to_512_kib() {
    let sizes = tokio::time::timeout(Duration::from_secs(60), send_and_record())
        .await
        .expect("the transfer hung");
    let largest = sizes.iter().copied().max().unwrap();
    assert!(
        largest > BACKED_UP_LIMIT + ONE_FRAME,
        "no write beyond the backed-up limit: largest {largest} bytes"
    );
    assert!(
        largest <= LIMIT + ONE_FRAME,
        "a write of {largest} bytes, beyond the limit"
    );
}
