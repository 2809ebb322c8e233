//! The invariants that fuzzers and simulations check after every step.

use std::collections::VecDeque;

use super::stream::{RecvState, Stream};
use super::{Lifecycle, Session};
use crate::StreamMap;

impl Session {
    /// Checks the session's invariants; fuzzers and simulations call this
    /// after every step. Returns a description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.accept_queue.len() > self.config.accept_backlog {
            return Err("accept backlog over its limit".into());
        }
        if self.counts.live_inbound() > self.config.max_inbound_streams {
            return Err("inbound streams over the limit".into());
        }
        if self.counts.pending_opens() > self.config.max_pending_opens {
            return Err("pending opens over the limit".into());
        }
        for (id, s) in &self.streams {
            if s.send_buf.len() > self.config.send_buffer {
                return Err(format!("stream {id}: send buffer over its limit"));
            }
            if s.send_window > crate::config::MAX_WINDOW {
                return Err(format!("stream {id}: send window over the maximum"));
            }
            if s.recv_window > self.config.max_window.max(self.config.initial_window) {
                return Err(format!("stream {id}: receive window over the maximum"));
            }
            let buffered = s.recv_buf.len();
            if u64::try_from(buffered).unwrap_or(u64::MAX) != u64::from(s.recv_buffered) {
                return Err(format!("stream {id}: receive buffer miscounted"));
            }
            if s.reset.is_none() && s.recv == RecvState::Open {
                let total = u64::from(s.recv_credit)
                    .saturating_add(u64::from(s.recv_buffered))
                    .saturating_add(u64::from(s.recv_consumed));
                if total != u64::from(s.recv_window) {
                    return Err(format!(
                        "stream {id}: credit {} + buffered {} + consumed {} != window {}",
                        s.recv_credit, s.recv_buffered, s.recv_consumed, s.recv_window
                    ));
                }
            }
            if s.reset.is_some() && !s.send_buf.is_empty() {
                return Err(format!(
                    "stream {id}: reset stream still buffers data to send"
                ));
            }
            if s.read_reset().is_some() && s.recv_buffered != 0 {
                return Err(format!("stream {id}: reset stream still buffers data"));
            }
        }
        self.check_counts()?;
        Self::check_queue("data", &self.data_queue, &self.streams, |s| {
            s.flags.in_data_queue
        })?;
        Self::check_queue("control", &self.ctrl_queue, &self.streams, |s| {
            s.flags.in_ctrl_queue
        })
    }

    /// The connection's counts agree with the stream table: the receive
    /// budget is the sum of the streams' windows and, until an abort drops
    /// streams without counting them out, the live and pending counts are
    /// the streams so marked.
    fn check_counts(&self) -> Result<(), String> {
        let windows: u64 = self
            .streams
            .values()
            .map(|s| u64::from(s.recv_window))
            .sum();
        if windows != self.counts.recv_budget_used() {
            return Err(format!(
                "receive budget used {} != the streams' windows {windows}",
                self.counts.recv_budget_used()
            ));
        }
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return Ok(());
        }
        let (mut inbound, mut outbound, mut pending) = (0usize, 0usize, 0usize);
        for s in self.streams.values() {
            if s.flags.live && s.flags.outbound {
                outbound = outbound.saturating_add(1);
            } else if s.flags.live {
                inbound = inbound.saturating_add(1);
            }
            if s.flags.outbound && !s.flags.acked {
                pending = pending.saturating_add(1);
            }
        }
        let counted = (
            self.counts.live_inbound(),
            self.counts.live_outbound(),
            self.counts.pending_opens(),
        );
        if counted != (inbound, outbound, pending) {
            return Err(format!(
                "counted (live inbound, live outbound, pending opens) {counted:?} != \
                 the streams' {:?}",
                (inbound, outbound, pending)
            ));
        }
        Ok(())
    }

    /// A stream is in `queue` at most once, and exactly when `flagged` says
    /// so: a second entry would give it two turns per round.
    fn check_queue(
        name: &str,
        queue: &VecDeque<u32>,
        streams: &StreamMap<Stream>,
        flagged: fn(&Stream) -> bool,
    ) -> Result<(), String> {
        let mut seen = StreamMap::<()>::default();
        for &id in queue {
            if seen.insert(id, ()).is_some() {
                return Err(format!("stream {id}: twice in the {name} queue"));
            }
            if streams.get(&id).is_some_and(|s| !flagged(s)) {
                return Err(format!("stream {id}: in the {name} queue, not flagged"));
            }
        }
        match streams
            .iter()
            .find(|&(id, s)| flagged(s) && !seen.contains_key(id))
        {
            Some((id, _)) => Err(format!("stream {id}: flagged, not in the {name} queue")),
            None => Ok(()),
        }
    }
}
