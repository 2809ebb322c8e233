//! The `tokio-yamux` crate 0.3, default configuration.
//!
//! Its `Session` is a futures `Stream` of inbound streams that must be
//! polled all the time, so a task per side polls it (handing the server's
//! streams to the [`TokioYamuxAcceptor`]); a cloneable `Control` opens
//! streams. Its `StreamHandle` is tokio I/O.

use std::io;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_yamux::{Config, Control, Session, StreamHandle};

use super::{Acceptor, Opener, Setup};
use crate::transport::Io;

/// The client side: the session's `Control`.
#[derive(Clone)]
pub struct TokioYamuxOpener(Control);

impl std::fmt::Debug for TokioYamuxOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokioYamuxOpener")
    }
}

/// The server side: receives the streams the server session task accepted.
#[derive(Debug)]
pub struct TokioYamuxAcceptor(mpsc::UnboundedReceiver<StreamHandle>);

/// Starts a client and a server session, each polled by its own task, over
/// one connection of `setup.transport`.
pub async fn start(setup: Setup) -> io::Result<(TokioYamuxOpener, TokioYamuxAcceptor)> {
    setup
        .sides(
            |a| {
                let client = Session::new_client(a, Config::default());
                let control = client.control();
                // Nobody accepts on the client side: its inbound streams are dropped.
                let (client_tx, _) = mpsc::unbounded_channel();
                tokio::spawn(drive(client, client_tx));
                TokioYamuxOpener(control)
            },
            |b| {
                let (server_tx, server_rx) = mpsc::unbounded_channel();
                tokio::spawn(drive(Session::new_server(b, Config::default()), server_tx));
                TokioYamuxAcceptor(server_rx)
            },
        )
        .await
}

/// Polls `session` until it ends, sending inbound streams to `inbound`.
/// How it ends does not matter here: the streams report their errors.
async fn drive(mut session: Session<Io>, inbound: mpsc::UnboundedSender<StreamHandle>) {
    while let Some(Ok(stream)) = session.next().await {
        let _ = inbound.send(stream);
    }
}

impl Opener for TokioYamuxOpener {
    type Stream = StreamHandle;

    async fn open(&self) -> io::Result<StreamHandle> {
        self.0
            .clone()
            .open_stream()
            .await
            .map_err(|e| io::Error::other(format!("tokio-yamux open: {e:?}")))
    }
}

impl Acceptor for TokioYamuxAcceptor {
    type Stream = StreamHandle;

    async fn accept(&mut self) -> io::Result<StreamHandle> {
        self.0
            .recv()
            .await
            .ok_or_else(|| io::Error::other("tokio-yamux session ended"))
    }
}
