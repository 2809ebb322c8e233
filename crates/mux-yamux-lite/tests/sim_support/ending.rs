//! How a run ends: running until a condition holds, draining, closing, and
//! the checks that everything written arrived or was accounted for.

use super::*;

impl Sim {
    pub(super) fn quiescent(&self) -> bool {
        self.peers.iter().all(|p| {
            p.handles.is_empty()
                && (p.session.closed_reason().is_some() || p.session.stats().streams == 0)
        })
    }

    pub(super) fn stuck(&self) -> String {
        let mut out = String::new();
        for (id, r) in &self.recs {
            if r.handle[0] || r.handle[1] {
                out.push_str(&format!("\n  stream {id}: {r:?}"));
            }
        }
        for (s, p) in self.peers.iter().enumerate() {
            out.push_str(&format!(
                "\n  {}: stats {:?} wants_read {} closed {:?} timeout {:?} rx {} bytes",
                side_name(s),
                p.session.stats(),
                p.session.wants_read(),
                p.session.closed_reason(),
                p.session
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(self.base)),
                p.rx.len()
            ));
            if std::env::var_os("SIM_DEBUG").is_some() {
                out.push_str(&format!("\n  {:#?}", p.session));
            }
        }
        out
    }

    /// Runs the application eagerly until `done` holds, advancing virtual
    /// time only when nothing else can move. Fails if it takes longer than
    /// `limit` of virtual time or stalls at one instant.
    pub(super) fn run_until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), String> {
        let mut last_progress = self.now;
        let mut stalled = 0u32;
        let mut rounds = 0u64;
        loop {
            rounds += 1;
            let mut app_progress = false;
            for s in 0..2 {
                app_progress |= self.service(s)?;
            }
            let progress = self.settle()? > 0 || app_progress;
            if done(self) {
                return Ok(());
            }
            if app_progress {
                last_progress = self.now;
            }
            if self.now - last_progress > limit || rounds > 5_000_000 {
                return Err(format!(
                    "{what}: no application progress for {limit:?} of virtual time \
                     ({rounds} rounds): deadlock{}",
                    self.stuck()
                ));
            }
            if progress {
                stalled = 0;
                continue;
            }
            match self.next_event() {
                Some(t) if t > self.now => {
                    self.now = t;
                    stalled = 0;
                }
                Some(_) => {
                    stalled += 1;
                    if stalled > 1000 {
                        return Err(format!(
                            "{what}: stalled at {:?}: a due timer or chunk never clears{}",
                            self.now,
                            self.stuck()
                        ));
                    }
                }
                None => {
                    return Err(format!(
                        "{what}: deadlock: nothing scheduled and not quiescent{}",
                        self.stuck()
                    ))
                }
            }
        }
    }

    pub(super) fn drain(&mut self) -> Result<(), String> {
        self.run_until("drain", Duration::from_secs(300), Self::quiescent)
    }

    pub(super) fn close_all(&mut self) -> Result<(), String> {
        self.final_close = true;
        let first = self.rng.random_range(0..2);
        self.close_conn(first);
        self.settle()?;
        self.close_conn(1 - first);
        self.run_until("close", Duration::from_secs(300), |sim| {
            sim.peers
                .iter()
                .all(|p| p.shut && p.rx_eof && p.session.is_done())
        })
    }

    pub(super) fn final_checks(&self) -> Result<(), String> {
        for (id, rec) in &self.recs {
            if rec.handle[0] || rec.handle[1] {
                return Err(format!("stream {id} still held at the end: {rec:?}"));
            }
            if rec.reset {
                continue;
            }
            let conn_err = rec.conn_err[0] || rec.conn_err[1];
            if !rec.had_handle[1 - rec.opener] && !conn_err {
                // Never accepted: refused or timed out, which only goes
                // unnoticed if the opener dropped its handle early.
                let opener = rec.opener;
                let dropped_early = rec.reader_gone[opener] && !rec.eof[opener];
                if !dropped_early && !self.lenient {
                    return Err(format!(
                        "stream {id} never accepted and never reset: {rec:?}"
                    ));
                }
                continue;
            }
            for w in 0..2 {
                let r = 1 - w;
                if rec.conn_err[0] || rec.conn_err[1] {
                    if !self.lenient {
                        return Err(format!("stream {id} saw the connection close: {rec:?}"));
                    }
                    continue;
                }
                if !rec.write_done[w] {
                    return Err(format!(
                        "stream {id}: {} never finished writing: {rec:?}",
                        side_name(w)
                    ));
                }
                if !(rec.eof[r] || rec.reader_gone[r]) {
                    return Err(format!(
                        "stream {id}: {} never saw EOF ({} of {} bytes): {rec:?}",
                        side_name(r),
                        rec.read[r],
                        rec.written[w]
                    ));
                }
            }
        }
        Ok(())
    }
}
