//! What goes on the wire next, in priority order:
//!
//! 1. HELLO (always first);
//! 2. the owed pong (one slot);
//! 3. connection control: RESET, PING, GO_AWAY;
//! 4. per-stream control: SYN, ACK and window updates, one frame per stream
//!    (a SYN or ACK alone rides on the stream's first DATA frame when it
//!    has one to send, emitted here so SYNs keep their id order);
//! 5. DATA, one bounded frame per stream per turn, round-robin.
//!
//! Control waits behind data only for those first DATA frames, one per new
//! stream, and no stream can starve another because each turn yields at
//! most one frame of `max_frame_payload`.

use std::time::{Duration, Instant};

use super::stream::{CtrlTurn, TuneInput};
use mux_core::StreamId;

use super::{queue_data, Event, Lifecycle, Session};
use crate::frame::{Flags, Frame, Hello};

impl Session {
    /// The next frame to send, or `None` when there is nothing to send now.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame> {
        let frame = self.next_frame(now)?;
        self.stats.frames_sent = self.stats.frames_sent.saturating_add(1);
        Some(frame)
    }

    fn next_frame(&mut self, now: Instant) -> Option<Frame> {
        if !self.hello_sent {
            self.hello_sent = true;
            return Some(Frame::Hello(Hello {
                version: Hello::VERSION,
                initial_window: self.config.initial_window,
                max_frame_payload: self.config.max_frame_payload,
                max_inbound_streams: u32::try_from(self.config.max_inbound_streams)
                    .unwrap_or(u32::MAX),
            }));
        }
        if let Some(opaque) = self.owed_pong.take() {
            return Some(Frame::Ping { ack: true, opaque });
        }
        if let Some(frame) = self.control.pop_front() {
            return Some(frame);
        }
        if self.peer.is_none() || matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return None;
        }
        while let Some(id) = self.ctrl_queue.pop_front() {
            if let Some(frame) = self.stream_ctrl_frame(id, now) {
                self.after_change(id);
                return Some(frame);
            }
        }
        while let Some(id) = self.data_queue.pop_front() {
            if let Some(frame) = self.data_frame(id) {
                self.on_data_at(now);
                // Only a FIN can finish the stream (a frame without one
                // leaves its send half open), so only then is there
                // bookkeeping to do.
                if matches!(&frame, Frame::Data { flags, .. } if flags.contains(Flags::FIN)) {
                    self.after_change(id);
                }
                return Some(frame);
            }
        }
        None
    }

    /// One WINDOW_UPDATE carrying whatever the stream owes: SYN, ACK, credit.
    fn stream_ctrl_frame(&mut self, id: u32, now: Instant) -> Option<Frame> {
        let limits = TuneLimits {
            path_rtt: self.rtt.min(),
            max_window: self.fair_window(),
            budget_left: self.counts.budget_left(&self.config),
        };
        let can_send_data = self.max_payload() > 0;
        let s = self.streams.get_mut(&id)?;
        s.leave_ctrl_queue();
        let turn = s.on_ctrl_turn(can_send_data, now, |input| {
            auto_tune_growth(input, &limits, now)
        });
        match turn {
            CtrlTurn::Nothing => None,
            // Only a SYN or ACK is owed and the stream has bytes (or a FIN)
            // to send: its DATA frame carries them, one frame fewer for a
            // stream that writes as soon as it opens. It goes out here, in
            // the control pass, so that SYNs keep their id order.
            CtrlTurn::RideOnData => self.handshake_data_frame(id),
            CtrlTurn::Window {
                flags,
                delta,
                grown,
            } => {
                self.counts.on_window_grown(grown);
                if grown > 0 {
                    tracing::trace!(stream = id, window = s.recv_window(), "window grew");
                }
                Some(Frame::Window { id, flags, delta })
            }
        }
    }

    /// [`data_frame`](Self::data_frame) out of turn, for the control pass;
    /// the stream keeps its one place in the data queue.
    fn handshake_data_frame(&mut self, id: u32) -> Option<Frame> {
        let queued = self.streams.get(&id)?.in_data_queue();
        let frame = self.data_frame(id);
        if queued {
            if let Some(s) = self.streams.get_mut(&id) {
                if s.in_data_queue() {
                    // data_frame queued it again behind its existing entry.
                    self.data_queue.pop_back();
                }
                // The existing entry stands; popped, it checks `can_send`.
                s.mark_in_data_queue();
            }
        }
        frame
    }

    /// One DATA frame of stream `id`, bounded by window and frame size.
    fn data_frame(&mut self, id: u32) -> Option<Frame> {
        let max_payload = self.max_payload();
        let s = self.streams.get_mut(&id)?;
        s.leave_data_queue();
        let (flags, payload) = s.on_data_turn(max_payload, &mut self.spares)?;
        queue_data(&mut self.data_queue, id, s);
        self.count_payload_sent(payload.len());
        self.events.push_back(Event::Writable(StreamId(id)));
        Some(Frame::Data { id, flags, payload })
    }

    /// The most a stream's window may grow to: `max_window`, and no more
    /// than an equal share of `connection_receive_budget` among the
    /// streams in the table, so that one stream cannot take the budget
    /// the others would grow into.
    fn fair_window(&self) -> u32 {
        let streams = u64::try_from(self.streams.len()).unwrap_or(u64::MAX).max(1);
        let share = self
            .config
            .connection_receive_budget
            .checked_div(streams)
            .unwrap_or(0);
        u32::try_from(share)
            .unwrap_or(u32::MAX)
            .clamp(self.config.initial_window, self.config.max_window)
    }

    /// The largest DATA payload both sides accept (0 before the peer's HELLO).
    fn max_payload(&self) -> u32 {
        self.peer
            .map_or(0, |h| h.max_frame_payload)
            .min(self.config.max_frame_payload)
    }

    fn count_payload_sent(&mut self, n: usize) {
        self.stats.bytes_sent = self
            .stats
            .bytes_sent
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

/// A DATA frame framed by [`Session::frame_now`]: the window and the
/// counters already count it, and its payload is the first `len` bytes the
/// caller holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FramedNow {
    /// The stream.
    pub(crate) id: u32,
    /// Flags the frame carries (none, unless a handshake flag was owed).
    pub(crate) flags: Flags,
    /// Payload bytes framed.
    pub(crate) len: usize,
}

impl Session {
    /// Frames up to `max` bytes of stream `id` as a DATA frame that the
    /// caller writes to the transport at once, ahead of anything the
    /// session yields later, so that a short answer leaves without waiting
    /// for the driver's turn. The caller (the driver's write side) asks
    /// only while nothing is queued on the transport.
    ///
    /// Frames only when the frame would be the very next one anyway: the
    /// session has nothing else to send
    /// ([`wants_transmit`](Self::wants_transmit) is false), the stream's
    /// send buffer is empty, its write side open, and the peer's window has
    /// room. `None`: write through [`Session::write`] as usual (which also
    /// reports why a write cannot be made at all).
    pub(crate) fn frame_now(&mut self, id: StreamId, max: usize) -> Option<FramedNow> {
        let id = id.get();
        if max == 0 || self.peer.is_none() || self.is_closing() || self.wants_transmit() {
            return None;
        }
        let max_payload = self.max_payload();
        let (flags, len) = self.streams.get_mut(&id)?.on_frame_now(max, max_payload)?;
        // What `poll_frame` counts for a frame it yields.
        self.stats.frames_sent = self.stats.frames_sent.saturating_add(1);
        self.count_payload_sent(len);
        Some(FramedNow { id, flags, len })
    }
}

/// What bounds auto-tuning, the same for every stream of a session.
#[derive(Debug, Clone, Copy)]
struct TuneLimits {
    /// The path's round-trip time without queueing (the least recent RTT
    /// sample); `None` before the first.
    path_rtt: Option<Duration>,
    /// The most one stream's window may grow to
    /// ([`Session::fair_window`]).
    max_window: u32,
    /// What is left of `connection_receive_budget`.
    budget_left: u64,
}

/// What a stream's window aims for, as a multiple of the bytes the
/// stream delivers per round trip (numerator, denominator): enough to keep
/// the path full while a quarter of the window waits to be returned
/// (`RecvWindow::update_due`), and no more, so that no more than 1.5 times
/// the path's bandwidth-delay product is ever in flight.
const HEADROOM: (u128, u128) = (3, 2);

/// The shortest interval a delivery rate is measured over: a reader that
/// takes a burst out of the driver's read buffer at once on a loopback,
/// where a round trip takes microseconds, shows no rate of the path.
const MIN_RATE_INTERVAL: Duration = Duration::from_micros(250);

/// The least path RTT at which a stream whose peer has run out of credit
/// doubles its window whatever it delivered: on a shorter path (a
/// loopback, a LAN) a peer that fills the window before the reader runs
/// is the common case, and the initial window already covers the path.
const STARVED_FROM_RTT: Duration = Duration::from_millis(1);

/// How much to grow a stream's window when it sends an update: to
/// `HEADROOM` times the bytes the stream delivered per round trip since
/// its last update (or since its first DATA), within the stream maximum
/// and the connection budget; or to twice the window if the peer had run
/// out of credit (`STARVED_FROM_RTT`). The round trip is the path's
/// ([`TuneLimits::path_rtt`]), so a queue that builds up does not make
/// the window grow to fill it. Bytes that arrive in a burst arrive at the
/// path's rate, so a window that the peer's credit (not the path) holds
/// back learns the path's rate within a round trip; the interval counts
/// as at least a quarter of a round trip, so that a burst out of a
/// buffer grows a window at most to four times (as an update is due
/// after half of it) per update, and at least [`MIN_RATE_INTERVAL`].
/// Nothing grows before an RTT is measured, and a window never shrinks.
fn auto_tune_growth(input: TuneInput, limits: &TuneLimits, now: Instant) -> u32 {
    let (Some(rtt), Some(since)) = (limits.path_rtt, input.since) else {
        return 0;
    };
    let window = input.window;
    let rtt = rtt.as_nanos();
    let elapsed = now
        .saturating_duration_since(since)
        .as_nanos()
        .max(rtt / 4)
        .max(MIN_RATE_INTERVAL.as_nanos());
    let per_rtt = u128::from(input.consumed)
        .saturating_mul(rtt)
        .checked_div(elapsed)
        .unwrap_or(0);
    let mut target = per_rtt
        .saturating_mul(HEADROOM.0)
        .checked_div(HEADROOM.1)
        .unwrap_or(0);
    // Starved: the peer holds almost no credit, so nothing is in flight
    // and the window, not the path, limits the stream. What it delivered
    // then is what the window let through, not what the path could carry.
    let starved = input.credit <= window / 4 && rtt >= STARVED_FROM_RTT.as_nanos();
    if starved {
        target = target.max(u128::from(window).saturating_mul(2));
    }
    let want = u32::try_from(target.saturating_sub(u128::from(window))).unwrap_or(u32::MAX);
    let grow = want.min(limits.max_window.saturating_sub(window));
    u32::try_from(u64::from(grow).min(limits.budget_left)).unwrap_or(0)
}
