//! The upgrade: which protocol ids this muxer offers, and the connection
//! built once multistream-select has picked one.

use std::future::{ready, Ready};
use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use mux_core::compat::FuturesAsyncReadCompatExt;
use mux_yamux_lite::{Connection, Role, Wire};

use crate::muxer::Muxer;

/// A protocol id this muxer negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// `/mux/lite/1.0.0`: the lite wire, which only this crate speaks. It
    /// carries reset codes, close-read and each side's limits.
    Lite,
    /// `/yamux/1.0.0`: the yamux 1.0 wire every libp2p node speaks.
    Yamux,
}

impl Protocol {
    /// The protocol id multistream-select sees.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Lite => "/mux/lite/1.0.0",
            Protocol::Yamux => "/yamux/1.0.0",
        }
    }

    fn wire(self) -> Wire {
        match self {
            Protocol::Lite => Wire::Lite,
            Protocol::Yamux => Wire::Yamux,
        }
    }
}

impl AsRef<str> for Protocol {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The muxer upgrade handed to `SwarmBuilder::with_tcp` and its kin.
///
/// It offers `/mux/lite/1.0.0` first and `/yamux/1.0.0` second, so two
/// nodes using this crate speak the lite wire and anyone else speaks yamux.
/// Every other setting is the connection's [`mux_yamux_lite::Config`]; its
/// `wire` field is ignored, as negotiation picks the wire.
#[derive(Debug, Clone)]
pub struct Config {
    connection: mux_yamux_lite::Config,
    offer_lite: bool,
    close_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connection: mux_yamux_lite::Config::default(),
            offer_lite: true,
            close_grace: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// Uses `connection` for every connection (limits, windows, timeouts).
    pub fn with_connection(mut self, connection: mux_yamux_lite::Config) -> Self {
        self.connection = connection;
        self
    }

    /// Whether to offer the lite wire (default `true`). Without it this
    /// muxer offers `/yamux/1.0.0` alone, like `libp2p-yamux`.
    pub fn with_lite(mut self, offer: bool) -> Self {
        self.offer_lite = offer;
        self
    }

    /// How long `StreamMuxer::poll_close` lets open streams finish before
    /// resetting them (default 1 s). Closing then takes at most this plus
    /// the connection's `close_flush_timeout`.
    pub fn with_close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// The connection settings.
    pub fn connection(&self) -> &mux_yamux_lite::Config {
        &self.connection
    }

    fn upgrade<C>(self, io: C, protocol: Protocol, role: Role) -> Ready<io::Result<Muxer>>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        // The driver is a tokio task: outside a runtime, fail the upgrade
        // rather than panic in `tokio::spawn`.
        if tokio::runtime::Handle::try_current().is_err() {
            return ready(Err(io::Error::other(
                "mux-libp2p runs its connections on tokio: upgrade inside a tokio runtime",
            )));
        }
        let mut config = self.connection;
        config.wire = protocol.wire();
        tracing::debug!(protocol = protocol.as_str(), ?role, "muxer negotiated");
        let conn = Connection::new(io.compat(), role, config);
        ready(Ok(Muxer::new(conn, protocol, self.close_grace)))
    }
}

impl UpgradeInfo for Config {
    type Info = Protocol;
    type InfoIter = std::iter::Skip<std::array::IntoIter<Protocol, 2>>;

    fn protocol_info(&self) -> Self::InfoIter {
        let skip = usize::from(!self.offer_lite);
        [Protocol::Lite, Protocol::Yamux].into_iter().skip(skip)
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer;
    type Error = io::Error;
    type Future = Ready<io::Result<Muxer>>;

    fn upgrade_inbound(self, io: C, protocol: Protocol) -> Self::Future {
        self.upgrade(io, protocol, Role::Server)
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer;
    type Error = io::Error;
    type Future = Ready<io::Result<Muxer>>;

    fn upgrade_outbound(self, io: C, protocol: Protocol) -> Self::Future {
        self.upgrade(io, protocol, Role::Client)
    }
}
