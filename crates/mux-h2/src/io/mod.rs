//! The two halves of a tunnel, [`TunnelReader`] and [`TunnelWriter`], over
//! either an HTTP/2 body pair or an upgraded connection.
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
//! Files: `shared` (the state both halves, the outgoing body and every
//! [`ResetHandle`] share, and what happens on reset and drop), `reader`,
//! `writer` (which also holds the outgoing body that hyper drains). This
//! file has the limits and the constructors the client and server use.

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
            pub fn reset_handle(&self) -> super::ResetHandle {
                super::ResetHandle {
                    shared: self.shared.clone(),
                }
            }

            /// Which HTTP mechanism carries the tunnel.
            pub fn kind(&self) -> super::TunnelKind {
                self.shared.kind
            }
        }
    };
}

mod reader;
mod shared;
mod writer;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

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
pub use shared::ResetHandle;
use shared::{Shared, UpState};
pub use writer::TunnelWriter;
use writer::{Outgoing, WriteInner};

/// How many chunks the outgoing body queue of a body-mode tunnel holds.
///
/// With [`MAX_CHUNK`] this bounds what a writer can queue ahead of hyper to
/// `8 × 16 KiB = 128 KiB`; hyper itself holds at most one more chunk while it
/// waits for HTTP/2 send window.
pub const SEND_QUEUE_CHUNKS: usize = 8;

/// The most bytes one `poll_write` accepts (a write of more is partial).
///
/// 16 KiB is HTTP/2's default maximum DATA frame, so a chunk maps onto one
/// frame. It also caps each copy hyper's upgraded I/O makes per write.
pub const MAX_CHUNK: usize = 16 * 1024;

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

/// How long a tunnel dropped after a successful `poll_shutdown` keeps its
/// HTTP/2 stream open, at most, so that what it wrote still goes out.
///
/// Once both halves of a tunnel (an [`H2Conn`](crate::H2Conn)) are dropped,
/// its receiving side moves to a background task that reads and discards
/// whatever the peer still sends, until the peer ends its side, resets the
/// stream or the connection goes, or this long has passed. Without that,
/// an HTTP/2 client would cancel the stream on drop (`RST_STREAM(CANCEL)`)
/// and h2 would discard the DATA still queued behind the peer's flow-control
/// window, although `poll_shutdown` had returned `Ok`. Like a TCP socket's
/// orphan timeout (Linux's `tcp_fin_timeout`), it bounds what a peer that
/// never ends its side can hold; data the peer has not taken by then is
/// lost. A writer that must know everything arrived reads to EOF (or an
/// application-level acknowledgement) before dropping.
///
/// Needs a tokio runtime with timers; a tunnel dropped outside a runtime,
/// without a shutdown, or after a reset is released at once.
pub const DROP_LINGER: Duration = Duration::from_secs(60);

/// The RST_STREAM code of [`ResetHandle::reset`]: `INTERNAL_ERROR` (2).
///
/// Not `NO_ERROR` or `CANCEL`: hyper reports `NO_ERROR` to a body reader,
/// and both to an upgraded reader, as a clean end of stream, which would
/// hide the reset.
pub const DEFAULT_RESET_CODE: u32 = 0x2;

/// The body type of every response [`accept`](crate::accept) builds and of
/// every request this crate sends.
pub type TunnelBody = BoxBody<Bytes, BodyError>;

/// Which HTTP mechanism carries a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TunnelKind {
    /// An HTTP/2 request body and response body (POST or any non-CONNECT
    /// method). Resets carry their code to the peer.
    H2Body,
    /// An HTTP/2 CONNECT stream, through hyper's upgrade API. hyper offers
    /// no reset there: a reset ends the stream, see [`ResetHandle::reset`].
    H2Connect,
    /// An HTTP/1.1 connection taken over with `101 Switching Protocols`.
    Http1Upgrade,
}

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
