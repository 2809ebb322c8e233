//! The simulated application: random operations on both sides, each one
//! checked against what the peer wrote.

use super::*;
use mux_core::StreamId;

impl Sim {
    pub(super) fn random_step(&mut self) -> Result<(), String> {
        self.steps += 1;
        let roll = self.rng.random_range(0..100);
        if roll < 55 {
            let s = self.rng.random_range(0..2);
            self.app_op(s)?;
        } else if roll < 90 {
            let us = self
                .rng
                .random_range(0..=self.params.max_latency_us.max(10));
            self.now += Duration::from_micros(us);
        } else if let Some(t) = self.next_event() {
            self.now = t;
        }
        self.settle().map(|_| ())
    }

    pub(super) fn app_op(&mut self, s: usize) -> Result<(), String> {
        let roll = self.rng.random_range(0..1000u32);
        let (r, d) = (self.params.reset_permille, self.params.detach_permille);
        let allow_close = self.params.allow_close;
        let handle = if self.peers[s].handles.is_empty() {
            None
        } else {
            let i = self.rng.random_range(0..self.peers[s].handles.len());
            Some(self.peers[s].handles[i])
        };
        if roll < 100 {
            return self.open(s);
        }
        if roll < 200 {
            return self.accept(s).map(|_| ());
        }
        if allow_close && roll < 202 && self.steps > 10 {
            self.close_conn(s);
            return Ok(());
        }
        let Some(id) = handle else {
            return Ok(());
        };
        if roll < 200 + r {
            self.reset(s, id);
            return Ok(());
        }
        if roll < 200 + r + d {
            self.detach(s, id);
            return Ok(());
        }
        if roll < 215 + r + d {
            return self.close_read(s, id);
        }
        if roll < 600 {
            let max = self.rng.random_range(1..=4096);
            self.write(s, id, max)?;
        } else if roll < 650 {
            self.close_write(s, id, true)?;
        } else {
            let len = self.rng.random_range(0..=4096);
            self.read(s, id, len)?;
        }
        self.maybe_drop(s, id);
        Ok(())
    }

    pub(super) fn unexpected_conn_err(&self, what: &str, e: &ConnError) -> Result<(), String> {
        if self.lenient || self.final_close {
            Ok(())
        } else {
            Err(format!("{what} failed with {e} though nobody closed"))
        }
    }

    pub(super) fn open(&mut self, s: usize) -> Result<(), String> {
        if self.opened >= self.params.max_streams || self.peers[s].closed_by_app {
            return Ok(());
        }
        let now = self.at();
        let res = self.peers[s]
            .session
            .open(now)
            .map(|o| o.map(StreamId::get));
        self.log(|| format!("{} open() = {res:?}", side_name(s)));
        match res {
            Ok(Some(id)) => {
                if self.recs.contains_key(&id) {
                    return Err(format!("{} opened stream {id} twice", side_name(s)));
                }
                self.opened += 1;
                let mut rec = Rec {
                    opener: s,
                    ..Rec::default()
                };
                for t in &mut rec.target {
                    *t = self.rng.random_range(0..=self.params.max_len);
                }
                rec.handle[s] = true;
                rec.had_handle[s] = true;
                self.recs.insert(id, rec);
                self.peers[s].handles.push(id);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => self.unexpected_conn_err("open", &e),
        }
    }

    pub(super) fn accept(&mut self, s: usize) -> Result<bool, String> {
        let res = self.peers[s].session.accept().map(|o| o.map(StreamId::get));
        if !matches!(res, Ok(None)) {
            self.log(|| format!("{} accept() = {res:?}", side_name(s)));
        }
        match res {
            Ok(Some(id)) => {
                let Some(rec) = self.recs.get_mut(&id) else {
                    return Err(format!("{} accepted unknown stream {id}", side_name(s)));
                };
                if rec.opener == s || rec.had_handle[s] {
                    return Err(format!("{} accepted stream {id} wrongly", side_name(s)));
                }
                rec.handle[s] = true;
                rec.had_handle[s] = true;
                self.peers[s].handles.push(id);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => self.unexpected_conn_err("accept", &e).map(|()| false),
        }
    }

    pub(super) fn close_conn(&mut self, s: usize) {
        if !self.peers[s].closed_by_app {
            let now = self.at();
            let grace = self.peers[s].session.config().close_timeout;
            self.peers[s]
                .session
                .shutdown(now.checked_add(grace).unwrap_or(now));
            self.peers[s].closed_by_app = true;
            self.lenient |= !self.final_close;
        }
    }

    pub(super) fn rec(&mut self, id: u32) -> &mut Rec {
        self.recs.get_mut(&id).expect("tracked stream")
    }

    pub(super) fn stream_err(
        &mut self,
        s: usize,
        id: u32,
        what: &str,
        e: StreamError,
    ) -> Result<(), String> {
        match e {
            StreamError::Reset { code, remote: true } if code == reset_code::DROPPED => {
                if what == "read" {
                    return Err(format!(
                        "{} read on stream {id} failed with DROPPED: what arrived before the \
                         peer's FIN must stay readable",
                        side_name(s)
                    ));
                }
                // Only this side's sending is over; it reads on to EOF.
                let rec = self.rec(id);
                rec.dropped[s] = true;
                rec.write_done[s] = true;
                rec.fin_framed[s] = true;
                rec.target[s] = rec.written[s];
                Ok(())
            }
            StreamError::Reset { .. } => {
                self.rec(id).reset = true;
                Ok(())
            }
            StreamError::ConnectionClosed(c) => {
                self.rec(id).conn_err[s] = true;
                self.unexpected_conn_err(&format!("{} {what} on stream {id}", side_name(s)), &c)
            }
            other => Err(format!(
                "{} {what} on stream {id}: unexpected error {other:?}",
                side_name(s)
            )),
        }
    }

    pub(super) fn usable(&self, s: usize, id: u32) -> bool {
        let rec = &self.recs[&id];
        rec.handle[s] && !rec.reset && !rec.conn_err[s]
    }

    /// Writes up to `max` planned bytes; `Ok(true)` if anything changed.
    pub(super) fn write(&mut self, s: usize, id: u32, max: usize) -> Result<bool, String> {
        if !self.usable(s, id) || self.recs[&id].write_done[s] {
            return Ok(false);
        }
        let rec = &self.recs[&id];
        let remaining = rec.target[s] - rec.written[s];
        if remaining == 0 {
            return Ok(false);
        }
        let len = self.rng.random_range(1..=remaining.min(max));
        let start = rec.written[s];
        let data: Vec<u8> = (start..start + len).map(|o| pattern(id, s, o)).collect();
        let res = self.peers[s].session.write(StreamId(id), &data);
        self.log(|| format!("{} write({id}, {len}) = {res:?}", side_name(s)));
        match res {
            Ok(Some(n)) => {
                if n == 0 || n > len {
                    return Err(format!(
                        "{} write of {len} on {id} returned {n}",
                        side_name(s)
                    ));
                }
                self.rec(id).written[s] += n;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => self.stream_err(s, id, "write", e).map(|()| true),
        }
    }

    /// Closes the write side (early, cutting the plan, when `early`).
    pub(super) fn close_write(&mut self, s: usize, id: u32, early: bool) -> Result<bool, String> {
        if !self.usable(s, id) || self.recs[&id].fin_framed[s] {
            return Ok(false);
        }
        let rec = self.rec(id);
        if rec.written[s] < rec.target[s] && !early {
            return Ok(false);
        }
        rec.write_done[s] = true;
        rec.target[s] = rec.written[s];
        let res = self.peers[s].session.close_write(StreamId(id));
        self.log(|| format!("{} close_write({id}) = {res:?}", side_name(s)));
        match res {
            Ok(true) => {
                self.rec(id).fin_framed[s] = true;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => self.stream_err(s, id, "close_write", e).map(|()| true),
        }
    }

    /// Reads into a `len`-byte buffer and checks the bytes.
    pub(super) fn read(&mut self, s: usize, id: u32, len: usize) -> Result<bool, String> {
        let rec = &self.recs[&id];
        if !self.usable(s, id) || rec.eof[s] || rec.reader_gone[s] {
            return Ok(false);
        }
        let w = 1 - s;
        let mut buf = vec![0u8; len];
        let res = self.peers[s].session.read(StreamId(id), &mut buf);
        self.log(|| format!("{} read({id}, {len}) = {res:?}", side_name(s)));
        match res {
            Ok(ReadOutcome::Data(n)) => {
                if n > len || (n == 0 && len > 0) {
                    return Err(format!(
                        "{} read({len}) on {id} gave Data({n})",
                        side_name(s)
                    ));
                }
                let rec = self.rec(id);
                for (i, b) in buf[..n].iter().enumerate() {
                    let off = rec.read[s] + i;
                    let want = pattern(id, w, off);
                    if *b != want {
                        return Err(format!(
                            "stream {id}: {} read byte {off} = {b:#04x}, {} wrote {want:#04x}",
                            side_name(s),
                            side_name(w)
                        ));
                    }
                }
                rec.read[s] += n;
                if rec.read[s] > rec.written[w] {
                    return Err(format!(
                        "stream {id}: {} read {} bytes, {} wrote only {}",
                        side_name(s),
                        rec.read[s],
                        side_name(w),
                        rec.written[w]
                    ));
                }
                Ok(n > 0)
            }
            Ok(ReadOutcome::Eof) => {
                let rec = self.rec(id);
                if !rec.write_done[w] || rec.read[s] != rec.written[w] {
                    return Err(format!(
                        "stream {id}: {} saw EOF after {} of {} bytes (writer done: {})",
                        side_name(s),
                        rec.read[s],
                        rec.written[w],
                        rec.write_done[w]
                    ));
                }
                rec.eof[s] = true;
                Ok(true)
            }
            Ok(ReadOutcome::Blocked) => Ok(false),
            Err(e) => self.stream_err(s, id, "read", e).map(|()| true),
        }
    }

    pub(super) fn close_read(&mut self, s: usize, id: u32) -> Result<(), String> {
        let rec = &self.recs[&id];
        if !rec.handle[s] || rec.reader_gone[s] || rec.eof[s] {
            return Ok(());
        }
        self.log(|| format!("{} close_read({id})", side_name(s)));
        match self.peers[s].session.close_read(StreamId(id)) {
            Ok(()) => {
                self.rec(id).reader_gone[s] = true;
                Ok(())
            }
            Err(e) => self.stream_err(s, id, "close_read", e),
        }
    }

    pub(super) fn reset(&mut self, s: usize, id: u32) {
        let code = self.rng.random_range(0..10);
        self.peers[s].session.reset(StreamId(id), code);
        self.log(|| format!("{} reset({id}, {code})", side_name(s)));
        self.rec(id).reset = true;
        self.detach(s, id);
    }

    /// Drops side `s`'s handle on `id`.
    pub(super) fn detach(&mut self, s: usize, id: u32) {
        let now = self.at();
        let rec = self.rec(id);
        if !rec.handle[s] {
            return;
        }
        rec.handle[s] = false;
        rec.write_done[s] = true;
        if !rec.eof[s] {
            rec.reader_gone[s] = true;
        }
        self.peers[s].handles.retain(|&h| h != id);
        self.peers[s].session.detach(StreamId(id), now);
        self.log(|| format!("{} detach({id})", side_name(s)));
    }

    /// Drops the handle once the application is done with the stream.
    pub(super) fn maybe_drop(&mut self, s: usize, id: u32) -> bool {
        let rec = &self.recs[&id];
        if !rec.handle[s] {
            return false;
        }
        let done = rec.reset
            || rec.conn_err[s]
            || (rec.fin_framed[s] && (rec.eof[s] || rec.reader_gone[s]));
        if done {
            self.detach(s, id);
        }
        done
    }

    /// Does everything side `s`'s application can do now.
    pub(super) fn service(&mut self, s: usize) -> Result<bool, String> {
        let mut progress = false;
        while self.accept(s)? {
            progress = true;
        }
        for id in self.peers[s].handles.clone() {
            while self.write(s, id, 1 << 16)? {
                progress = true;
            }
            progress |= self.close_write(s, id, false)?;
            loop {
                let len = self.rng.random_range(1..=8192);
                if !self.read(s, id, len)? {
                    break;
                }
                progress = true;
            }
            progress |= self.maybe_drop(s, id);
        }
        Ok(progress)
    }
}
