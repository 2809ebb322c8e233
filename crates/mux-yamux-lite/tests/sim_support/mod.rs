//! A deterministic simulation of two [`Session`]s in virtual time.
//!
//! Frames travel through the real byte layout: `wire::lite::encode` into a
//! byte pipe per direction, delivered in random chunks after random latency,
//! decoded with `mux_frame::FrameCodec` + `wire::lite::decode` while the
//! receiving session `wants_read()`. A seeded RNG drives the network and the
//! application (open, write, read, close_write, close_read, reset, detach,
//! close). Every failure is an `Err` describing what broke.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    unreachable_pub,
    dead_code
)]

use bytes::{Bytes, BytesMut};
use mux_core::{ConnError, StreamError};
use mux_frame::FrameCodec;
use mux_yamux_lite::frame::Frame;
use mux_yamux_lite::session::{ReadOutcome, Role, Session};
use mux_yamux_lite::wire::lite;
use mux_yamux_lite::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tokio_util::codec::Decoder;

/// Knobs of one run, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Params {
    /// Random-phase steps before the drain phase.
    pub steps: usize,
    /// Streams opened at most (both sides together).
    pub max_streams: usize,
    /// Largest number of bytes one side writes to one stream.
    pub max_len: usize,
    /// Per-mille chance that an application op is a reset.
    pub reset_permille: u32,
    /// Per-mille chance that an application op is a detach.
    pub detach_permille: u32,
    /// Whether a side may close the connection in the random phase.
    pub allow_close: bool,
    /// Largest one-way latency of a chunk, in microseconds.
    pub max_latency_us: u64,
    /// Largest chunk the pipe delivers at once.
    pub max_chunk: usize,
}

impl Params {
    /// Draws parameters from `rng`.
    pub fn random(rng: &mut StdRng) -> Self {
        Self {
            steps: rng.random_range(50..=600),
            max_streams: rng.random_range(1..=24),
            max_len: *pick(rng, &[0, 1, 100, 3000, 20_000]),
            reset_permille: *pick(rng, &[0, 10, 50]),
            detach_permille: *pick(rng, &[0, 10, 50]),
            allow_close: rng.random_bool(0.25),
            max_latency_us: *pick(rng, &[0, 100, 2_000, 50_000]),
            max_chunk: *pick(rng, &[1, 7, 64, 1500, 65_536]),
        }
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A random configuration with small limits.
pub fn random_config(rng: &mut StdRng) -> Config {
    let mut c = Config::default();
    c.max_frame_payload = *pick(rng, &[1, 5, 64, 1000, 16_384, 65_536]);
    c.initial_window = *pick(rng, &[1, 16, 100, 4096, 65_536, 262_144]);
    c.max_window = c.initial_window.saturating_mul(*pick(rng, &[1, 2, 16]));
    c.connection_receive_budget = *pick(rng, &[0, 10_000, 1 << 28]);
    c.max_inbound_streams = *pick(rng, &[1, 2, 4, 16, 1000]);
    c.accept_backlog = *pick(rng, &[1, 2, 8, 256]);
    c.max_pending_opens = *pick(rng, &[1, 2, 8, 256]);
    c.send_buffer = *pick(rng, &[1, 10, 1000, 65_536]);
    c
}

/// The byte at `offset` of what side `writer` writes to stream `id`.
pub fn pattern(id: u32, writer: usize, offset: usize) -> u8 {
    let x = (offset as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(id).wrapping_mul(0x2545_F491))
        .wrapping_add(writer as u64 * 0x51);
    (x >> 29) as u8
}

/// What the application knows about one stream, indexed by side
/// (0 = client, 1 = server).
#[derive(Debug, Default, Clone)]
struct Rec {
    opener: usize,
    /// Bytes each side plans to write.
    target: [usize; 2],
    /// Bytes each side's `write` accepted.
    written: [usize; 2],
    /// The side will write no more (close_write called, or detached).
    write_done: [bool; 2],
    /// `close_write` returned `Ok(true)` (FIN framed).
    fin_framed: [bool; 2],
    /// Bytes each side read (of what the other side wrote).
    read: [usize; 2],
    /// Each side's reader saw EOF.
    eof: [bool; 2],
    /// Each side stopped reading (close_read or detach).
    reader_gone: [bool; 2],
    /// The side holds a handle now.
    handle: [bool; 2],
    /// The side ever held a handle.
    had_handle: [bool; 2],
    /// Someone reset the stream, or a side saw it reset.
    reset: bool,
    /// A side saw `ConnectionClosed`.
    conn_err: [bool; 2],
}

/// One direction of the transport: byte chunks with delivery times.
#[derive(Debug, Default)]
struct Pipe {
    segs: VecDeque<(Duration, Bytes)>,
    last_at: Duration,
    /// The sender shut the transport down; EOF arrives at this time.
    eof_at: Option<Duration>,
    eof_delivered: bool,
}

#[derive(Debug)]
struct Peer {
    session: Session,
    codec: FrameCodec,
    rx: BytesMut,
    rx_eof: bool,
    /// The transport was shut down after `is_done()`.
    shut: bool,
    handles: Vec<u32>,
    /// The application called `close()`.
    closed_by_app: bool,
}

/// The simulation.
pub struct Sim {
    seed: u64,
    rng: StdRng,
    params: Params,
    base: Instant,
    now: Duration,
    peers: [Peer; 2],
    /// `pipes[s]` carries bytes from side `s` to side `1 - s`.
    pipes: [Pipe; 2],
    recs: BTreeMap<u32, Rec>,
    opened: usize,
    /// Some side closed the connection before the final close.
    lenient: bool,
    /// The final close started: errors are expected from here on.
    final_close: bool,
    steps: u64,
    /// Frame and operation log, kept when `SIM_TRACE` is set.
    trace: Option<Vec<String>>,
}

fn side_name(s: usize) -> &'static str {
    if s == 0 {
        "client"
    } else {
        "server"
    }
}

impl Sim {
    /// A simulation for `seed` with parameters drawn from it.
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let params = Params::random(&mut rng);
        Self::with_params(seed, rng, params)
    }

    /// A simulation with explicit parameters (configs still drawn from `seed`).
    pub fn with_params(seed: u64, mut rng: StdRng, mut params: Params) -> Self {
        let base = Instant::now();
        let mk = |role, config: Config| {
            let session = Session::new(role, config, base);
            let codec = FrameCodec::with_max_value_len(session.max_frame_value());
            Peer {
                session,
                codec,
                rx: BytesMut::new(),
                rx_eof: false,
                shut: false,
                handles: Vec::new(),
                closed_by_app: false,
            }
        };
        let (cc, sc) = (random_config(&mut rng), random_config(&mut rng));
        // Keep the byte-at-a-time corners (tiny windows, frames or
        // chunks) cheap: they move one byte per round trip.
        let tiny = |c: &Config| c.max_frame_payload.min(c.max_window) < 64;
        if tiny(&cc) || tiny(&sc) || params.max_chunk < 64 {
            params.max_len = params.max_len.min(1000);
        }
        let client = mk(Role::Client, cc);
        let server = mk(Role::Server, sc);
        Self {
            seed,
            rng,
            params,
            base,
            now: Duration::ZERO,
            peers: [client, server],
            pipes: [Pipe::default(), Pipe::default()],
            recs: BTreeMap::new(),
            opened: 0,
            lenient: false,
            final_close: false,
            steps: 0,
            trace: std::env::var_os("SIM_TRACE").map(|_| Vec::new()),
        }
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        let now = self.now;
        if let Some(t) = &mut self.trace {
            t.push(format!("{now:?} {}", f()));
        }
    }

    fn at(&self) -> Instant {
        self.base + self.now
    }

    /// Runs the whole scenario: random phase, drain to quiescence, final
    /// close, final checks.
    pub fn run(&mut self) -> Result<(), String> {
        self.settle()?;
        for _ in 0..self.params.steps {
            self.random_step()?;
        }
        self.drain()?;
        self.close_all()?;
        self.final_checks()
    }

    /// Short description for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "t={:?} steps={} params={:?} client_cfg={:?} server_cfg={:?}",
            self.now,
            self.steps,
            self.params,
            self.peers[0].session.config(),
            self.peers[1].session.config()
        )
    }

    fn check(&self) -> Result<(), String> {
        for (s, p) in self.peers.iter().enumerate() {
            p.session
                .check_invariants()
                .map_err(|e| format!("{} invariant: {e}", side_name(s)))?;
            if let Some(reason) = p.session.closed_reason() {
                if matches!(reason, ConnError::Protocol(_) | ConnError::KeepaliveTimeout) {
                    return Err(format!(
                        "{} closed with {reason} though both peers are correct",
                        side_name(s)
                    ));
                }
                if !self.lenient && !self.final_close {
                    return Err(format!(
                        "{} closed ({reason}) though nobody closed the connection",
                        side_name(s)
                    ));
                }
            }
        }
        Ok(())
    }

    // ----- network ---------------------------------------------------------

    /// Decodes what side `s` has received, while it wants to read.
    fn decode(&mut self, s: usize) -> Result<usize, String> {
        let now = self.at();
        let p = &mut self.peers[s];
        let mut n = 0;
        while p.session.wants_read() {
            match p.codec.decode(&mut p.rx) {
                Ok(Some(tlv)) => {
                    n += 1;
                    match lite::decode(tlv) {
                        Ok(frame) => {
                            if let Some(t) = &mut self.trace {
                                t.push(format!("{:?} {} <- {frame:?}", self.now, side_name(s)));
                            }
                            p.session.handle_frame(frame, now);
                        }
                        Err(e) => {
                            return Err(format!("{} got a bad frame: {e}", side_name(s)));
                        }
                    }
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
                Err(e) => return Err(format!("{}: frame decoder error {e}", side_name(s))),
            }
        }
        Ok(n)
    }

    /// Pulls every frame side `s` wants to send into its pipe, in random
    /// chunks with random latency.
    fn pump(&mut self, s: usize) -> Result<usize, String> {
        let now = self.at();
        let mut buf = BytesMut::new();
        let mut n = 0usize;
        while let Some(frame) = self.peers[s].session.poll_frame(now) {
            n += 1;
            if n > 1_000_000 {
                return Err(format!("{}: poll_frame never ends", side_name(s)));
            }
            if let Frame::Data { payload, .. } = &frame {
                let max = self.peers[1 - s].session.config().max_frame_payload as usize;
                if payload.len() > max {
                    return Err(format!(
                        "{}: DATA of {} > {max}",
                        side_name(s),
                        payload.len()
                    ));
                }
            }
            lite::encode(&frame, &mut buf);
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

    fn latency(&mut self) -> Duration {
        let max = self.params.max_latency_us;
        let us = if max > 0 && self.rng.random_ratio(1, 50) {
            self.rng.random_range(0..=max * 10)
        } else {
            self.rng.random_range(0..=max)
        };
        Duration::from_micros(us)
    }

    /// Moves every due chunk into the receiver's buffer.
    fn deliver(&mut self) {
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

    fn timers(&mut self) {
        let now = self.at();
        for p in &mut self.peers {
            if p.session.poll_timeout().is_some_and(|t| t <= now) {
                p.session.handle_timeout(now);
            }
        }
    }

    /// Decodes and sends until nothing moves, then checks the invariants.
    fn settle(&mut self) -> Result<usize, String> {
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
    fn next_event(&self) -> Option<Duration> {
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

    // ----- application -----------------------------------------------------

    fn random_step(&mut self) -> Result<(), String> {
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

    fn app_op(&mut self, s: usize) -> Result<(), String> {
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

    fn unexpected_conn_err(&self, what: &str, e: &ConnError) -> Result<(), String> {
        if self.lenient || self.final_close {
            Ok(())
        } else {
            Err(format!("{what} failed with {e} though nobody closed"))
        }
    }

    fn open(&mut self, s: usize) -> Result<(), String> {
        if self.opened >= self.params.max_streams || self.peers[s].closed_by_app {
            return Ok(());
        }
        let now = self.at();
        let res = self.peers[s].session.open(now);
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

    fn accept(&mut self, s: usize) -> Result<bool, String> {
        let res = self.peers[s].session.accept();
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

    fn close_conn(&mut self, s: usize) {
        if !self.peers[s].closed_by_app {
            let now = self.at();
            self.peers[s].session.close(now);
            self.peers[s].closed_by_app = true;
            self.lenient |= !self.final_close;
        }
    }

    fn rec(&mut self, id: u32) -> &mut Rec {
        self.recs.get_mut(&id).expect("tracked stream")
    }

    fn stream_err(&mut self, s: usize, id: u32, what: &str, e: StreamError) -> Result<(), String> {
        match e {
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

    fn usable(&self, s: usize, id: u32) -> bool {
        let rec = &self.recs[&id];
        rec.handle[s] && !rec.reset && !rec.conn_err[s]
    }

    /// Writes up to `max` planned bytes; `Ok(true)` if anything changed.
    fn write(&mut self, s: usize, id: u32, max: usize) -> Result<bool, String> {
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
        let res = self.peers[s].session.write(id, &data);
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
    fn close_write(&mut self, s: usize, id: u32, early: bool) -> Result<bool, String> {
        if !self.usable(s, id) || self.recs[&id].fin_framed[s] {
            return Ok(false);
        }
        let rec = self.rec(id);
        if rec.written[s] < rec.target[s] && !early {
            return Ok(false);
        }
        rec.write_done[s] = true;
        rec.target[s] = rec.written[s];
        let res = self.peers[s].session.close_write(id);
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
    fn read(&mut self, s: usize, id: u32, len: usize) -> Result<bool, String> {
        let rec = &self.recs[&id];
        if !self.usable(s, id) || rec.eof[s] || rec.reader_gone[s] {
            return Ok(false);
        }
        let w = 1 - s;
        let mut buf = vec![0u8; len];
        let res = self.peers[s].session.read(id, &mut buf);
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

    fn close_read(&mut self, s: usize, id: u32) -> Result<(), String> {
        let rec = &self.recs[&id];
        if !rec.handle[s] || rec.reader_gone[s] || rec.eof[s] {
            return Ok(());
        }
        self.log(|| format!("{} close_read({id})", side_name(s)));
        match self.peers[s].session.close_read(id) {
            Ok(()) => {
                self.rec(id).reader_gone[s] = true;
                Ok(())
            }
            Err(e) => self.stream_err(s, id, "close_read", e),
        }
    }

    fn reset(&mut self, s: usize, id: u32) {
        let code = self.rng.random_range(0..10);
        self.peers[s].session.reset(id, code);
        self.log(|| format!("{} reset({id}, {code})", side_name(s)));
        self.rec(id).reset = true;
        self.detach(s, id);
    }

    /// Drops side `s`'s handle on `id`.
    fn detach(&mut self, s: usize, id: u32) {
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
        self.peers[s].session.detach(id, now);
        self.log(|| format!("{} detach({id})", side_name(s)));
    }

    /// Drops the handle once the application is done with the stream.
    fn maybe_drop(&mut self, s: usize, id: u32) -> bool {
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
    fn service(&mut self, s: usize) -> Result<bool, String> {
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

    fn quiescent(&self) -> bool {
        self.peers.iter().all(|p| {
            p.handles.is_empty()
                && (p.session.closed_reason().is_some() || p.session.stats().streams == 0)
        })
    }

    fn stuck(&self) -> String {
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
    fn run_until(
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

    fn drain(&mut self) -> Result<(), String> {
        self.run_until("drain", Duration::from_secs(300), Self::quiescent)
    }

    fn close_all(&mut self) -> Result<(), String> {
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

    fn final_checks(&self) -> Result<(), String> {
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

/// What a run exercised, so a test can tell it is not vacuous.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Bytes read and checked against what the peer wrote.
    pub bytes_checked: u64,
    /// Stream directions that ended in a checked EOF.
    pub eofs: u64,
    /// Streams that were reset.
    pub resets: u64,
    /// Runs in which a side closed the connection mid-way.
    pub early_closes: u64,
}

impl Summary {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: Summary) {
        self.bytes_checked += other.bytes_checked;
        self.eofs += other.eofs;
        self.resets += other.resets;
        self.early_closes += other.early_closes;
    }
}

impl Sim {
    fn summary(&self) -> Summary {
        let mut out = Summary {
            early_closes: u64::from(self.lenient),
            ..Summary::default()
        };
        for rec in self.recs.values() {
            out.bytes_checked += (rec.read[0] + rec.read[1]) as u64;
            out.eofs += u64::from(rec.eof[0]) + u64::from(rec.eof[1]);
            out.resets += u64::from(rec.reset);
        }
        out
    }
}

/// Runs one seed, turning panics into errors.
pub fn run_seed(seed: u64) -> Result<Summary, String> {
    run_with(|| Sim::new(seed))
}

/// Runs explicit parameters (configurations still drawn from `seed`).
pub fn run_params(seed: u64, params: Params) -> Result<Summary, String> {
    run_with(|| Sim::with_params(seed, StdRng::seed_from_u64(seed), params))
}

fn run_with(make: impl FnOnce() -> Sim + std::panic::UnwindSafe) -> Result<Summary, String> {
    let outcome = std::panic::catch_unwind(|| {
        let mut sim = make();
        sim.run().map(|()| sim.summary()).map_err(|e| {
            let trace = sim.trace.as_ref().map(|t| t.join("\n")).unwrap_or_default();
            format!("{trace}\n{e}\n  ({})", sim.describe())
        })
    });
    match outcome {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {msg}"))
        }
    }
}
