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
    pub fn with_params(seed: u64, mut rng: StdRng, params: Params) -> Self {
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
        let client = mk(Role::Client, random_config(&mut rng));
        let server = mk(Role::Server, random_config(&mut rng));
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
                        Ok(frame) => p.session.handle_frame(frame, now),
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
                    return Err(format!("{}: DATA of {} > {max}", side_name(s), payload.len()));
                }
            }
            lite::encode(&frame, &mut buf);
        }
        if self.peers[s].shut {
            // Frames queued after the transport was shut down go nowhere.
            return Ok(0);
        }
        let mut bytes = buf.freeze();
        while !bytes.is_empty() {
            let k = self.rng.random_range(1..=self.params.max_chunk).min(bytes.len());
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
            if pipe.segs.is_empty() && !pipe.eof_delivered && pipe.eof_at.is_some_and(|t| t <= self.now) {
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
    fn settle(&mut self) -> Result<(), String> {
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
                return Ok(());
            }
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
            let us = self.rng.random_range(0..=self.params.max_latency_us.max(10));
            self.now += Duration::from_micros(us);
        } else if let Some(t) = self.next_event() {
            self.now = t;
        }
        self.settle()
    }

    fn app_op(&mut self, s: usize) -> Result<(), String> {
        let roll = self.rng.random_range(0..1000u32);
        let p = &self.params;
        let (r, d) = (p.reset_permille, p.detach_permille);
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
            return self.accept(s);
        }
        if p.allow_close && roll < 202 && self.steps > 10 {
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
        match self.peers[s].session.open(now) {
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
        match self.peers[s].session.accept() {
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
