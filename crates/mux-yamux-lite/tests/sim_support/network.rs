//! The simulated network: byte pipes with random latency and chunking,
//! decoding into the receiving session, timers, and settling.

use super::*;

impl Sim {
    /// Decodes what side `s` has received, while it wants to read.
    pub(super) fn decode(&mut self, s: usize) -> Result<usize, String> {
        let now = self.at();
        let p = &mut self.peers[s];
        let mut n = 0;
        while p.session.wants_read() {
            match p.layout.decode(&mut p.rx) {
                Ok(Some(frame)) => {
                    n += 1;
                    if let Some(t) = &mut self.trace {
                        t.push(format!("{:?} {} <- {frame:?}", self.now, side_name(s)));
                    }
                    p.session.handle_frame(frame, now);
                }
                Ok(None) => {
                    if p.rx_eof && p.session.closed_reason().is_none() {
                        if !p.rx.is_empty() {
                            return Err(format!(
                                "{}: transport ended mid-frame ({} bytes)",
                                side_name(s),
                                p.rx.len()
                            ));
                        }
                        p.session.transport_closed(None);
                        n += 1;
                    }
                    break;
                }
                Err(e) => return Err(format!("{} got a bad frame: {e}", side_name(s))),
            }
        }
        Ok(n)
    }

    /// Pulls every frame side `s` wants to send into its pipe, in random
    /// chunks with random latency.
    pub(super) fn pump(&mut self, s: usize) -> Result<usize, String> {
        let now = self.at();
        let mut buf = BytesMut::new();
        let mut n = 0usize;
        while let Some(frame) = self.peers[s].session.poll_frame(now) {
            n += 1;
            if n > 1_000_000 {
                return Err(format!("{}: poll_frame never ends", side_name(s)));
            }
            // On the yamux wire no frame size is announced: a receiver
            // takes DATA up to the credit it granted.
            let lite = self.peers[s].session.config().wire == Wire::Lite;
            if let (Frame::Data { payload, .. }, true) = (&frame, lite) {
                let max = self.peers[1 - s].session.config().max_frame_payload as usize;
                if payload.len() > max {
                    return Err(format!(
                        "{}: DATA of {} > {max}",
                        side_name(s),
                        payload.len()
                    ));
                }
            }
            self.peers[s].layout.encode(&frame, &mut buf);
            self.log(|| format!("{} -> {frame:?}", side_name(s)));
        }
        if self.peers[s].shut {
            // Frames queued after the transport was shut down go nowhere.
            return Ok(0);
        }
        let mut bytes = buf.freeze();
        while !bytes.is_empty() {
            let k = self
                .rng
                .random_range(1..=self.params.max_chunk)
                .min(bytes.len());
            let seg = bytes.split_to(k);
            let lat = self.latency();
            let pipe = &mut self.pipes[s];
            let at = pipe.last_at.max(self.now + lat);
            pipe.last_at = at;
            pipe.segs.push_back((at, seg));
        }
        if self.peers[s].session.is_done() {
            self.peers[s].shut = true;
            let pipe = &mut self.pipes[s];
            pipe.eof_at = Some(pipe.last_at.max(self.now));
        }
        Ok(n)
    }

    pub(super) fn latency(&mut self) -> Duration {
        let max = self.params.max_latency_us;
        let us = if max > 0 && self.rng.random_ratio(1, 50) {
            self.rng.random_range(0..=max * 10)
        } else {
            self.rng.random_range(0..=max)
        };
        Duration::from_micros(us)
    }

    /// Moves every due chunk into the receiver's buffer.
    pub(super) fn deliver(&mut self) {
        for s in 0..2 {
            let pipe = &mut self.pipes[s];
            while pipe.segs.front().is_some_and(|(at, _)| *at <= self.now) {
                let (_, seg) = pipe.segs.pop_front().unwrap();
                self.peers[1 - s].rx.extend_from_slice(&seg);
            }
            if pipe.segs.is_empty()
                && !pipe.eof_delivered
                && pipe.eof_at.is_some_and(|t| t <= self.now)
            {
                pipe.eof_delivered = true;
                self.peers[1 - s].rx_eof = true;
            }
        }
    }

    pub(super) fn timers(&mut self) {
        let now = self.at();
        for p in &mut self.peers {
            if p.session.poll_timeout().is_some_and(|t| t <= now) {
                p.session.handle_timeout(now);
            }
        }
    }

    /// Decodes and sends until nothing moves, then checks the invariants.
    pub(super) fn settle(&mut self) -> Result<usize, String> {
        let mut total = 0;
        for _ in 0..10_000 {
            self.deliver();
            self.timers();
            let mut n = 0;
            for s in 0..2 {
                n += self.decode(s)?;
                n += self.pump(s)?;
            }
            for p in &mut self.peers {
                while p.session.poll_event().is_some() {}
            }
            self.check()?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
        Err("settle: no fixpoint after 10000 rounds".into())
    }

    /// The next instant at which something happens without the application.
    pub(super) fn next_event(&self) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        let mut consider = |t: Duration| next = Some(next.map_or(t, |n: Duration| n.min(t)));
        for pipe in &self.pipes {
            if let Some((at, _)) = pipe.segs.front() {
                consider(*at);
            } else if let (Some(at), false) = (pipe.eof_at, pipe.eof_delivered) {
                consider(at);
            }
        }
        for p in &self.peers {
            if let Some(t) = p.session.poll_timeout() {
                consider(t.saturating_duration_since(self.base));
            }
        }
        next.map(|t| t.max(self.now))
    }
}
