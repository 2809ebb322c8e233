//! Ending the connection and its timers: the graceful shutdown (GO_AWAY,
//! then streams finish until a deadline), the prompt close, the abort, and the clock-driven
//! work the driver asks for with [`Session::poll_timeout`]: keepalive
//! pings and their timeout, open timeouts, and dropped streams that wait
//! for the peer to finish.

use std::time::Instant;

use mux_core::{ConnError, StreamId};

use super::{Event, Lifecycle, Session};
use crate::config::Wire;
use crate::frame::{go_away, reset_code, Frame};

impl Session {
    /// Starts a graceful shutdown: GO_AWAY, refuse new streams, let open
    /// ones finish until `deadline`, then reset what is left and close.
    /// A second call can only bring the deadline closer.
    pub fn shutdown(&mut self, deadline: Instant) {
        match self.lifecycle {
            Lifecycle::Closed(_) => return,
            Lifecycle::Draining { deadline: d } => {
                if deadline < d {
                    self.lifecycle = Lifecycle::Draining { deadline };
                    self.drain_deadline = Some(deadline);
                }
                return;
            }
            Lifecycle::Active => {}
        }
        tracing::debug!("shutting down");
        // rust-yamux and go-yamux end every stream on any GO_AWAY, so on
        // the yamux wire it waits until the streams have finished
        // (`finish_close`), as rust-yamux's own close does.
        if self.config.wire == Wire::Lite {
            self.send_go_away(go_away::NORMAL);
        }
        self.lifecycle = Lifecycle::Draining { deadline };
        self.drain_deadline = Some(deadline);
        for id in std::mem::take(&mut self.accept_queue) {
            if let Some(s) = self.streams.get_mut(&id) {
                s.on_refused();
                self.reset_local(id, reset_code::REFUSED);
            }
        }
        self.events.push_back(Event::StateChanged);
        self.check_drained();
    }

    /// Closes at once: GO_AWAY(`code`) goes out (unless a shutdown queued
    /// one already), and every stream fails with [`ConnError::Closed`]
    /// (bytes already received stay readable). The peer learns the
    /// streams' end from the GO_AWAY and the transport's end that follows,
    /// so no RESET goes out per stream.
    pub fn close(&mut self, code: u32) {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return;
        }
        self.send_go_away(code);
        tracing::debug!(code, "closing at once");
        // The transport gets only the flush bound, not what is left of a
        // shutdown's deadline.
        self.drain_deadline = None;
        self.abort(ConnError::Closed);
    }

    /// Ends the connection at once (transport failure, or hard close).
    /// Every stream fails with `err` once its buffered bytes are read.
    pub fn abort(&mut self, err: ConnError) {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return;
        }
        tracing::debug!(error = %err, "connection closed");
        let unfinished = self.streams.values().filter(|s| !s.is_finished()).count();
        self.streams_cut.get_or_insert(unfinished);
        self.lifecycle = Lifecycle::Closed(err);
        self.accept_queue.clear();
        self.ctrl_queue.clear();
        self.data_queue.clear();
        // Written bytes can no longer leave; received ones stay readable.
        self.streams.retain(|_, s| s.on_abort());
        self.counts.on_abort(
            self.streams
                .values()
                .map(|s| u64::from(s.recv_window()))
                .sum(),
        );
        self.events.push_back(Event::StateChanged);
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match self.ping_outstanding {
            Some((_, sent)) if self.config.keepalive_interval.is_some() => {
                consider(sent.checked_add(self.config.keepalive_timeout));
            }
            Some(_) => {}
            None => {
                consider(self.ping_due);
                consider(self.rtt_probe_due);
            }
        }
        consider(self.open_deadlines.front().map(|d| d.0));
        consider(self.detached_deadlines.front().map(|d| d.0));
        if let Lifecycle::Draining { deadline } = self.lifecycle {
            consider(Some(deadline));
        }
        next
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return;
        }
        match self.ping_outstanding {
            Some((_, sent)) => {
                let expired = sent
                    .checked_add(self.config.keepalive_timeout)
                    .is_some_and(|t| t <= now);
                if expired && self.config.keepalive_interval.is_some() {
                    tracing::debug!("keepalive timeout");
                    // The final GO_AWAY must be the last frame: drop what
                    // waits (a GO_AWAY(0) of a close in the same turn, say).
                    self.control.clear();
                    self.owed_pong = None;
                    self.go_away_sent = true;
                    self.control.push_back(Frame::GoAway {
                        code: go_away::KEEPALIVE_TIMEOUT,
                    });
                    self.abort(ConnError::KeepaliveTimeout);
                    return;
                }
            }
            None => {
                let keepalive = self.ping_due.is_some_and(|t| t <= now);
                let mut probe = false;
                if self.rtt_probe_due.is_some_and(|t| t <= now) {
                    let recent = now
                        .checked_sub(super::RTT_PROBE_RECENT)
                        .is_none_or(|t| self.last_data.is_some_and(|d| d >= t));
                    // A quiet connection disarms the probe; DATA arms it.
                    probe = recent;
                    self.rtt_probe_due = None;
                }
                if keepalive || probe {
                    let opaque = self.next_ping_opaque;
                    self.next_ping_opaque = opaque.wrapping_add(1);
                    self.control.push_back(Frame::Ping { ack: false, opaque });
                    self.ping_outstanding = Some((opaque, now));
                    self.ping_due = None;
                    self.rtt_probe_due = None;
                }
            }
        }
        while let Some(&(at, id)) = self.open_deadlines.front() {
            if at > now {
                break;
            }
            self.open_deadlines.pop_front();
            if let Some(s) = self.streams.get(&id) {
                if s.is_unanswered_open() && !s.is_reset() {
                    tracing::debug!(stream = id, "open timeout");
                    self.reset_local(id, reset_code::OPEN_TIMEOUT);
                }
            }
        }
        while let Some(&(at, id)) = self.detached_deadlines.front() {
            if at > now {
                break;
            }
            self.detached_deadlines.pop_front();
            if self.streams.get(&id).is_some_and(|s| !s.is_finished()) {
                self.reset_local(id, reset_code::CLOSE_TIMEOUT);
            }
        }
        if let Lifecycle::Draining { deadline } = self.lifecycle {
            if deadline <= now {
                let unfinished = self.streams.values().filter(|s| !s.is_finished()).count();
                self.streams_cut = Some(unfinished);
                let ids: Vec<u32> = self.streams.keys().copied().collect();
                for id in ids {
                    self.reset(StreamId(id), reset_code::CLOSE_TIMEOUT);
                }
                self.finish_close();
            }
        }
    }
}
