//! Real yamux 1.0 peers, in process: the `yamux` crate 0.13 and 0.14
//! (rust-yamux, through tokio-util's compat) and tokio-yamux 0.3, each in
//! their default configuration, behind one small interface so that every
//! interop test runs against each of them.
//!
//! rust-yamux does I/O only while its `Connection` is polled for inbound
//! streams, so a task per peer polls it all the time and serves open
//! requests sent over a channel; tokio-yamux's `Session` is polled by a task
//! the same way and opens through its `Control`.
#![allow(dead_code, unreachable_pub, clippy::arithmetic_side_effects)]

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// A stream of any peer, as tokio I/O.
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> PeerIo for T {}

/// A boxed peer stream.
pub type PeerStream = Pin<Box<dyn PeerIo>>;

/// The implementations tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The `yamux` crate 0.13.
    RustYamux013,
    /// The `yamux` crate 0.14.
    RustYamux014,
    /// tokio-yamux 0.3.
    TokioYamux,
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 3] = [Peer::RustYamux013, Peer::RustYamux014, Peer::TokioYamux];
}

type OpenReply = oneshot::Sender<io::Result<PeerStream>>;

/// One side of a connection run by a peer implementation.
pub struct PeerConn {
    opens: mpsc::Sender<OpenReply>,
    inbound: mpsc::UnboundedReceiver<PeerStream>,
    /// Ends the peer's connection (dropping its transport).
    task: tokio::task::JoinHandle<()>,
}

impl PeerConn {
    /// Runs `peer` over `io`, as the listener if `server`.
    pub fn start<T>(peer: Peer, io: T, server: bool) -> Self
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (open_tx, open_rx) = mpsc::channel(16);
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let task = match peer {
            Peer::RustYamux013 => tokio::spawn(drive_013(io, server, open_rx, in_tx)),
            Peer::RustYamux014 => tokio::spawn(drive_014(io, server, open_rx, in_tx)),
            Peer::TokioYamux => tokio::spawn(drive_tokio_yamux(io, server, open_rx, in_tx)),
        };
        Self {
            opens: open_tx,
            inbound: in_rx,
            task,
        }
    }

    /// Opens a stream.
    pub async fn open(&self) -> io::Result<PeerStream> {
        let (tx, rx) = oneshot::channel();
        self.opens
            .send(tx)
            .await
            .map_err(|_| io::Error::other("peer ended"))?;
        rx.await.map_err(|_| io::Error::other("peer ended"))?
    }

    /// The next stream the other side opened.
    pub async fn accept(&mut self) -> io::Result<PeerStream> {
        self.inbound
            .recv()
            .await
            .ok_or_else(|| io::Error::other("peer connection ended"))
    }

    /// Drops the peer's connection and its transport at once.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Polls a rust-yamux connection for inbound streams and serves opens,
/// until it ends. Written once for both versions, whose API is the same.
macro_rules! drive_rust_yamux {
    ($name:ident, $krate:ident) => {
        async fn $name<T>(
            io: T,
            server: bool,
            mut opens: mpsc::Receiver<OpenReply>,
            inbound: mpsc::UnboundedSender<PeerStream>,
        ) where
            T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
        {
            let mode = if server {
                $krate::Mode::Server
            } else {
                $krate::Mode::Client
            };
            let mut conn = $krate::Connection::new(io.compat(), $krate::Config::default(), mode);
            let mut waiting: Option<OpenReply> = None;
            let mut opens_open = true;
            poll_fn(|cx| loop {
                if waiting.is_none() && opens_open {
                    match opens.poll_recv(cx) {
                        Poll::Ready(Some(reply)) => waiting = Some(reply),
                        Poll::Ready(None) => opens_open = false,
                        Poll::Pending => {}
                    }
                }
                if let Some(reply) = waiting.take() {
                    match conn.poll_new_outbound(cx) {
                        Poll::Ready(r) => {
                            let r = r
                                .map(|s| Box::pin(s.compat()) as PeerStream)
                                .map_err(io::Error::other);
                            let _ = reply.send(r);
                            continue;
                        }
                        Poll::Pending => waiting = Some(reply),
                    }
                }
                match conn.poll_next_inbound(cx) {
                    Poll::Ready(Some(Ok(s))) => {
                        let _ = inbound.send(Box::pin(s.compat()));
                    }
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            })
            .await
        }
    };
}

drive_rust_yamux!(drive_013, yamux013);
drive_rust_yamux!(drive_014, yamux014);

async fn drive_tokio_yamux<T>(
    io: T,
    server: bool,
    mut opens: mpsc::Receiver<OpenReply>,
    inbound: mpsc::UnboundedSender<PeerStream>,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let config = tokio_yamux::Config::default();
    let mut session = if server {
        tokio_yamux::Session::new_server(io, config)
    } else {
        tokio_yamux::Session::new_client(io, config)
    };
    let control = session.control();
    tokio::spawn(async move {
        while let Some(reply) = opens.recv().await {
            let mut control = control.clone();
            let r = control
                .open_stream()
                .await
                .map(|s| Box::pin(s) as PeerStream)
                .map_err(|e| io::Error::other(format!("tokio-yamux open: {e:?}")));
            let _ = reply.send(r);
        }
    });
    while let Some(Ok(s)) = session.next().await {
        let _ = inbound.send(Box::pin(s));
    }
}

/// The config of our side: default, on the yamux wire.
pub fn yamux_config() -> mux_yamux_lite::Config {
    let mut c = mux_yamux_lite::Config::default();
    c.wire = mux_yamux_lite::Wire::Yamux;
    c
}

/// `len` bytes that differ with `seed`, so a mixed-up echo shows.
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) as u8)
        .collect()
}

/// Echoes everything read, then closes its write side.
pub async fn echo<S: AsyncRead + AsyncWrite>(stream: S) -> io::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let (mut r, mut w) = tokio::io::split(stream);
    let n = tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await?;
    Ok(n)
}

/// Writes `data` while reading its echo, and closes the write side only
/// once the whole echo is back; then expects EOF. Returns the echo.
///
/// Closing only then is for tokio-yamux: once a stream has the peer's
/// FIN, it handles no more frames on it, window updates included
/// (`recv_frames` returns at `RemoteClosing`), so after a half-close it
/// can send only the credit it already holds, and an echo longer than
/// that would hang. An answer after a half-close is tested on its own
/// against every peer.
pub async fn round_trip<S: AsyncRead + AsyncWrite>(stream: S, data: &[u8]) -> io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut r, mut w) = tokio::io::split(stream);
    let mut back = vec![0u8; data.len()];
    let (wrote, read) = tokio::join!(w.write_all(data), r.read_exact(&mut back));
    wrote?;
    read?;
    w.shutdown().await?;
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await?;
    if !rest.is_empty() {
        return Err(io::Error::other(format!(
            "{} bytes past the echo",
            rest.len()
        )));
    }
    Ok(back)
}
