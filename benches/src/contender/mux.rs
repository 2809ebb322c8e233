//! mux-yamux-lite, this workspace's muxer: a cloneable `Connection` opens
//! and accepts; its `Stream` is tokio I/O already. It runs on either wire
//! ([`Wire::Lite`], its own, or [`Wire::Yamux`]), and each side can be
//! started alone, facing a peer of another implementation
//! ([`super::interop`]).

use std::io;

pub use mux_yamux_lite::Wire;
use mux_yamux_lite::{session::YAMUX_PEER, Config, Connection, Role, Stream};

use super::{Acceptor, Opener, Setup};
use crate::transport::Io;

/// Streams this side keeps open at once on the yamux wire: the limit it
/// assumes of a yamux peer, as there is no HELLO to announce a higher one.
/// Opens beyond it wait.
pub const YAMUX_WIRE_MAX_STREAMS: usize = YAMUX_PEER.max_inbound_streams as usize;

/// The configuration used: the default on `wire`, with
/// `max_inbound_streams`, `accept_backlog` and `connection_receive_budget`
/// raised when the scenario keeps more streams open than the defaults
/// allow (1000 streams, 256 waiting, and 256 MiB of windows: 1024 streams
/// of 256 KiB).
pub fn config(setup: &Setup, wire: Wire) -> Config {
    let mut config = Config::default();
    config.wire = wire;
    if setup.max_streams > config.max_inbound_streams {
        config.max_inbound_streams = setup.max_streams;
    }
    if setup.max_streams > config.accept_backlog {
        config.accept_backlog = setup.max_streams;
    }
    let windows = u64::try_from(setup.max_streams)
        .unwrap_or(u64::MAX)
        .saturating_mul(u64::from(config.initial_window));
    config.connection_receive_budget = config.connection_receive_budget.max(windows);
    config
}

/// The client side.
#[derive(Debug, Clone)]
pub struct MuxOpener(pub Connection);

/// The server side.
#[derive(Debug)]
pub struct MuxAcceptor(pub Connection);

/// Starts a client connection on `wire` over `io`.
pub fn client(io: Io, setup: &Setup, wire: Wire) -> MuxOpener {
    MuxOpener(Connection::new(io, Role::Client, config(setup, wire)))
}

/// Starts a server connection on `wire` over `io`.
pub fn server(io: Io, setup: &Setup, wire: Wire) -> MuxAcceptor {
    MuxAcceptor(Connection::new(io, Role::Server, config(setup, wire)))
}

/// Starts a client and a server connection on `wire` over one connection
/// of `setup.transport`.
pub async fn start(setup: Setup, wire: Wire) -> io::Result<(MuxOpener, MuxAcceptor)> {
    setup
        .sides(|a| client(a, &setup, wire), |b| server(b, &setup, wire))
        .await
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
