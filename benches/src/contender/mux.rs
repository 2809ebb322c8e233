//! mux-yamux-lite, this workspace's muxer: a cloneable `Connection` opens
//! and accepts; its `Stream` is tokio I/O already.

use std::io;

use mux_yamux_lite::{Config, Connection, Role, Stream};

use super::{Acceptor, Opener, Setup};
use crate::transport;

/// The configuration used: the default, with `max_inbound_streams` and
/// `accept_backlog` raised when the scenario keeps more streams open than
/// the defaults (1000 and 256) allow.
pub fn config(setup: &Setup) -> Config {
    let mut config = Config::default();
    if setup.max_streams > config.max_inbound_streams {
        config.max_inbound_streams = setup.max_streams;
    }
    if setup.max_streams > config.accept_backlog {
        config.accept_backlog = setup.max_streams;
    }
    config
}

/// The client side.
#[derive(Debug, Clone)]
pub struct MuxOpener(pub Connection);

/// The server side.
#[derive(Debug)]
pub struct MuxAcceptor(pub Connection);

/// Starts a client and a server connection over one connection of
/// `setup.transport`.
pub async fn start(setup: Setup) -> io::Result<(MuxOpener, MuxAcceptor)> {
    let config = config(&setup);
    let (a, b) = transport::pair(setup.transport).await?;
    Ok((
        MuxOpener(Connection::new(a, Role::Client, config.clone())),
        MuxAcceptor(Connection::new(b, Role::Server, config)),
    ))
}

impl Opener for MuxOpener {
    type Stream = Stream;

    async fn open(&self) -> io::Result<Stream> {
        self.0.open_stream().await.map_err(io::Error::other)
    }
}

impl Acceptor for MuxAcceptor {
    type Stream = Stream;

    async fn accept(&mut self) -> io::Result<Stream> {
        self.0.accept_stream().await.map_err(io::Error::other)
    }
}
