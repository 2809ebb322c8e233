//! Session invariants under arbitrary peer frames and application calls,
//! shared by the `session` fuzz target and the `fuzz_session_replay` test of
//! `mux-yamux-lite`.
//!
//! Input: bytes 0..9 pick the configuration (role, wire, drain policy and
//! small limits); the rest is a sequence of operations, each an opcode byte
//! plus operands: peer frames (semantic, or raw bytes through the wire's
//! layout), local API calls, and clock advances. After every operation
//! `check_invariants()` must hold; every frame the session sends is checked
//! (on the lite wire HELLO first and once, on the yamux wire none; SYN ids
//! fresh and of its own parity, nothing after FIN, DATA within the peer's
//! frame size and the credit it granted, only control frames once closed,
//! encodings round-trip).
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use bytes::{Bytes, BytesMut};
use mux_core::StreamId;
use mux_yamux_lite::frame::{Flags, Frame, Hello};
use mux_yamux_lite::session::{Role, Session};
use mux_yamux_lite::wire::{self, Layout};
use mux_yamux_lite::{Config, Wire};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[path = "input.rs"]
mod input;
use input::Input;

/// Frames pulled per drain at most; a session that yields more is stuck.
const DRAIN_BOUND: usize = 100_000;

/// Runs the session over `data`, panicking if any invariant breaks.
pub(crate) fn check(data: &[u8]) {
    let Some((cfg_bytes, ops)) = data.split_first_chunk::<9>() else {
        return;
    };
    let mut h = Harness::new(cfg_bytes);
    let mut input = Input { data: ops };
    let mut steps = 0usize;
    while let Some(op) = input.u8() {
        steps += 1;
        if steps > 4096 {
            break;
        }
        h.step(op, &mut input);
        h.after_step();
    }
    // Whatever happened, the session can be shut down and drained.
    let now = h.now();
    let grace = h.session.config().close_timeout;
    h.session.shutdown(now.checked_add(grace).unwrap_or(now));
    h.drain();
    h.advance(Duration::from_secs(3600));
    h.drain();
    h.after_step();
}

struct Harness {
    session: Session,
    base: Instant,
    offset: Duration,
    /// Drain after every operation (else only when asked or when the
    /// session stops reading).
    eager: bool,
    /// The session's layout, reading the peer's raw bytes.
    layout: Box<dyn Layout>,
    /// The same layout without a size limit, for round-tripping own frames.
    own: Box<dyn Layout>,
    rx: BytesMut,
    /// Stream ids seen anywhere, to aim operations at.
    ids: Vec<u32>,
    /// The next id of the peer's parity never used in a SYN.
    next_peer_id: u32,
    // ----- what the session sent ----
    hello_sent: bool,
    last_syn: Option<u32>,
    syn_ids: HashSet<u32>,
    fin_sent: HashSet<u32>,
    data_sent: HashMap<u32, u64>,
    /// Window credit delivered to the session per stream.
    granted: HashMap<u32, u64>,
    /// Print every step (`FUZZ_TRACE` set), for debugging a crash.
    trace: bool,
}

impl Harness {
    fn new(cfg: &[u8; 9]) -> Self {
        let role = if cfg[0] & 1 == 0 {
            Role::Client
        } else {
            Role::Server
        };
        let mut c = Config::default();
        if cfg[0] & 2 != 0 {
            c.keepalive_interval = None;
        }
        if cfg[0] & 8 != 0 {
            c.wire = Wire::Yamux;
        }
        c.max_frame_payload = [1, 4, 16, 64, 1000, 65_536][usize::from(cfg[1] % 6)];
        c.initial_window = [0, 1, 8, 100, 65_536, u32::MAX][usize::from(cfg[2] % 6)];
        c.max_window = c.initial_window.saturating_mul(u32::from(cfg[3] % 4) + 1);
        c.connection_receive_budget = [0, 100, 1 << 20, u64::MAX][usize::from(cfg[3] >> 6)];
        c.max_inbound_streams = [0, 1, 2, 4, 1000][usize::from(cfg[4] % 5)];
        c.accept_backlog = [0, 1, 2, 3, 256][usize::from(cfg[5] % 5)];
        c.max_pending_opens = [0, 1, 2, 4, 256][usize::from(cfg[6] % 5)];
        c.send_buffer = [0, 1, 8, 100, 65_536][usize::from(cfg[7] % 5)];
        c.max_empty_frames = u32::from(cfg[8] & 7);
        c.max_peer_error_resets = u32::from((cfg[8] >> 3) & 3);
        c.max_reset_before_accept = u32::from(cfg[8] >> 5);
        c.open_timeout = Duration::from_secs(u64::from(cfg[6] >> 4) + 1);
        c.close_timeout = Duration::from_secs(u64::from(cfg[7] >> 4));
        c.keepalive_timeout = Duration::from_secs(u64::from(cfg[4] >> 4) + 1);
        let base = Instant::now();
        let session = Session::new(role, c, base);
        let layout = wire::layout(session.config());
        let yamux = session.config().wire == Wire::Yamux;
        let own = wire::unlimited(session.config().wire);
        Self {
            session,
            base,
            offset: Duration::ZERO,
            eager: cfg[0] & 4 == 0,
            layout,
            own,
            rx: BytesMut::new(),
            ids: Vec::new(),
            next_peer_id: if role == Role::Client { 2 } else { 1 },
            // The yamux wire has no HELLO.
            hello_sent: yamux,
            last_syn: None,
            syn_ids: HashSet::new(),
            fin_sent: HashSet::new(),
            data_sent: HashMap::new(),
            granted: HashMap::new(),
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
        }
    }

    fn now(&self) -> Instant {
        self.base + self.offset
    }

    fn own_parity(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.session.role() == Role::Client)
    }

    fn note_id(&mut self, id: u32) {
        if !self.ids.contains(&id) && self.ids.len() < 64 {
            self.ids.push(id);
        }
    }

    fn pick_id(&mut self, input: &mut Input<'_>) -> u32 {
        let b = input.byte();
        match b {
            0..=0xBF if !self.ids.is_empty() => self.ids[usize::from(b) % self.ids.len()],
            0xF0..=0xF7 => {
                // A fresh id of the peer's parity, for SYNs.
                let id = self.next_peer_id;
                self.next_peer_id = id.saturating_add(2);
                id
            }
            0xF8 => u32::MAX,
            0xF9 => u32::MAX - 1,
            _ => u32::from(b & 0x0F),
        }
    }

    fn step(&mut self, op: u8, input: &mut Input<'_>) {
        let now = self.now();
        if self.trace {
            eprintln!(
                "op {} (closed: {:?})",
                op % 23,
                self.session.closed_reason()
            );
        }
        match op % 23 {
            0 => {
                let sel = input.byte();
                let hello = Hello {
                    version: if sel & 1 == 0 {
                        Hello::VERSION
                    } else {
                        input.byte()
                    },
                    initial_window: if sel & 2 == 0 {
                        u32::from(sel >> 2)
                    } else {
                        input.amount()
                    },
                    max_frame_payload: if sel & 4 == 0 { 16 } else { input.amount() },
                    max_inbound_streams: if sel & 8 == 0 { 4 } else { input.amount() },
                };
                self.deliver(Frame::Hello(hello));
            }
            1 => {
                let id = self.pick_id(input);
                let flags = Flags::from_bits(input.byte() & 7).unwrap_or(Flags::NONE);
                let len = usize::from(input.byte());
                let payload = Bytes::copy_from_slice(input.take(len));
                self.deliver(Frame::Data { id, flags, payload });
            }
            2 => {
                let id = self.pick_id(input);
                let flags = Flags::from_bits(input.byte() & 7).unwrap_or(Flags::NONE);
                let delta = input.amount();
                self.deliver(Frame::Window { id, flags, delta });
            }
            3 => {
                let id = self.pick_id(input);
                let code = input.amount();
                self.deliver(Frame::Reset { id, code });
            }
            4 => {
                let ack = input.byte() & 1 == 1;
                let opaque = input.amount();
                self.deliver(Frame::Ping { ack, opaque });
            }
            5 => {
                let code = input.amount();
                self.deliver(Frame::GoAway { code });
            }
            6 => {
                let len = usize::from(input.byte());
                let raw = input.take(len).to_vec();
                self.deliver_raw(&raw);
            }
            7 => {
                if let Ok(Some(id)) = self.session.open(now).map(|o| o.map(StreamId::get)) {
                    assert!(
                        self.own_parity(id),
                        "open() returned id {id} of the peer's parity"
                    );
                    self.note_id(id);
                }
            }
            8 => {
                if let Ok(Some(id)) = self.session.accept().map(|o| o.map(StreamId::get)) {
                    assert!(!self.own_parity(id), "accept() returned own id {id}");
                    self.note_id(id);
                }
            }
            9 => {
                let id = self.pick_id(input);
                let len = usize::from(input.byte()) * 4;
                let data = vec![0xA5u8; len];
                if let Ok(Some(n)) = self.session.write(StreamId(id), &data) {
                    assert!(n <= len, "write({len}) accepted {n}");
                }
            }
            10 => {
                let id = self.pick_id(input);
                let mut buf = vec![0u8; usize::from(input.byte())];
                if let Ok(mux_yamux_lite::session::ReadOutcome::Data(n)) =
                    self.session.read(StreamId(id), &mut buf)
                {
                    assert!(n <= buf.len(), "read into {} bytes gave {n}", buf.len());
                }
            }
            11 => {
                let id = self.pick_id(input);
                let _ = self.session.close_write(StreamId(id));
            }
            12 => {
                let id = self.pick_id(input);
                let _ = self.session.close_read(StreamId(id));
            }
            13 => {
                let id = self.pick_id(input);
                let code = input.amount();
                self.session.reset(StreamId(id), code);
            }
            14 => {
                let id = self.pick_id(input);
                self.session.detach(StreamId(id), now);
            }
            15 => {
                // Either a graceful shutdown or a prompt close with a code.
                if input.byte() & 1 == 0 {
                    let grace = self.session.config().close_timeout;
                    self.session.shutdown(now.checked_add(grace).unwrap_or(now));
                } else {
                    self.session.close(input.amount());
                }
            }
            16 => {
                let b = input.byte();
                let d = if b & 0x80 == 0 {
                    Duration::from_millis(u64::from(b) * 10)
                } else {
                    Duration::from_secs(u64::from(b & 0x7F))
                };
                self.advance(d);
            }
            17 => {
                if let Some(t) = self.session.poll_timeout() {
                    let d = t.saturating_duration_since(self.now());
                    self.advance(d);
                }
            }
            18 => {
                if input.byte() & 1 == 0 {
                    self.session.transport_closed(None);
                } else {
                    self.session
                        .transport_closed(Some(std::io::Error::other("fuzz")));
                }
            }
            19 => self.drain(),
            20 => {
                let id = self.pick_id(input);
                let _ = self.session.flush(StreamId(id));
            }
            _ => {
                // Pull a few frames only, leaving the rest queued.
                for _ in 0..(input.byte() % 4) {
                    if !self.pull_one() {
                        break;
                    }
                }
            }
        }
        if self.eager {
            self.drain();
        }
    }

    fn advance(&mut self, d: Duration) {
        self.offset = self.offset.saturating_add(d);
        let now = self.now();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// Makes room like a driver would: a session that stopped reading gets
    /// its output pulled first.
    fn make_room(&mut self) {
        if !self.session.wants_read() {
            self.drain();
        }
    }

    fn deliver(&mut self, frame: Frame) {
        self.make_room();
        if self.trace {
            eprintln!("  deliver {frame:?}");
        }
        self.note_frame(&frame);
        let now = self.now();
        self.session.handle_frame(frame, now);
    }

    /// Feeds raw bytes through the session's layout, as the driver does.
    fn deliver_raw(&mut self, raw: &[u8]) {
        self.rx.extend_from_slice(raw);
        loop {
            self.make_room();
            if !self.session.wants_read() {
                return;
            }
            match self.layout.decode(&mut self.rx) {
                Ok(Some(frame)) => {
                    self.note_frame(&frame);
                    let now = self.now();
                    self.session.handle_frame(frame, now);
                }
                Ok(None) => return,
                Err(e) => {
                    self.session.fail(e);
                    self.rx.clear();
                    return;
                }
            }
        }
    }

    /// Records what a delivered frame lets the session do.
    fn note_frame(&mut self, frame: &Frame) {
        if self.session.closed_reason().is_some() {
            return;
        }
        match frame {
            Frame::Data { id, .. } | Frame::Reset { id, .. } => self.note_id(*id),
            Frame::Window { id, delta, .. } => {
                self.note_id(*id);
                let g = self.granted.entry(*id).or_default();
                *g = g.saturating_add(u64::from(*delta));
            }
            _ => {}
        }
    }

    fn drain(&mut self) {
        for _ in 0..DRAIN_BOUND {
            if !self.pull_one() {
                return;
            }
        }
        panic!("poll_frame yielded more than {DRAIN_BOUND} frames in a row");
    }

    /// Pulls and checks one frame; `false` when there was none.
    fn pull_one(&mut self) -> bool {
        // Sending the last FIN may finish a draining session, so what was
        // allowed is judged by the state before the frame was pulled.
        let closed = self.session.closed_reason().is_some();
        let Some(frame) = self.session.poll_frame(self.now()) else {
            return false;
        };
        self.check_sent(&frame, closed);
        true
    }

    /// Checks one frame the session sent.
    fn check_sent(&mut self, frame: &Frame, closed: bool) {
        if self.trace {
            eprintln!("  sent {frame:?}");
        }
        let mut bytes = BytesMut::new();
        self.own.encode(frame, &mut bytes);
        let decoded = self.own.decode(&mut bytes).expect("own frame decodes");
        assert!(bytes.is_empty(), "own frame left trailing bytes");
        assert_eq!(decoded.as_ref(), Some(frame), "own frame round-trips");

        if !self.hello_sent {
            assert!(
                matches!(frame, Frame::Hello(_)),
                "first frame {frame:?} is not HELLO"
            );
            self.hello_sent = true;
            return;
        }
        match frame {
            Frame::Hello(_) => panic!("second HELLO"),
            Frame::Data { id, flags, payload } => {
                assert!(!closed, "DATA {id} after the session closed");
                assert!(!self.fin_sent.contains(id), "DATA on {id} after its FIN");
                self.check_stream_frame(*id, *flags);
                let peer = self
                    .session
                    .peer_hello()
                    .copied()
                    .unwrap_or_else(|| panic!("DATA {id} before the peer's HELLO"));
                let max = peer
                    .max_frame_payload
                    .min(self.session.config().max_frame_payload);
                assert!(
                    payload.len() <= max as usize,
                    "DATA of {} bytes over the limit {max}",
                    payload.len()
                );
                let sent = self.data_sent.entry(*id).or_default();
                *sent += payload.len() as u64;
                let credit = u64::from(peer.initial_window)
                    + self.granted.get(id).copied().unwrap_or_default();
                assert!(
                    *sent <= credit,
                    "stream {id}: {sent} bytes sent against {credit} of credit"
                );
            }
            Frame::Window { id, flags, .. } => {
                assert!(!closed, "WINDOW_UPDATE {id} after the session closed");
                self.check_stream_frame(*id, *flags);
            }
            Frame::Reset { id, .. } => assert_ne!(*id, 0, "RESET of stream 0"),
            Frame::Ping { .. } | Frame::GoAway { .. } => {}
        }
    }

    fn check_stream_frame(&mut self, id: u32, flags: Flags) {
        assert_ne!(id, 0, "stream frame for id 0");
        if flags.contains(Flags::SYN) {
            assert!(self.own_parity(id), "SYN for peer-parity id {id}");
            assert!(
                self.last_syn.is_none_or(|l| id > l),
                "SYN id {id} not increasing"
            );
            self.last_syn = Some(id);
            self.syn_ids.insert(id);
        } else if self.own_parity(id) {
            assert!(
                self.syn_ids.contains(&id),
                "frame for own stream {id} before its SYN"
            );
        }
        if flags.contains(Flags::ACK) {
            assert!(!self.own_parity(id), "ACK for own stream {id}");
        }
        assert!(
            !self.fin_sent.contains(&id) || !flags.contains(Flags::FIN),
            "second FIN on {id}"
        );
        if flags.contains(Flags::FIN) {
            self.fin_sent.insert(id);
        }
    }

    fn after_step(&mut self) {
        if let Err(e) = self.session.check_invariants() {
            panic!("invariant broken: {e}");
        }
        while self.session.poll_event().is_some() {}
        let _ = self.session.poll_timeout();
    }
}
