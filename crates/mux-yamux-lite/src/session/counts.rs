//! The connection's stream counts: live streams each way, opens awaiting
//! their ACK, and the receive budget the streams' windows use.
//!
//! Each count moves only with the stream event that changes it, and a
//! debug build stops where a count would fall below zero or the counts
//! disagree with each other;
//! [`check_invariants`](super::Session::check_invariants) also checks
//! them against the stream table.

use crate::config::Config;

#[derive(Debug, Default)]
pub(super) struct StreamCounts {
    /// Unfinished streams the peer opened; `max_inbound_streams` bounds it.
    live_inbound: usize,
    /// Unfinished streams this side opened; the peer's
    /// `max_inbound_streams` bounds it.
    live_outbound: usize,
    /// Streams this side opened that are neither answered nor ended;
    /// `max_pending_opens` bounds it. Each is also live.
    pending_opens: usize,
    /// The sum of the receive windows of the streams in the table, which
    /// auto-tuning keeps within `connection_receive_budget`.
    recv_budget_used: u64,
}

impl StreamCounts {
    pub(super) fn live_inbound(&self) -> usize {
        self.live_inbound
    }

    pub(super) fn live_outbound(&self) -> usize {
        self.live_outbound
    }

    pub(super) fn pending_opens(&self) -> usize {
        self.pending_opens
    }

    pub(super) fn recv_budget_used(&self) -> u64 {
        self.recv_budget_used
    }

    /// Whether this side may open another stream: fewer than
    /// `max_pending_opens` await their ACK, and fewer than `peer_limit`
    /// outbound streams are live.
    pub(super) fn may_open(&self, config: &Config, peer_limit: usize) -> bool {
        self.pending_opens < config.max_pending_opens && self.live_outbound < peer_limit
    }

    /// Whether the peer's streams fill `max_inbound_streams`.
    pub(super) fn inbound_full(&self, config: &Config) -> bool {
        self.live_inbound >= config.max_inbound_streams
    }

    /// What is left of `connection_receive_budget` for windows to grow
    /// into and for the peer's streams to open with. Streams this side
    /// opens get their initial window without asking the budget (the
    /// application decides how many it opens), so the streams may use more
    /// than all of it; then nothing is left.
    pub(super) fn budget_left(&self, config: &Config) -> u64 {
        config
            .connection_receive_budget
            .saturating_sub(self.recv_budget_used)
    }

    /// This side opened a stream with a receive window of `recv_window`.
    pub(super) fn on_opened(&mut self, recv_window: u32) {
        self.live_outbound = inc(self.live_outbound);
        self.pending_opens = inc(self.pending_opens);
        self.on_window_grown(recv_window);
    }

    /// The peer opened a stream with a receive window of `recv_window`.
    pub(super) fn on_incoming(&mut self, recv_window: u32) {
        self.live_inbound = inc(self.live_inbound);
        self.on_window_grown(recv_window);
    }

    /// An open was answered (ACK), or ended without an answer.
    pub(super) fn on_open_answered(&mut self) {
        self.pending_opens = dec(self.pending_opens);
        self.debug_check();
    }

    /// A stream finished: it no longer counts against the stream limits.
    pub(super) fn on_finished(&mut self, outbound: bool) {
        if outbound {
            self.live_outbound = dec(self.live_outbound);
        } else {
            self.live_inbound = dec(self.live_inbound);
        }
        self.debug_check();
    }

    /// A stream's receive window grew by `grow`.
    pub(super) fn on_window_grown(&mut self, grow: u32) {
        // A sum of u32 windows, one per stream in memory: u64 holds it.
        self.recv_budget_used = self.recv_budget_used.saturating_add(u64::from(grow));
        self.debug_check();
    }

    /// A stream with a receive window of `recv_window` left the table.
    pub(super) fn on_removed(&mut self, recv_window: u32) {
        debug_assert!(
            u64::from(recv_window) <= self.recv_budget_used,
            "receive budget miscounted"
        );
        self.recv_budget_used = self.recv_budget_used.saturating_sub(u64::from(recv_window));
    }

    /// The connection aborted and dropped the streams nobody can read;
    /// those left hold `windows` of receive window in all. The live and
    /// pending counts keep the dropped streams: no stream opens any more.
    pub(super) fn on_abort(&mut self, windows: u64) {
        self.recv_budget_used = windows;
    }

    fn debug_check(&self) {
        debug_assert!(
            self.pending_opens <= self.live_outbound,
            "{} pending opens, {} live outbound streams",
            self.pending_opens,
            self.live_outbound
        );
    }
}

/// One more of a count of streams in memory, which cannot reach `usize::MAX`.
fn inc(n: usize) -> usize {
    n.saturating_add(1)
}

/// One fewer: each decrement matches an earlier increment.
fn dec(n: usize) -> usize {
    debug_assert!(n > 0, "a stream count falls below zero");
    n.saturating_sub(1)
}
