//! A stream's flow control: the credit this side grants the peer
//! ([`RecvWindow`]) and the credit the peer grants this side
//! ([`SendWindow`]).
//!
//! Each type owns its arithmetic and states its invariants with
//! `debug_assert!`, so a debug build (tests, the simulation, fuzz replays)
//! stops at the first broken one. Peer input is checked with an error path:
//! DATA beyond the credit ([`RecvWindow::admit`]) and a WINDOW_UPDATE past
//! 2^31 − 1 ([`SendWindow::on_update`]). Everything else is this side's own
//! bookkeeping, bounded by the invariants; should one break in a release
//! build, the counts stop at their bounds rather than wrap.

use std::time::Instant;

use crate::config::MAX_WINDOW;

/// A window larger than this gets updates every quarter window
/// ([`RecvWindow::update_due`]): the default initial window.
const GROWN: u32 = crate::config::DEFAULT_INITIAL_WINDOW;

/// The receive window of a stream: what the peer may send and where the
/// bytes it sent are.
///
/// Invariants: `credit + buffered + consumed == window` and
/// `window <= MAX_WINDOW`. Every byte of the window is either still
/// available to the peer (`credit`), arrived and unread (`buffered`), or
/// read or discarded and not yet returned to the peer (`consumed`).
#[derive(Debug)]
pub(crate) struct RecvWindow {
    /// The current window, grown by auto-tuning.
    window: u32,
    /// Bytes the peer may still send before more credit is granted.
    credit: u32,
    /// Bytes received and not yet read; the length of the stream's
    /// receive buffer.
    buffered: u32,
    /// Bytes read or discarded since the last window update.
    consumed: u32,
    /// Where auto-tuning's measurement of the delivery rate starts: when
    /// the last window update was framed, or before the first, when the
    /// first DATA arrived.
    since: Option<Instant>,
}

/// What auto-tuning reads of a window when an update is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TuneInput {
    /// The current window.
    pub(crate) window: u32,
    /// Bytes consumed since `since`.
    pub(crate) consumed: u32,
    /// What the peer may still send (sent and in flight, or not sent).
    pub(crate) credit: u32,
    /// Where the measurement starts (`None`: no DATA arrived yet).
    pub(crate) since: Option<Instant>,
}

impl RecvWindow {
    /// A window of `window` bytes, of which the peer already knows
    /// `advertised` (at most `window`): the rest counts as consumed, so the
    /// next window update grants it.
    pub(crate) fn with_advertised(window: u32, advertised: u32) -> Self {
        let credit = advertised.min(window);
        let w = Self {
            window,
            credit,
            buffered: 0,
            consumed: window.saturating_sub(credit),
            since: None,
        };
        w.debug_check();
        w
    }

    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    pub(crate) fn credit(&self) -> u32 {
        self.credit
    }

    pub(crate) fn buffered(&self) -> u32 {
        self.buffered
    }

    pub(crate) fn consumed(&self) -> u32 {
        self.consumed
    }

    /// What auto-tuning reads when an update is framed.
    pub(crate) fn tune_input(&self) -> TuneInput {
        TuneInput {
            window: self.window,
            consumed: self.consumed,
            credit: self.credit,
            since: self.since,
        }
    }

    /// DATA arrived at `now`: the first starts the rate measurement.
    pub(crate) fn on_arrival(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }

    /// Checks a DATA payload of `len` bytes from the peer against the
    /// credit: its length, or (a protocol error) the credit it exceeds.
    pub(crate) fn admit(&self, len: usize) -> Result<u32, u32> {
        u32::try_from(len)
            .ok()
            .filter(|&n| n <= self.credit)
            .ok_or(self.credit)
    }

    /// `n` bytes that [`admit`](Self::admit) accepted arrived: buffered
    /// for reading if `kept`, otherwise discarded at once.
    pub(crate) fn on_received(&mut self, n: u32, kept: bool) {
        self.credit = sub(self.credit, n);
        if kept {
            self.buffered = add(self.buffered, n);
        } else {
            self.consumed = add(self.consumed, n);
        }
        self.debug_check();
    }

    /// The application read `n` buffered bytes.
    pub(crate) fn on_read(&mut self, n: u32) {
        self.buffered = sub(self.buffered, n);
        self.consumed = add(self.consumed, n);
        self.debug_check();
    }

    /// Every buffered byte was dropped unread; returns how many.
    pub(crate) fn on_buffer_dropped(&mut self) -> u32 {
        let n = std::mem::take(&mut self.buffered);
        self.consumed = add(self.consumed, n);
        self.debug_check();
        n
    }

    /// Whether enough was consumed to be worth a WINDOW_UPDATE: half the
    /// window, so a reader of small pieces does not cost a frame each; a
    /// quarter of a window auto-tuning grew past 256 KiB, so that the
    /// credit the peer waits for on a long path is a smaller part of the
    /// window (which then needs less headroom over the path's
    /// bandwidth-delay product).
    pub(crate) fn update_due(&self) -> bool {
        let due = if self.window > GROWN {
            self.window / 4
        } else {
            self.window / 2
        };
        self.consumed > 0 && self.consumed >= due
    }

    /// A WINDOW_UPDATE is framed: what was consumed goes back to the peer
    /// as credit, and the window grows by `grow` (auto-tuning, bounded by
    /// the caller within `max_window` and the connection's budget).
    /// Returns the update's delta.
    pub(crate) fn on_update_framed(&mut self, grow: u32, now: Instant) -> u32 {
        self.window = add(self.window, grow);
        let delta = add(self.consumed, grow);
        self.credit = add(self.credit, delta);
        self.consumed = 0;
        self.since = Some(now);
        self.debug_check();
        delta
    }

    fn debug_check(&self) {
        debug_assert!(
            self.window <= MAX_WINDOW,
            "receive window {} over 2^31 - 1",
            self.window
        );
        debug_assert_eq!(
            [self.credit, self.buffered, self.consumed]
                .iter()
                .map(|&n| u64::from(n))
                .sum::<u64>(),
            u64::from(self.window),
            "credit {} + buffered {} + consumed {} != window {}",
            self.credit,
            self.buffered,
            self.consumed,
            self.window
        );
    }
}

/// The send window of a stream: the credit the peer granted that this
/// side has not used. Invariant: it never exceeds `MAX_WINDOW`
/// (2^31 − 1); the peer's HELLO and WINDOW_UPDATEs are checked against
/// that bound before they reach it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendWindow(u32);

/// A WINDOW_UPDATE that would grow a send window past `MAX_WINDOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowOverflow;

impl SendWindow {
    /// A window of `initial` bytes: the peer's HELLO value, or 0 before it.
    pub(crate) fn new(initial: u32) -> Self {
        debug_assert!(initial <= MAX_WINDOW, "send window {initial} over 2^31 - 1");
        Self(initial)
    }

    pub(crate) fn get(self) -> u32 {
        self.0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `len` bytes fit the window.
    pub(crate) fn covers(self, len: usize) -> bool {
        usize::try_from(self.0).is_ok_and(|w| len <= w)
    }

    /// The payload of the next DATA frame: `have` bytes to send, within
    /// the window and the frame size.
    pub(crate) fn frame_len(self, have: usize, max_payload: u32) -> usize {
        have.min(usize::try_from(self.0).unwrap_or(usize::MAX))
            .min(usize::try_from(max_payload).unwrap_or(usize::MAX))
    }

    /// The peer's HELLO announced `initial`, for a stream opened before
    /// it: such a stream could send nothing yet, so the window is unused.
    pub(crate) fn on_peer_hello(&mut self, initial: u32) {
        debug_assert_eq!(self.0, 0, "a send window was used before the HELLO");
        *self = Self::new(initial);
    }

    /// A WINDOW_UPDATE granted `delta` more. Peer input: a window past
    /// `MAX_WINDOW` is refused and this one left as it was. `Ok(true)`
    /// when the window was empty, so a writer may be waiting on it.
    pub(crate) fn on_update(&mut self, delta: u32) -> Result<bool, WindowOverflow> {
        let grown = self
            .0
            .checked_add(delta)
            .filter(|&w| w <= MAX_WINDOW)
            .ok_or(WindowOverflow)?;
        let was_empty = self.is_empty();
        self.0 = grown;
        Ok(was_empty)
    }

    /// `n` payload bytes were framed; [`frame_len`](Self::frame_len)
    /// bounded them by the window.
    pub(crate) fn on_sent(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.0 = sub(self.0, n);
    }
}

/// `a + b` for counts the invariants bound.
fn add(a: u32, b: u32) -> u32 {
    debug_assert!(a.checked_add(b).is_some(), "{a} + {b} overflows");
    a.saturating_add(b)
}

/// `a - b` for counts the invariants bound.
fn sub(a: u32, b: u32) -> u32 {
    debug_assert!(b <= a, "{a} - {b} underflows");
    a.saturating_sub(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_bytes_move_from_credit_to_buffered_to_consumed_and_back() {
        let now = Instant::now();
        let mut w = RecvWindow::with_advertised(100, 100);
        assert_eq!(w.admit(60), Ok(60));
        w.on_received(60, true);
        assert_eq!(w.admit(41), Err(40), "DATA beyond the credit is refused");
        w.on_read(50);
        assert!(w.update_due());
        w.on_received(40, false);
        assert_eq!((w.credit(), w.buffered(), w.consumed()), (0, 10, 90));
        assert_eq!(w.on_buffer_dropped(), 10);
        assert_eq!(w.on_update_framed(100, now), 200);
        assert_eq!((w.window(), w.credit(), w.consumed()), (200, 200, 0));
        assert!(!w.update_due());
    }

    #[test]
    fn a_window_update_past_the_maximum_is_refused_and_changes_nothing() {
        let mut w = SendWindow::new(MAX_WINDOW - 10);
        assert_eq!(w.on_update(11), Err(WindowOverflow));
        assert_eq!(w.on_update(u32::MAX), Err(WindowOverflow));
        assert_eq!(w.get(), MAX_WINDOW - 10);
        assert_eq!(w.on_update(10), Ok(false));
        w.on_sent(usize::try_from(MAX_WINDOW).unwrap());
        assert!(w.is_empty());
        assert_eq!(w.on_update(1), Ok(true));
    }

    #[test]
    fn a_frame_is_bounded_by_window_and_payload_size() {
        let w = SendWindow::new(1000);
        assert_eq!(w.frame_len(5000, 300), 300);
        assert_eq!(w.frame_len(5000, 2000), 1000);
        assert_eq!(w.frame_len(10, 2000), 10);
        assert!(w.covers(1000) && !w.covers(1001));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "underflows")]
    fn reading_more_than_was_buffered_is_caught() {
        let mut w = RecvWindow::with_advertised(100, 100);
        w.on_received(10, true);
        w.on_read(11);
    }
}
