//! Why a client connection ended, seen from its I/O.
//!
//! hyper runs the HTTP/2 connection in a task of its own and drops h2's
//! error when it ends, the only place that names a GOAWAY's code and who
//! sent it; the connection future it hands out ends as soon as every
//! `SendRequest` is gone, which a tunnel does not keep. So the client's I/O
//! passes through [`GoAwayWatch`]: it follows the HTTP/2 frame headers in
//! both directions, records the code of the last GOAWAY each way and the
//! first I/O error, and when hyper drops it (the connection has ended)
//! records in the connection's [`ConnEnd`] why, as h2 decides it.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
    task::{ready, Context, Poll},
};

use mux_core::ConnError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::io::ConnEnd;

/// The client connection preface (RFC 9113 3.4), which precedes the
/// client's first frame.
const CLIENT_PREFACE_LEN: usize = 24;
/// Length (3 bytes), type, flags, stream id (4 bytes).
const FRAME_HEADER_LEN: usize = 9;
/// Last-Stream-ID and Error Code; any debug data after them is skipped.
const GO_AWAY_PREFIX_LEN: usize = 8;
const GO_AWAY_TYPE: u8 = 0x7;
const SEEN_FLAG: u64 = 1 << 32;

/// The code of the last GOAWAY received and sent on one connection, and
/// its first I/O error.
#[derive(Debug, Default)]
pub(super) struct GoAways {
    // 0 until a GOAWAY passes, then `SEEN_FLAG | code`.
    received: AtomicU64,
    sent: AtomicU64,
    io_error: OnceLock<ConnError>,
}

impl GoAways {
    /// Why the connection ended, as h2 decides it: the peer's GOAWAY error
    /// code first, then this side's, then an I/O failure; `NO_ERROR` both
    /// ways (or no GOAWAY) and no I/O error is a clean end.
    pub(super) fn conn_error(&self) -> Option<ConnError> {
        let code = |slot: &AtomicU64| {
            let state = slot.load(Ordering::Acquire);
            let code = u32::try_from(state & u64::from(u32::MAX)).ok()?;
            (state & SEEN_FLAG != 0 && code != 0).then_some(code)
        };
        if let Some(code) = code(&self.received) {
            return Some(ConnError::GoAway { code });
        }
        if let Some(code) = code(&self.sent) {
            return Some(ConnError::GoAwaySent { code });
        }
        self.io_error.get().cloned()
    }

    fn failed(&self, err: &io::Error) {
        // A copy: `io::Error` is not `Clone`, and the original goes on to h2.
        let _ = self
            .io_error
            .set(ConnError::io(io::Error::new(err.kind(), err.to_string())));
    }
}

/// Where the scan of one direction stands.
#[derive(Debug)]
enum Scan {
    /// Bytes that are not a frame header or a GOAWAY's code: the preface,
    /// or the rest of a payload.
    Skip(usize),
    Header([u8; FRAME_HEADER_LEN], usize),
    /// The first bytes of a GOAWAY's payload, then how much follows them.
    GoAway([u8; GO_AWAY_PREFIX_LEN], usize, usize),
}

impl Scan {
    /// Follows `bytes`, the next bytes of the stream, and returns the code
    /// of each GOAWAY that completes in them. Never fails: a malformed
    /// frame is h2's to refuse, and it ends the connection.
    fn feed(&mut self, mut bytes: &[u8], mut on_go_away: impl FnMut(u32)) {
        while !bytes.is_empty() {
            match self {
                Self::Skip(left) => {
                    let n = (*left).min(bytes.len());
                    bytes = bytes.get(n..).unwrap_or_default();
                    *left = left.saturating_sub(n);
                    if *left == 0 {
                        *self = Self::Header([0; FRAME_HEADER_LEN], 0);
                    }
                }
                Self::Header(buf, have) => {
                    let n = fill(buf, have, bytes);
                    bytes = bytes.get(n..).unwrap_or_default();
                    if *have < FRAME_HEADER_LEN {
                        continue;
                    }
                    let [l0, l1, l2, kind, ..] = *buf;
                    let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                    *self = match len.checked_sub(GO_AWAY_PREFIX_LEN) {
                        Some(rest) if kind == GO_AWAY_TYPE => {
                            Self::GoAway([0; GO_AWAY_PREFIX_LEN], 0, rest)
                        }
                        _ => Self::Skip(len),
                    };
                    if let Self::Skip(0) = self {
                        *self = Self::Header([0; FRAME_HEADER_LEN], 0);
                    }
                }
                Self::GoAway(buf, have, rest) => {
                    let n = fill(buf, have, bytes);
                    bytes = bytes.get(n..).unwrap_or_default();
                    if *have < GO_AWAY_PREFIX_LEN {
                        continue;
                    }
                    let [_, _, _, _, c0, c1, c2, c3] = *buf;
                    on_go_away(u32::from_be_bytes([c0, c1, c2, c3]));
                    *self = match *rest {
                        0 => Self::Header([0; FRAME_HEADER_LEN], 0),
                        rest => Self::Skip(rest),
                    };
                }
            }
        }
    }
}

/// Copies what fits of `bytes` into `buf` after its first `have` bytes;
/// returns how many bytes it took.
fn fill(buf: &mut [u8], have: &mut usize, bytes: &[u8]) -> usize {
    let Some(free) = buf.get_mut(*have..) else {
        return 0;
    };
    let n = free.len().min(bytes.len());
    if let (Some(dst), Some(src)) = (free.get_mut(..n), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
    *have = have.saturating_add(n);
    n
}

fn record(slot: &AtomicU64, code: u32) {
    tracing::debug!(code, "mux-h2: GOAWAY on the client connection");
    slot.store(SEEN_FLAG | u64::from(code), Ordering::Release);
}

/// A client connection's I/O, noting the GOAWAYs and the I/O error that
/// pass in [`GoAways`], and telling `end` why the connection ended once
/// dropped. The bytes pass through untouched.
pub(super) struct GoAwayWatch<T> {
    io: T,
    reads: Scan,
    writes: Scan,
    seen: Arc<GoAways>,
    end: ConnEnd,
}

impl<T> GoAwayWatch<T> {
    pub(super) fn new(io: T, seen: Arc<GoAways>, end: ConnEnd) -> Self {
        Self {
            io,
            // The server's first frame (SETTINGS) opens what it sends.
            reads: Scan::Header([0; FRAME_HEADER_LEN], 0),
            writes: Scan::Skip(CLIENT_PREFACE_LEN),
            seen,
            end,
        }
    }

    fn wrote(&mut self, written: &[u8]) {
        let seen = &self.seen;
        self.writes.feed(written, |code| record(&seen.sent, code));
    }

    fn check<R>(&self, result: io::Result<R>) -> io::Result<R> {
        if let Err(e) = &result {
            self.seen.failed(e);
        }
        result
    }
}

impl<T> Drop for GoAwayWatch<T> {
    fn drop(&mut self) {
        // hyper drops the I/O when its connection task ends, whether the
        // connection ended cleanly or not.
        let cause = self.seen.conn_error();
        if let Some(cause) = &cause {
            tracing::debug!(%cause, "mux-h2: HTTP/2 client connection ended");
        }
        self.end.finish(cause);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GoAwayWatch<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let start = buf.filled().len();
        let polled = ready!(Pin::new(&mut this.io).poll_read(cx, buf));
        this.check(polled)?;
        let seen = &this.seen;
        let read = buf.filled().get(start..).unwrap_or_default();
        this.reads.feed(read, |code| record(&seen.received, code));
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GoAwayWatch<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = ready!(Pin::new(&mut this.io).poll_write(cx, buf));
        let n = this.check(polled)?;
        this.wrote(buf.get(..n).unwrap_or(buf));
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs));
        let n = this.check(polled)?;
        let mut left = n;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(buf.len());
            this.wrote(buf.get(..take).unwrap_or_default());
            left = left.saturating_sub(take);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = ready!(Pin::new(&mut this.io).poll_flush(cx));
        Poll::Ready(this.check(polled))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = ready!(Pin::new(&mut this.io).poll_shutdown(cx));
        Poll::Ready(this.check(polled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, 0, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    fn go_away(code: u32, debug: &[u8]) -> Vec<u8> {
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(debug);
        frame(GO_AWAY_TYPE, &p)
    }

    fn codes(stream: &[u8], start: Scan, piece: usize) -> Vec<u32> {
        let mut scan = start;
        let mut got = Vec::new();
        for chunk in stream.chunks(piece) {
            scan.feed(chunk, |c| got.push(c));
        }
        got
    }

    #[test]
    fn finds_go_aways_between_frames_in_any_split() {
        let mut stream = frame(0x4, &[0; 6]);
        stream.extend(frame(0x0, b"GOAWAY-looking data \x00\x00\x08\x07"));
        stream.extend(go_away(11, b"calm down"));
        stream.extend(frame(0x8, &[0, 0, 1, 0]));
        stream.extend(frame(0x0, &[]));
        stream.extend(go_away(2, b""));
        for piece in 1..=stream.len() {
            assert_eq!(
                codes(&stream, Scan::Header([0; 9], 0), piece),
                [11, 2],
                "{piece}"
            );
        }
    }

    #[test]
    fn skips_the_client_preface() {
        let mut stream = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        stream.extend(frame(0x4, &[]));
        stream.extend(go_away(1, b""));
        assert_eq!(codes(&stream, Scan::Skip(CLIENT_PREFACE_LEN), 5), [1]);
    }

    #[test]
    fn a_short_go_away_is_skipped_and_garbage_does_not_panic() {
        let mut stream = frame(GO_AWAY_TYPE, &[0, 0, 0, 1, 0, 0]);
        stream.extend(go_away(7, b""));
        assert_eq!(codes(&stream, Scan::Header([0; 9], 0), 3), [7]);
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let garbage: Vec<u8> = (0..100_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng.to_be_bytes()[0]
            })
            .collect();
        let _ = codes(&garbage, Scan::Header([0; 9], 0), 977);
    }

    #[test]
    fn the_peer_s_code_wins_and_no_error_is_a_clean_end() {
        let seen = GoAways::default();
        assert!(seen.conn_error().is_none());
        record(&seen.sent, 0);
        assert!(seen.conn_error().is_none());
        record(&seen.sent, 1);
        assert!(matches!(
            seen.conn_error(),
            Some(ConnError::GoAwaySent { code: 1 })
        ));
        record(&seen.received, 11);
        assert!(matches!(
            seen.conn_error(),
            Some(ConnError::GoAway { code: 11 })
        ));
    }
}
