//! A tunnel, [`H2Conn`], and its two halves, [`TunnelReader`] and
//! [`TunnelWriter`], over either an HTTP/2 body pair or an upgraded
//! connection.
//!
//! **Body mode** (HTTP/2 POST and other non-CONNECT methods): the reader
//! polls the incoming body (hyper's [`Incoming`](hyper::body::Incoming),
//! or a framework's); the writer feeds a queue of at most
//! [`SEND_QUEUE_CHUNKS`] chunks of at most [`MAX_CHUNK`] bytes, drained by the
//! outgoing [`TunnelBody`] that hyper sends. hyper takes a chunk only when the
//! HTTP/2 stream has send window, and gives window back only as the peer's
//! reader consumes, so a stalled reader stops this writer after the peer's
//! receive window plus this queue.
//!
//! **Upgraded mode** (HTTP/2 CONNECT, HTTP/1.1 upgrade): the reader and a
//! pump task share hyper's [`Upgraded`] connection behind a mutex, which the
//! server side fills in lazily once its response has gone out; the pump
//! sends the writer's queue, the same queue as in body mode.
//!
//! Files, each using only those before it: `shared` (the state both
//! halves, the sender and every [`ResetHandle`] share, and what happens on
//! reset and drop) and `queue` (the writer's coalescing send queue), then
//! `reader` and `writer` (which also holds the two senders: the outgoing
//! body that hyper drains and the pump). This file joins the halves into an
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

mod queue;
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

use crate::error::{BodyError, BoxError};
use queue::SendQueue;
pub use queue::{MAX_CHUNK, SEND_QUEUE_CHUNKS};
use reader::ReadInner;
pub use reader::TunnelReader;
pub(crate) use shared::ConnEnd;
pub use shared::{ResetHandle, TunnelKind, DEFAULT_RESET_CODE, DROP_DRAIN_TIMEOUT};
use shared::{Shared, UpState};
pub use writer::TunnelWriter;
use writer::{pump, Outgoing};

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

/// The HTTP/2 receive window of each tunnel stream, on both sides (hyper's
/// server default; its client default is 2 MiB).
///
/// This bounds how far a peer's writer can run ahead of this side's reader.
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// The largest HTTP/2 frame each side accepts (`SETTINGS_MAX_FRAME_SIZE`),
/// on both sides: a [`MAX_CHUNK`] of tunnel bytes goes out as one DATA
/// frame instead of four of HTTP/2's default 16 KiB.
pub const MAX_FRAME_SIZE: u32 = 64 * 1024;

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
    queue: Arc<SendQueue>,
}

/// Starts a body-mode tunnel on a connection whose end `conn_end` reports
/// (when this crate runs it): the body hyper must send, and what
/// [`PendingBody::finish`] completes once the incoming body is known.
pub(crate) fn body_tunnel(conn_end: Option<ConnEnd>) -> (PendingBody, TunnelBody) {
    let shared = Shared::new(TunnelKind::H2Body, None, conn_end);
    let queue = Arc::new(SendQueue::default());
    let outgoing = Outgoing {
        queue: queue.clone(),
        shared: shared.clone(),
        reset_sent: false,
    };
    (
        PendingBody { shared, queue },
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
        let reader = TunnelReader::new(
            self.shared.clone(),
            ReadInner::Body {
                body: Mutex::new(incoming.map_err(Into::into).boxed_unsync()),
                chunk: Bytes::new(),
                ended: false,
            },
        );
        let writer = TunnelWriter {
            shared: self.shared,
            queue: self.queue,
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

/// Builds an upgraded tunnel over one connection, and spawns the task that
/// sends its writer's queue (so must run inside a tokio runtime).
pub(crate) fn upgraded_tunnel(
    kind: TunnelKind,
    source: UpgradeSource,
    conn_end: Option<ConnEnd>,
) -> (TunnelReader, TunnelWriter) {
    let state = match source {
        UpgradeSource::Ready(up) => UpState::Ready(TokioIo::new(up)),
        UpgradeSource::Pending(on) => UpState::Pending(on),
    };
    let shared = Shared::new(kind, Some(state), conn_end);
    let queue = Arc::new(SendQueue::default());
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(pump(shared.clone(), queue.clone()))),
        Err(e) => {
            tracing::warn!(error = %e, "mux-h2: tunnel built outside a tokio runtime cannot send");
            queue.sender_gone(Some(std::io::Error::other(e)));
        }
    }
    let reader = TunnelReader::new(shared.clone(), ReadInner::Upgraded);
    let writer = TunnelWriter { shared, queue };
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
