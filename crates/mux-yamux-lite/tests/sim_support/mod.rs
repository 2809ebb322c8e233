//! A deterministic simulation of two [`Session`]s in virtual time.
//!
//! Frames travel through the real byte layout of the run's wire (lite for
//! even seeds, yamux for odd ones): encoded into a byte pipe per direction,
//! delivered in random chunks after random latency, decoded while the
//! receiving session `wants_read()`. A seeded RNG drives the network and the
//! application (open, write, read, close_write, close_read, reset, detach,
//! close). Every failure is an `Err` describing what broke.
//!
//! Files: this one has the knobs, the state and the step loop; `network`
//! moves bytes and time, `app` plays the application, `ending` finishes a
//! run and makes the final checks.
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
use mux_yamux_lite::frame::{reset_code, Frame};
use mux_yamux_lite::session::{ReadOutcome, Role, Session};
use mux_yamux_lite::wire::{self, Layout};
use mux_yamux_lite::{Config, Wire};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

mod app;
mod ending;
mod network;

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
    /// The peer, its handle dropped, reset this side's sending with
    /// `DROPPED`: writes are over, reads must still reach EOF.
    dropped: [bool; 2],
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
    layout: Box<dyn Layout>,
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
            let layout = wire::layout(session.config());
            Peer {
                session,
                layout,
                rx: BytesMut::new(),
                rx_eof: false,
                shut: false,
                handles: Vec::new(),
                closed_by_app: false,
            }
        };
        let (mut cc, mut sc) = (random_config(&mut rng), random_config(&mut rng));
        // Both wires, without drawing from the RNG: every seed of the lite
        // wire keeps its run.
        let wire = if seed % 2 == 1 {
            Wire::Yamux
        } else {
            Wire::Lite
        };
        cc.wire = wire;
        sc.wire = wire;
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
    /// Streams whose writer was cut off by a dropped peer (`DROPPED`).
    pub dropped: u64,
}

impl Summary {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: Summary) {
        self.bytes_checked += other.bytes_checked;
        self.eofs += other.eofs;
        self.resets += other.resets;
        self.early_closes += other.early_closes;
        self.dropped += other.dropped;
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
            out.dropped += u64::from(rec.dropped[0] || rec.dropped[1]);
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
