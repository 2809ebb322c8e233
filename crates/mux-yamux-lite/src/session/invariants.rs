//! The invariants that fuzzers and simulations check after every step.

use std::collections::VecDeque;

use super::stream::Stream;
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
        let max_window = self.config.max_window.max(self.config.initial_window);
        for (id, s) in &self.streams {
            s.check_invariants(*id, self.config.send_buffer, max_window)?;
        }
        self.check_counts()?;
        Self::check_queue("data", &self.data_queue, &self.streams, |s| {
            s.in_data_queue()
        })?;
        Self::check_queue("control", &self.ctrl_queue, &self.streams, |s| {
            s.in_ctrl_queue()
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
            .map(|s| u64::from(s.recv_window()))
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
            match s.counted_live() {
                Some(true) => outbound = outbound.saturating_add(1),
                Some(false) => inbound = inbound.saturating_add(1),
                None => {}
            }
            if s.is_unanswered_open() {
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
