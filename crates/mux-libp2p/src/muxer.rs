//! [`Muxer`]: one negotiated connection as libp2p's `StreamMuxer`.
//!
//! The connection runs on its own tokio task, so nothing here drives I/O:
//! the muxer turns the connection's async calls into the polls libp2p
//! makes, one pending call of each kind at a time.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p_core::muxing::{StreamMuxer, StreamMuxerEvent};
use mux_core::{ConnError, ShutdownOutcome};
use mux_yamux_lite::{Connection, Stream};

use crate::config::Protocol;
use crate::substream::Substream;

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One connection, as `libp2p_core::muxing::StreamMuxer`.
///
/// - **Back-pressure:** streams the peer opens wait in the connection's
///   accept backlog (`Config::accept_backlog`, 256 by default) until
///   `poll_inbound` takes them; beyond it the peer's new streams are reset
///   and the connection lives on.
/// - **Opening** waits while the peer holds too many of this side's opens
///   unacknowledged, for at most `Config::open_timeout`; libp2p then ends
///   the connection with [`ConnError::OpenTimeout`].
/// - **Closing** is a graceful shutdown: streams still open get the
///   upgrade's close grace (1 s by default) to finish, then are reset.
/// - **`poll`** reports only the connection's end, with its reason.
pub struct Muxer {
    conn: Connection,
    protocol: Protocol,
    close_grace: Duration,
    inbound: Option<Pending<Result<Stream, ConnError>>>,
    outbound: Option<Pending<Result<Stream, ConnError>>>,
    closing: Option<Pending<Result<ShutdownOutcome, ConnError>>>,
    ended: Option<Pending<ConnError>>,
    end: Option<ConnError>,
}

impl std::fmt::Debug for Muxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Muxer")
            .field("protocol", &self.protocol)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Muxer {
    pub(crate) fn new(conn: Connection, protocol: Protocol, close_grace: Duration) -> Self {
        Self {
            conn,
            protocol,
            close_grace,
            inbound: None,
            outbound: None,
            closing: None,
            ended: None,
            end: None,
        }
    }

    /// The protocol multistream-select picked for this connection.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The connection underneath: stats, round-trip time, `close_with` a
    /// code.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Polls the call in `slot`, starting it with `start` when none is pending.
/// The calls are cancel-safe, so a slot dropped with the muxer loses
/// nothing.
fn poll_slot<T>(
    slot: &mut Option<Pending<T>>,
    cx: &mut Context<'_>,
    start: impl FnOnce() -> Pending<T>,
) -> Poll<T> {
    let call = slot.get_or_insert_with(start);
    let out = std::task::ready!(call.as_mut().poll(cx));
    *slot = None;
    Poll::Ready(out)
}

impl StreamMuxer for Muxer {
    type Substream = Substream;
    type Error = ConnError;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Substream, ConnError>> {
        let this = self.get_mut();
        let conn = &this.conn;
        poll_slot(&mut this.inbound, cx, || {
            let conn = conn.clone();
            Box::pin(async move { conn.accept_stream().await })
        })
        .map_ok(Substream::new)
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Substream, ConnError>> {
        let this = self.get_mut();
        let conn = &this.conn;
        poll_slot(&mut this.outbound, cx, || {
            let conn = conn.clone();
            Box::pin(async move { conn.open_stream().await })
        })
        .map_ok(Substream::new)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        let this = self.get_mut();
        let (conn, grace) = (&this.conn, this.close_grace);
        let ended = std::task::ready!(poll_slot(&mut this.closing, cx, || {
            let conn = conn.clone();
            Box::pin(async move {
                let now = tokio::time::Instant::now();
                let deadline = now.checked_add(grace).unwrap_or(now);
                conn.shutdown(deadline).await
            })
        }));
        Poll::Ready(match ended {
            Ok(ShutdownOutcome::Drained) => Ok(()),
            Ok(outcome) => {
                tracing::debug!(?outcome, "streams cut at close");
                Ok(())
            }
            // Closed by either side before: closing is done.
            Err(ConnError::Closed | ConnError::GoAway { .. }) => Ok(()),
            Err(e) => Err(e),
        })
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, ConnError>> {
        let this = self.get_mut();
        if let Some(end) = &this.end {
            return Poll::Ready(Err(end.clone()));
        }
        let conn = &this.conn;
        let end = std::task::ready!(poll_slot(&mut this.ended, cx, || {
            let conn = conn.clone();
            Box::pin(async move { conn.closed().await })
        }));
        this.end = Some(end.clone());
        Poll::Ready(Err(end))
    }
}
