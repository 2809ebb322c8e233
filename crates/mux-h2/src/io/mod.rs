//! A tunnel, [`H2Conn`], and its two halves, [`TunnelReader`] and
//! [`TunnelWriter`], over either an HTTP/2 body pair or an upgraded
//! connection.
//!
//! **Body mode** (HTTP/2 POST and other non-CONNECT methods): the reader
//! polls the incoming body (hyper's [`Incoming`](hyper::body::Incoming),
//! or a framework's); the writer feeds a channel of at most
//! [`SEND_QUEUE_CHUNKS`] chunks of at most [`MAX_CHUNK`] bytes, drained by the
//! outgoing [`TunnelBody`] that hyper sends. hyper takes a chunk only when the
//! HTTP/2 stream has send window, and gives window back only as the peer's
//! reader consumes, so a stalled reader stops this writer after the peer's
//! receive window plus this queue.
//!
//! **Upgraded mode** (HTTP/2 CONNECT, HTTP/1.1 upgrade): both halves share
//! hyper's [`Upgraded`] connection behind a mutex, which the server side
//! fills in lazily once its response has gone out.
//!
//! Files, each using only those before it: `shared` (the state both
//! halves, the outgoing body and every [`ResetHandle`] share, and what
//! happens on reset and drop), `reader`, `writer` (which also holds the
//! outgoing body that hyper drains). This file joins the halves into an
//! [`H2Conn`] and has the limits and the constructors the client and server
//! use.

/// What both halves offer alike: a `Debug` that shows the shared state,
/// a [`ResetHandle`], and the tunnel's [`TunnelKind`].
macro_rules! tunnel_half {
    ($half:ident, $what:literal) => {
        impl std::fmt::Debug for $half {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($half))
                    .field("shared", &self.shared)
                    .finish_non_exhaustive()
            }
        }

        impl $half {
            #[doc = concat!("A handle that resets this ", $what, "'s tunnel.")]
            pub fn reset_handle(&self) -> super::shared::ResetHandle {
                super::shared::ResetHandle {
                    shared: self.shared.clone(),
                }
            }

            /// Which HTTP mechanism carries the tunnel.
            pub fn kind(&self) -> super::shared::TunnelKind {
                self.shared.kind
            }
        }
    };
}

mod reader;
mod shared;
mod writer;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::{
    body::Body,
    upgrade::{OnUpgrade, Upgraded},
};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use crate::error::{BodyError, BoxError};
use reader::ReadInner;
pub use reader::TunnelReader;
pub use shared::{ResetHandle, TunnelKind, DEFAULT_RESET_CODE, DROP_DRAIN_TIMEOUT};
use shared::{Shared, UpState};
use writer::{Outgoing, WriteInner};
pub use writer::{TunnelWriter, MAX_CHUNK};

/// A tunnel: one HTTP exchange as a full-duplex connection with Go
/// `net.Conn` semantics (see [`mux_core::RwConn`]). [`H2ConnExt`] adds reset.
///
/// Dropping a tunnel right after a successful `shutdown` (or
/// [`RwConn::close`](mux_core::RwConn::close)) loses nothing: what was
/// written still reaches the peer, then EOF, because the receiving side
/// keeps draining in the background until the peer ends its side, for at
/// most [`DROP_DRAIN_TIMEOUT`] (see [`TunnelWriter`]).
pub type H2Conn = mux_core::RwConn<TunnelReader, TunnelWriter>;

/// Tunnel operations on an [`H2Conn`] beyond those of `RwConn`.
pub trait H2ConnExt {
    /// Aborts the tunnel with [`DEFAULT_RESET_CODE`]; see [`ResetHandle`].
    fn reset(&self);

    /// Aborts the tunnel with `code`; see [`ResetHandle::reset_with`].
    fn reset_with(&self, code: u32);

    /// A cloneable handle that resets the tunnel from another task, for
    /// example while this one is blocked in a read.
    fn reset_handle(&self) -> ResetHandle;

    /// Which HTTP mechanism carries the tunnel.
    fn tunnel_kind(&self) -> TunnelKind;
}

impl H2ConnExt for H2Conn {
    fn reset(&self) {
        self.get_ref().1.reset_handle().reset();
    }

    fn reset_with(&self, code: u32) {
        self.get_ref().1.reset_handle().reset_with(code);
    }

    fn reset_handle(&self) -> ResetHandle {
        self.get_ref().1.reset_handle()
    }

    fn tunnel_kind(&self) -> TunnelKind {
        self.get_ref().1.kind()
    }
}

/// How many chunks the outgoing body queue of a body-mode tunnel holds.
///
/// With [`MAX_CHUNK`] this bounds what a writer can queue ahead of hyper to
/// `8 × 16 KiB = 128 KiB`; hyper itself holds at most one more chunk while it
/// waits for HTTP/2 send window.
pub const SEND_QUEUE_CHUNKS: usize = 8;

/// The HTTP/2 receive window of each tunnel stream, on both sides (hyper's
/// server default; its client default is 2 MiB).
///
/// This bounds how far a peer's writer can run ahead of this side's reader.
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// The HTTP/2 receive window of a whole connection, on both sides.
///
/// A stalled tunnel keeps up to [`STREAM_WINDOW`] of it; at hyper's server
/// default (1 MiB, equal to the stream window) one stalled tunnel would
/// stall every other tunnel sharing the connection. 8 MiB lets eight stall
/// before the rest are blocked, at the cost of up to 8 MiB of unread data
/// held per connection.
pub const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// The body type of every response [`accept`](crate::accept) builds and of
/// every request this crate sends.
pub type TunnelBody = BoxBody<Bytes, BodyError>;

/// The sending side of a body-mode tunnel, made before the incoming body
/// exists: a client sends its request body before it has the response's.
pub(crate) struct PendingBody {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bytes>,
}

/// Starts a body-mode tunnel: the body hyper must send, and what
/// [`PendingBody::finish`] completes once the incoming body is known.
pub(crate) fn body_tunnel() -> (PendingBody, TunnelBody) {
    let shared = Shared::new(TunnelKind::H2Body, None);
    let (tx, rx) = mpsc::channel(SEND_QUEUE_CHUNKS);
    let outgoing = Outgoing {
        rx,
        shared: shared.clone(),
        reset_sent: false,
    };
    (
        PendingBody { shared, tx },
        StreamBody::new(outgoing).boxed(),
    )
}

impl PendingBody {
    /// The two halves, reading `incoming` (hyper's [`Incoming`](hyper::body::Incoming) or any
    /// other body, such as a framework's).
    pub(crate) fn finish<B>(self, incoming: B) -> (TunnelReader, TunnelWriter)
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let reader = TunnelReader {
            shared: self.shared.clone(),
            inner: ReadInner::Body {
                body: Mutex::new(incoming.map_err(Into::into).boxed_unsync()),
                chunk: Bytes::new(),
            },
        };
        let writer = TunnelWriter {
            shared: self.shared,
            inner: WriteInner::Body {
                tx: PollSender::new(self.tx),
                shut: false,
            },
        };
        (reader, writer)
    }
}

/// How an upgraded tunnel gets its connection.
pub(crate) enum UpgradeSource {
    /// Already upgraded (client side).
    Ready(Upgraded),
    /// Completes once the response has gone out (server side).
    Pending(OnUpgrade),
}

/// Builds an upgraded tunnel over one connection.
pub(crate) fn upgraded_tunnel(
    kind: TunnelKind,
    source: UpgradeSource,
) -> (TunnelReader, TunnelWriter) {
    let state = match source {
        UpgradeSource::Ready(up) => UpState::Ready(TokioIo::new(up)),
        UpgradeSource::Pending(on) => UpState::Pending(on),
    };
    let shared = Shared::new(kind, Some(state));
    let reader = TunnelReader {
        shared: shared.clone(),
        inner: ReadInner::Upgraded,
    };
    let writer = TunnelWriter {
        shared,
        inner: WriteInner::Upgraded,
    };
    (reader, writer)
}

/// An empty [`TunnelBody`].
pub(crate) fn empty_body() -> TunnelBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A [`TunnelBody`] holding `text`.
pub(crate) fn full_body(text: String) -> TunnelBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}
