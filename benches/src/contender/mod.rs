//! The contenders, behind two small traits.
//!
//! A contender, started over a [`Transport`], is an
//! [`Opener`] (cloneable, used by the client side) and an [`Acceptor`] (the
//! server side) of [`BenchStream`]s, which are tokio `AsyncRead +
//! AsyncWrite`; `shutdown` is close-write (FIN). Scenario code is generic
//! over the two traits; [`with_contender!`](crate::with_contender) picks the
//! concrete types from a [`Contender`] value.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::transport::{self, Io};
use crate::Transport;

pub mod interop;
pub mod mux;
pub mod raw;
pub mod tokio_yamux;
pub mod yamux;

/// A stream the scenarios can drive: tokio I/O, movable into a task.
pub trait BenchStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> BenchStream for T {}

/// The client side of a contender: opens streams, from any task.
pub trait Opener: Clone + Send + Sync + 'static {
    /// The stream type.
    type Stream: BenchStream;

    /// Opens a stream. (yamux 0.14 tells the peer only with the first
    /// write; scenarios write before they expect the peer to accept.)
    fn open(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// The server side of a contender: accepts the streams the client opens.
pub trait Acceptor: Send + 'static {
    /// The stream type.
    type Stream: BenchStream;

    /// The next stream the client opened.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// What a scenario needs from a contender when starting it.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The transport to run over.
    pub transport: Transport,
    /// How many streams the scenario keeps open at once. mux-yamux-lite
    /// raises its inbound-stream limit to fit (its default is 1000); the
    /// incumbents keep their default configurations.
    pub max_streams: usize,
}

impl Setup {
    /// A setup for `transport` with at most `max_streams` streams open.
    pub fn new(transport: Transport, max_streams: usize) -> Self {
        Self {
            transport,
            max_streams,
        }
    }

    /// Makes one connection of the transport and starts a client side
    /// (`client`) over one end and a server side (`server`) over the other:
    /// how every muxer starts, whether both sides are the same
    /// implementation or not.
    pub async fn sides<O, A>(
        &self,
        client: impl FnOnce(Io) -> O,
        server: impl FnOnce(Io) -> A,
    ) -> io::Result<(O, A)> {
        let (a, b) = transport::pair(self.transport).await?;
        Ok((client(a), server(b)))
    }
}

/// The implementations compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contender {
    /// No muxer: one transport connection per stream.
    Raw,
    /// mux-yamux-lite, this workspace's muxer, on its own wire.
    Mux,
    /// mux-yamux-lite on the yamux 1.0 wire, on both sides.
    MuxYamuxWire,
    /// The `yamux` crate 0.14, through `tokio_util::compat`.
    Yamux,
    /// The `tokio-yamux` crate 0.3.
    TokioYamux,
    /// mux-yamux-lite on the yamux wire opening streams to a server of the
    /// `yamux` crate 0.14.
    MuxToYamux,
    /// A client of the `yamux` crate 0.14 opening streams to mux-yamux-lite
    /// on the yamux wire.
    YamuxToMux,
}

impl Contender {
    /// Every contender, in table order.
    pub const ALL: [Self; 7] = [
        Self::Raw,
        Self::Mux,
        Self::MuxYamuxWire,
        Self::Yamux,
        Self::TokioYamux,
        Self::MuxToYamux,
        Self::YamuxToMux,
    ];

    /// The name used in tables, filters and bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Mux => "mux-yamux-lite",
            Self::MuxYamuxWire => "mux (yamux wire)",
            Self::Yamux => "yamux 0.14",
            Self::TokioYamux => "tokio-yamux 0.3",
            Self::MuxToYamux => "mux client → yamux server",
            Self::YamuxToMux => "yamux client → mux server",
        }
    }

    /// A short identifier without spaces (criterion bench ids).
    pub fn id(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Mux => "mux",
            Self::MuxYamuxWire => "mux-yamux-wire",
            Self::Yamux => "yamux",
            Self::TokioYamux => "tokio-yamux",
            Self::MuxToYamux => "mux-to-yamux",
            Self::YamuxToMux => "yamux-to-mux",
        }
    }

    /// Why this contender cannot run `setup`, if it cannot.
    pub fn unsupported(self, setup: &Setup) -> Option<&'static str> {
        match self {
            // Opens past the limit wait for a stream to end, so the
            // scenario would measure a queue rather than the muxer.
            Self::MuxYamuxWire | Self::MuxToYamux
                if setup.max_streams > self::mux::YAMUX_WIRE_MAX_STREAMS =>
            {
                Some("n/a (256 streams on the yamux wire)")
            }
            Self::Yamux | Self::YamuxToMux if setup.max_streams > self::yamux::MAX_STREAMS => {
                Some("n/a (max 512 streams)")
            }
            // Two descriptors per stream against a 20,000 open-file limit.
            Self::Raw if setup.transport == Transport::Tcp && setup.max_streams > 5000 => {
                Some("n/a (1 socket pair per stream)")
            }
            _ => None,
        }
    }
}

/// Starts `$contender` with `$setup` (a [`Setup`]) and evaluates `$body`
/// with `$opener` and `$acceptor` bound to its concrete types; the body is
/// expanded once per contender. Must be used in an async fn returning
/// `io::Result<_>`.
#[macro_export]
macro_rules! with_contender {
    ($contender:expr, $setup:expr, |$opener:ident, $acceptor:ident| $body:expr) => {
        match $contender {
            $crate::Contender::Raw => {
                let ($opener, $acceptor) = $crate::contender::raw::start($setup).await?;
                $body
            }
            $crate::Contender::Mux => {
                let ($opener, $acceptor) =
                    $crate::contender::mux::start($setup, $crate::contender::mux::Wire::Lite)
                        .await?;
                $body
            }
            $crate::Contender::MuxYamuxWire => {
                let ($opener, $acceptor) =
                    $crate::contender::mux::start($setup, $crate::contender::mux::Wire::Yamux)
                        .await?;
                $body
            }
            $crate::Contender::Yamux => {
                let ($opener, $acceptor) = $crate::contender::yamux::start($setup).await?;
                $body
            }
            $crate::Contender::TokioYamux => {
                let ($opener, $acceptor) = $crate::contender::tokio_yamux::start($setup).await?;
                $body
            }
            $crate::Contender::MuxToYamux => {
                let ($opener, $acceptor) = $crate::contender::interop::mux_to_yamux($setup).await?;
                $body
            }
            $crate::Contender::YamuxToMux => {
                let ($opener, $acceptor) = $crate::contender::interop::yamux_to_mux($setup).await?;
                $body
            }
        }
    };
}
