//! The `yamux` crate 0.14 (rust-yamux), default configuration, through
//! `tokio_util::compat`.
//!
//! Its `Connection` does I/O only inside `poll_next_inbound` and opens
//! streams through `poll_new_outbound`, both on `&mut self`, so one driver
//! task per side owns it: it polls for inbound streams all the time (handing
//! them to the [`YamuxAcceptor`]) and serves open requests that
//! [`YamuxOpener`]s send over a channel. Its streams are futures I/O, made
//! tokio I/O by `.compat()`. Each side can be started alone, facing a
//! peer of another implementation ([`super::interop`]).

use std::future::poll_fn;
use std::io;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use yamux::{Config, Connection, ConnectionError, Mode};

use super::{Acceptor, Opener, Setup};
use crate::transport::Io;

/// yamux 0.14's default limit of streams per connection; one more kills the
/// connection.
pub const MAX_STREAMS: usize = 512;

/// A yamux stream as tokio I/O.
pub type YamuxStream = Compat<yamux::Stream>;

type OpenReply = oneshot::Sender<Result<yamux::Stream, ConnectionError>>;

/// The client side: asks the driver task for new streams.
#[derive(Debug, Clone)]
pub struct YamuxOpener(mpsc::Sender<OpenReply>);

/// The server side: receives the streams the driver task accepted.
#[derive(Debug)]
pub struct YamuxAcceptor(mpsc::UnboundedReceiver<yamux::Stream>);

/// Starts a client connection over `io`, with its driver task.
pub fn client(io: Io) -> YamuxOpener {
    client_on(io)
}

/// [`client`] over any transport.
pub fn client_on<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: T) -> YamuxOpener {
    let (open_tx, open_rx) = mpsc::channel(64);
    // Nobody accepts on the client side: its inbound streams are dropped.
    let (inbound, _) = mpsc::unbounded_channel();
    tokio::spawn(drive(Mode::Client, io, Some(open_rx), inbound));
    YamuxOpener(open_tx)
}

/// Starts a server connection over `io`, with its driver task.
pub fn server(io: Io) -> YamuxAcceptor {
    server_on(io)
}

/// [`server`] over any transport.
pub fn server_on<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: T) -> YamuxAcceptor {
    let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
    tokio::spawn(drive(Mode::Server, io, None, inbound_tx));
    YamuxAcceptor(inbound_rx)
}

/// Starts a client and a server connection, each with its driver task,
/// over one connection of `setup.transport`.
pub async fn start(setup: Setup) -> io::Result<(YamuxOpener, YamuxAcceptor)> {
    setup.sides(client, server).await
}

/// Drives one side until the connection ends: inbound streams go to
/// `inbound` (dropped if nobody listens), open requests from `opens` are
/// answered with `poll_new_outbound`.
async fn drive<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mode: Mode,
    io: T,
    mut opens: Option<mpsc::Receiver<OpenReply>>,
    inbound: mpsc::UnboundedSender<yamux::Stream>,
) {
    let mut conn = Connection::new(io.compat(), Config::default(), mode);
    let mut waiting: Option<OpenReply> = None;
    // How it ends does not matter here: the streams report their errors.
    let _end = poll_fn(|cx| loop {
        if waiting.is_none() {
            if let Some(rx) = opens.as_mut() {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(reply)) => waiting = Some(reply),
                    Poll::Ready(None) => opens = None,
                    Poll::Pending => {}
                }
            }
        }
        if let Some(reply) = waiting.take() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(result) => {
                    let _ = reply.send(result);
                    continue;
                }
                Poll::Pending => waiting = Some(reply),
            }
        }
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(stream))) => {
                let _ = inbound.send(stream);
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(e)),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await;
}

impl Opener for YamuxOpener {
    type Stream = YamuxStream;

    async fn open(&self) -> io::Result<YamuxStream> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(tx)
            .await
            .map_err(|_| io::Error::other("yamux driver ended"))?;
        let stream = rx
            .await
            .map_err(|_| io::Error::other("yamux driver ended"))?
            .map_err(io::Error::other)?;
        Ok(stream.compat())
    }
}

impl Acceptor for YamuxAcceptor {
    type Stream = YamuxStream;

    async fn accept(&mut self) -> io::Result<YamuxStream> {
        let stream = self
            .0
            .recv()
            .await
            .ok_or_else(|| io::Error::other("yamux connection ended"))?;
        Ok(stream.compat())
    }
}
