//! End-to-end invariants of a real `Connection` (driver task, handles,
//! session) over a scripted in-memory transport, shared by the `e2e` fuzz
//! target and the `fuzz_e2e_replay` test of `mux-yamux-lite`.
//!
//! The input is both the peer and the socket. Bytes 0..8 pick the role, a
//! small configuration and whether the peer sends EOF at the end; the rest is a sequence of operations, each an opcode
//! byte plus operands (see [`Harness::step`]):
//! - peer frames written to the wire (semantic frames, raw bytes, and a
//!   "smart peer" that ACKs our SYNs and answers our pings);
//! - socket behaviour: read chunk sizes, reads and writes that return
//!   `Pending` (waking themselves, or only when released), short writes,
//!   `Ok(0)`, errors, EOF;
//! - application calls on the `Connection` and up to eight `Stream`s (open,
//!   accept, write, read, flush, shutdown, reset, close_read, deadlines,
//!   drop, `close()`), each bounded by a virtual-time timeout;
//! - letting virtual time pass.
//!
//! Everything runs on a current-thread tokio runtime with a paused clock, so
//! timers are deterministic and idle time passes instantly. Checked:
//! - nothing panics, and the run ends: a virtual-time limit over the whole
//!   run, a bound on transport polls that move no byte (a spinning driver),
//!   and after the ops the transport turns well-behaved and `close()` must
//!   return within `close_flush_timeout`, and the driver task be gone
//!   within `close_timeout` plus a margin;
//! - after the connection ended, every stream operation completes at once
//!   with an error or EOF, and opens and accepts fail;
//! - every byte read from a stream is the next byte the peer sent on it;
//! - bytes buffered per stream stay within `max_window`, all measured
//!   streams within `connection_receive_budget` plus their initial windows,
//!   and a writer can queue at most `send_buffer` bytes in one burst;
//! - every frame written decodes, HELLO comes first and once, nothing
//!   follows a GO_AWAY with an error code, SYNs are fresh and of our parity,
//!   ACKs are for peer streams, no DATA after FIN, DATA respects both sides'
//!   `max_frame_payload` and the credit the peer granted, and nothing is
//!   written after the transport was shut down.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use bytes::{Buf, BytesMut};
use mux_core::MuxedStream;
use mux_yamux_lite::frame::{Flags, Frame, Hello};
use mux_yamux_lite::session::YAMUX_PEER;
use mux_yamux_lite::wire::{self, Layout};
use mux_yamux_lite::Wire as WireMode;
use mux_yamux_lite::{Config, Connection, Role, Stream};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{timeout, Instant};

#[path = "input.rs"]
mod input;
use input::Input;

/// Operations per run at most.
const MAX_STEPS: usize = 2048;
/// Virtual time the operations may use; later ones are skipped.
const OPS_TIME: Duration = Duration::from_secs(2 * 3600);
/// Virtual time the whole run may take; reaching it is a hang.
const HARD_LIMIT: Duration = Duration::from_secs(12 * 3600);
/// Stream handles the application holds at most.
const SLOTS: usize = 8;
/// Wire bytes the harness may generate (beyond the input's own bytes).
const GEN_BUDGET: usize = 64 * 1024;
/// Transport polls per run that moved no byte, at most; more means the
/// driver spins. Polls that move bytes are not counted against it: a socket
/// scripted to take one byte per write is polled once per byte, and a few
/// hundred kilobytes written that way are a slow transport, not a spin.
const POLL_LIMIT: u64 = 1_000_000;

/// Tolerate control frames (never stream frames) after a GO_AWAY with an
/// error code. `false`: nothing may follow a final GO_AWAY, neither frames
/// queued before a keepalive timeout's GO_AWAY(3) nor a RESET for a reset
/// after the close; the corpus holds inputs that check both.
const CONTROL_AFTER_FINAL_GO_AWAY: bool = false;

/// Runs one input, panicking if any invariant breaks.
pub(crate) fn check(data: &[u8]) {
    let Some((cfg, ops)) = data.split_first_chunk::<8>() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let finished = rt.block_on(async {
        let mut h = Harness::new(cfg);
        timeout(HARD_LIMIT, h.run(ops)).await.is_ok()
    });
    assert!(
        finished,
        "run did not end within {HARD_LIMIT:?} of virtual time"
    );
    // Dropping the runtime drops any task left; it must not block.
    drop(rt);
}

// ----- input ---------------------------------------------------------------

// ----- scripted transport ----------------------------------------------------

/// The socket's state, shared by the transport the driver owns and the
/// harness that scripts it.
struct Wire {
    /// Bytes the peer sent that the driver has not read yet.
    inbox: BytesMut,
    /// Largest read.
    read_chunk: usize,
    /// Reads still to answer `Pending` (waking themselves at once).
    read_pending: u32,
    /// Reads answer `Pending` until released.
    read_hold: bool,
    /// Reads return EOF once the inbox is empty.
    read_eof: bool,
    /// The next read fails.
    read_error: bool,
    read_waker: Option<Waker>,
    /// Largest write accepted.
    write_max: usize,
    write_pending: u32,
    write_hold: bool,
    /// The next write returns `Ok(0)`.
    write_zero: bool,
    /// The next write fails.
    write_error: bool,
    write_waker: Option<Waker>,
    /// Bytes the driver wrote, not yet checked.
    written: BytesMut,
    shut_down: bool,
    polls: u64,
    /// Bytes the transport read or wrote, for the poll bound.
    moved: u64,
}

impl Wire {
    fn new() -> Self {
        Self {
            inbox: BytesMut::new(),
            read_chunk: usize::MAX,
            read_pending: 0,
            read_hold: false,
            read_eof: false,
            read_error: false,
            read_waker: None,
            write_max: usize::MAX,
            write_pending: 0,
            write_hold: false,
            write_zero: false,
            write_error: false,
            write_waker: None,
            written: BytesMut::new(),
            shut_down: false,
            polls: 0,
            moved: 0,
        }
    }

    fn count_poll(&mut self) {
        self.polls += 1;
        assert!(
            self.polls <= POLL_LIMIT.saturating_add(self.moved),
            "transport polled {} times for {} bytes moved: the driver spins",
            self.polls,
            self.moved
        );
    }

    /// Wakers to call (after unlocking) so blocked reads and writes retry.
    fn take_wakers(&mut self) -> impl Iterator<Item = Waker> {
        [self.read_waker.take(), self.write_waker.take()]
            .into_iter()
            .flatten()
    }
}

type WireRef = Arc<Mutex<Wire>>;

fn lock(wire: &WireRef) -> MutexGuard<'_, Wire> {
    wire.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Changes the socket's state and wakes whoever waits on it.
fn poke(wire: &WireRef, f: impl FnOnce(&mut Wire)) {
    let wakers: Vec<Waker> = {
        let mut w = lock(wire);
        f(&mut w);
        w.take_wakers().collect()
    };
    for waker in wakers {
        waker.wake();
    }
}

struct ScriptedIo(WireRef);

impl AsyncRead for ScriptedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut w = lock(&self.0);
        w.count_poll();
        if w.read_error {
            w.read_error = false;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "scripted read error",
            )));
        }
        if w.read_pending > 0 {
            w.read_pending -= 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if w.read_hold || (w.inbox.is_empty() && !w.read_eof) {
            w.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = w.inbox.len().min(w.read_chunk).min(buf.remaining());
        buf.put_slice(&w.inbox[..n]);
        w.inbox.advance(n);
        w.moved += n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ScriptedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut w = lock(&self.0);
        w.count_poll();
        assert!(!w.shut_down, "write after the transport was shut down");
        if w.write_error {
            w.write_error = false;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "scripted write error",
            )));
        }
        if w.write_zero {
            w.write_zero = false;
            return Poll::Ready(Ok(0));
        }
        if w.write_pending > 0 {
            w.write_pending -= 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if w.write_hold {
            w.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(w.write_max);
        w.written.extend_from_slice(&buf[..n]);
        w.moved += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.0).shut_down = true;
        Poll::Ready(Ok(()))
    }
}

/// A frame for the trace, without DATA payload bytes.
fn show(frame: &Frame) -> String {
    match frame {
        Frame::Data { id, flags, payload } => {
            format!(
                "Data {{ id: {id}, flags: {flags:?}, len: {} }}",
                payload.len()
            )
        }
        other => format!("{other:?}"),
    }
}

// ----- what the peer sent ----------------------------------------------------

/// Decodes what the peer wrote exactly as the driver would, to know what the
/// connection may legitimately deliver and what credit it was granted.
struct Inbound {
    /// The connection's own layout, limits included.
    layout: Box<dyn Layout>,
    buf: BytesMut,
    /// A decode error: the driver stops there too.
    dead: bool,
    first: bool,
    /// The peer's HELLO, if it was the first frame (on the yamux wire, the
    /// settings the connection assumes from the start).
    hello: Option<Hello>,
    /// DATA payloads per stream, in order.
    data: HashMap<u32, Vec<u8>>,
    /// WINDOW_UPDATE deltas per stream.
    credit: HashMap<u32, u64>,
}

impl Inbound {
    fn new(config: &Config) -> Self {
        let yamux = config.wire == WireMode::Yamux;
        Self {
            layout: wire::layout(config),
            buf: BytesMut::new(),
            dead: false,
            first: !yamux,
            hello: yamux.then_some(YAMUX_PEER),
            data: HashMap::new(),
            credit: HashMap::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8], trace: bool) {
        if self.dead {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let frame = match self.layout.decode(&mut self.buf) {
                Ok(Some(frame)) => Some(frame),
                Ok(None) => return,
                Err(_) => None,
            };
            let Some(frame) = frame else {
                self.dead = true;
                self.buf.clear();
                return;
            };
            if trace {
                eprintln!("  peer -> {}", show(&frame));
            }
            match &frame {
                Frame::Hello(h) if self.first => self.hello = Some(*h),
                Frame::Data { id, payload, .. } => {
                    self.data.entry(*id).or_default().extend_from_slice(payload);
                }
                Frame::Window { id, delta, .. } => {
                    let c = self.credit.entry(*id).or_default();
                    *c = c.saturating_add(u64::from(*delta));
                }
                _ => {}
            }
            self.first = false;
        }
    }
}

// ----- what the connection sent ----------------------------------------------

struct Outbound {
    /// The connection's layout without a size limit: its own output must
    /// decode whatever its size.
    layout: Box<dyn Layout>,
    buf: BytesMut,
    role: Role,
    max_frame_payload: u32,
    hello: bool,
    /// A GO_AWAY with an error code was sent: nothing may follow.
    final_go_away: Option<u32>,
    last_syn: Option<u32>,
    syn_ids: HashSet<u32>,
    fin_sent: HashSet<u32>,
    data_sent: HashMap<u32, u64>,
    /// Our SYNs the scripted peer has not ACKed yet.
    unacked: VecDeque<u32>,
    /// The latest ping request we sent.
    ping: Option<u32>,
}

impl Outbound {
    fn new(role: Role, config: &Config) -> Self {
        Self {
            layout: wire::unlimited(config.wire),
            buf: BytesMut::new(),
            role,
            max_frame_payload: config.max_frame_payload,
            // The yamux wire has no HELLO.
            hello: config.wire == WireMode::Yamux,
            final_go_away: None,
            last_syn: None,
            syn_ids: HashSet::new(),
            fin_sent: HashSet::new(),
            data_sent: HashMap::new(),
            unacked: VecDeque::new(),
            ping: None,
        }
    }

    fn own_parity(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.role == Role::Client)
    }

    fn feed(&mut self, bytes: &[u8], inbound: &Inbound, trace: bool) {
        self.buf.extend_from_slice(bytes);
        loop {
            let frame = match self.layout.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => panic!("own output does not decode: {e}"),
            };
            if trace {
                eprintln!("  sent <- {}", show(&frame));
            }
            self.check(&frame, inbound);
        }
    }

    fn check(&mut self, frame: &Frame, inbound: &Inbound) {
        if let Some(code) = self.final_go_away {
            let control = matches!(
                frame,
                Frame::Reset { .. } | Frame::Ping { .. } | Frame::GoAway { .. }
            );
            assert!(
                CONTROL_AFTER_FINAL_GO_AWAY && control,
                "{frame:?} sent after GO_AWAY({code})"
            );
        }
        if !self.hello {
            assert!(
                matches!(frame, Frame::Hello(_)),
                "first frame {frame:?} is not HELLO"
            );
            self.hello = true;
            return;
        }
        match frame {
            Frame::Hello(_) => panic!("second HELLO"),
            Frame::Data { id, flags, payload } => {
                assert!(!self.fin_sent.contains(id), "DATA on {id} after its FIN");
                self.check_stream_frame(*id, *flags);
                let peer = inbound
                    .hello
                    .unwrap_or_else(|| panic!("DATA on {id} without the peer's HELLO"));
                let max = peer.max_frame_payload.min(self.max_frame_payload);
                assert!(
                    payload.len() <= max as usize,
                    "DATA of {} bytes over the limit {max}",
                    payload.len()
                );
                let sent = self.data_sent.entry(*id).or_default();
                *sent += payload.len() as u64;
                let credit = u64::from(peer.initial_window)
                    + inbound.credit.get(id).copied().unwrap_or_default();
                assert!(
                    *sent <= credit,
                    "stream {id}: {sent} bytes sent against at most {credit} of credit"
                );
            }
            Frame::Window { id, flags, .. } => self.check_stream_frame(*id, *flags),
            Frame::Reset { id, .. } => assert_ne!(*id, 0, "RESET of stream 0"),
            Frame::Ping { ack, opaque } => {
                if !ack {
                    self.ping = Some(*opaque);
                }
            }
            Frame::GoAway { code } => {
                if *code != 0 {
                    self.final_go_away = Some(*code);
                }
            }
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
            self.unacked.push_back(id);
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
            !flags.contains(Flags::FIN) || self.fin_sent.insert(id),
            "second FIN on {id}"
        );
    }
}

// ----- the harness -------------------------------------------------------------

/// What the application read per stream, checked against what the peer sent.
#[derive(Default)]
struct Reads {
    pos: HashMap<u32, usize>,
}

impl Reads {
    fn record(&mut self, inbound: &Inbound, id: u32, data: &[u8]) {
        let pos = self.pos.entry(id).or_default();
        let sent = inbound.data.get(&id).map_or(&[][..], Vec::as_slice);
        let end = *pos + data.len();
        assert!(
            end <= sent.len(),
            "stream {id}: {end} bytes read, the peer sent {}",
            sent.len()
        );
        assert!(
            sent[*pos..end] == *data,
            "stream {id}: bytes {pos}..{end} differ from what the peer sent"
        );
        *pos = end;
    }
}

struct Harness {
    role: Role,
    config: Config,
    wire: WireRef,
    conn: Option<Connection>,
    slots: Vec<Option<Stream>>,
    inbound: Inbound,
    outbound: Outbound,
    reads: Reads,
    /// Stream ids seen anywhere, to aim peer frames at.
    ids: Vec<u32>,
    next_peer_id: u32,
    gen_left: usize,
    /// At the end the peer closes its side (else it stays silent).
    peer_eof: bool,
    start: Instant,
    trace: bool,
}

fn config_from(cfg: &[u8; 8]) -> Config {
    let mut c = Config::default();
    c.keepalive_interval = match cfg[0] >> 6 {
        0 => None,
        1 => Some(Duration::from_secs(1)),
        2 => Some(Duration::from_secs(5)),
        _ => Some(Duration::from_secs(30)),
    };
    c.max_frame_payload = [1, 4, 16, 64, 1000, 16_384][usize::from(cfg[1] % 6)];
    c.initial_window = [0, 1, 8, 100, 4096, 65_536][usize::from(cfg[2] % 6)];
    c.max_window = c.initial_window.saturating_mul(u32::from(cfg[3] % 4) + 1);
    c.connection_receive_budget = [0, 100, 1 << 16, 1 << 30][usize::from(cfg[3] >> 6)];
    c.max_inbound_streams = [0, 1, 2, 4, 1000][usize::from(cfg[4] % 5)];
    c.accept_backlog = [0, 1, 2, 4, 256][usize::from(cfg[5] % 5)];
    c.max_pending_opens = [1, 2, 4, 256][usize::from(cfg[6] % 4)];
    c.send_buffer = [1, 8, 100, 4096, 65_536][usize::from(cfg[7] % 5)];
    c.max_empty_frames = u32::from(cfg[4] >> 5);
    c.max_peer_error_resets = u32::from((cfg[5] >> 4) & 3);
    c.max_reset_before_accept = u32::from(cfg[5] >> 6);
    c.keepalive_timeout = Duration::from_secs(u64::from((cfg[4] >> 3) & 3) + 1);
    c.open_timeout = Duration::from_secs(u64::from(cfg[6] >> 4) + 1);
    c.close_timeout = Duration::from_secs(u64::from(cfg[7] >> 4));
    c.read_blocks_kept = [64, 0, 1, 2][usize::from((cfg[0] >> 2) & 3)];
    if cfg[0] & 0x10 != 0 {
        c.wire = WireMode::Yamux;
    }
    c
}

impl Harness {
    fn new(cfg: &[u8; 8]) -> Self {
        let role = if cfg[0] & 1 == 0 {
            Role::Client
        } else {
            Role::Server
        };
        let config = config_from(cfg);
        let wire = Arc::new(Mutex::new(Wire::new()));
        let conn = Connection::new(ScriptedIo(wire.clone()), role, config.clone());
        Self {
            role,
            inbound: Inbound::new(&config),
            outbound: Outbound::new(role, &config),
            config,
            wire,
            conn: Some(conn),
            slots: (0..SLOTS).map(|_| None).collect(),
            reads: Reads::default(),
            ids: Vec::new(),
            next_peer_id: if role == Role::Client { 2 } else { 1 },
            gen_left: GEN_BUDGET,
            peer_eof: cfg[0] & 2 != 0,
            start: Instant::now(),
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
        }
    }

    async fn run(&mut self, ops: &[u8]) {
        let mut input = Input { data: ops };
        let mut steps = 0;
        while let Some(op) = input.u8() {
            steps += 1;
            if steps > MAX_STEPS || self.start.elapsed() > OPS_TIME {
                break;
            }
            self.step(op, &mut input).await;
            self.check_output();
        }
        self.finish().await;
    }

    fn note_id(&mut self, id: u32) {
        if !self.ids.contains(&id) && self.ids.len() < 64 {
            self.ids.push(id);
        }
    }

    fn pick_id(&mut self, input: &mut Input<'_>) -> u32 {
        match input.byte() {
            b @ 0..=0xBF if !self.ids.is_empty() => self.ids[usize::from(b) % self.ids.len()],
            0xF0..=0xF7 => {
                // A fresh id of the peer's parity, for SYNs.
                let id = self.next_peer_id;
                self.next_peer_id = id.saturating_add(2);
                self.note_id(id);
                id
            }
            0xF8 => u32::MAX,
            0xF9 => u32::MAX - 1,
            b => u32::from(b & 0x0F),
        }
    }

    fn slot(input: &mut Input<'_>) -> usize {
        usize::from(input.byte()) % SLOTS
    }

    /// Writes peer bytes to the socket.
    fn send_raw(&mut self, bytes: &[u8]) {
        self.inbound.feed(bytes, self.trace);
        poke(&self.wire, |w| w.inbox.extend_from_slice(bytes));
    }

    fn send(&mut self, frame: &Frame) {
        let mut buf = BytesMut::new();
        self.inbound.layout.encode(frame, &mut buf);
        self.send_raw(&buf);
    }

    /// Checks what the connection wrote since the last call.
    fn check_output(&mut self) {
        let bytes = std::mem::take(&mut lock(&self.wire).written);
        if !bytes.is_empty() {
            self.outbound.feed(&bytes, &self.inbound, self.trace);
        }
    }

    fn own_parity(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.role == Role::Client)
    }

    /// Puts a new stream into a slot (dropping whatever was there).
    fn place(&mut self, k: usize, stream: Stream, outbound: bool) {
        let id = stream.id().get();
        assert_eq!(
            self.own_parity(id),
            outbound,
            "stream {id} has the wrong parity"
        );
        self.note_id(id);
        self.slots[k] = Some(stream);
    }

    async fn step(&mut self, op: u8, input: &mut Input<'_>) {
        if self.trace {
            eprintln!("op {} at {:?}", op % 29, self.start.elapsed());
        }
        match op % 29 {
            // ----- the peer ---------------------------------------------------
            0 => {
                let sel = input.byte();
                let hello = Hello {
                    version: if sel & 1 == 0 {
                        Hello::VERSION
                    } else {
                        input.byte()
                    },
                    initial_window: [0, 1, 16, 100, 4096, 65_536, 0x7FFF_FFFF, 0x8000_0000]
                        [usize::from((sel >> 1) & 7)],
                    max_frame_payload: [1, 16, 1000, 65_536][usize::from((sel >> 4) & 3)],
                    max_inbound_streams: [0, 1, 4, 1000][usize::from(sel >> 6)],
                };
                self.send(&Frame::Hello(hello));
            }
            1 => {
                let id = self.pick_id(input);
                let flags = Flags::from_bits(input.byte() & 7).unwrap_or(Flags::NONE);
                let len = usize::from(input.byte());
                let payload = bytes::Bytes::copy_from_slice(input.take(len));
                self.send(&Frame::Data { id, flags, payload });
            }
            2 => {
                // DATA with a generated payload, to reach windows cheaply.
                let id = self.pick_id(input);
                let flags = Flags::from_bits(input.byte() & 7).unwrap_or(Flags::NONE);
                let len = (input.amount() as usize).min(8192).min(self.gen_left);
                self.gen_left -= len;
                let seed = input.byte();
                let payload: Vec<u8> = (0..len)
                    .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                    .collect();
                self.send(&Frame::Data {
                    id,
                    flags,
                    payload: payload.into(),
                });
            }
            3 => {
                let id = self.pick_id(input);
                let flags = Flags::from_bits(input.byte() & 7).unwrap_or(Flags::NONE);
                let delta = input.amount();
                self.send(&Frame::Window { id, flags, delta });
            }
            4 => {
                let id = self.pick_id(input);
                let code = input.amount();
                self.send(&Frame::Reset { id, code });
            }
            5 => {
                let ack = input.byte() & 1 == 1;
                let opaque = input.amount();
                self.send(&Frame::Ping { ack, opaque });
            }
            6 => {
                // Answer our latest ping, as a live peer would.
                let opaque = self.outbound.ping.unwrap_or(1);
                self.send(&Frame::Ping { ack: true, opaque });
            }
            7 => {
                let code = input.amount();
                self.send(&Frame::GoAway { code });
            }
            8 => {
                let len = usize::from(input.byte());
                let raw = input.take(len).to_vec();
                self.send_raw(&raw);
            }
            9 => {
                // ACK our oldest unacknowledged SYN, with some credit.
                let delta = input.amount();
                if let Some(id) = self.outbound.unacked.pop_front() {
                    self.send(&Frame::Window {
                        id,
                        flags: Flags::ACK,
                        delta,
                    });
                }
            }
            // ----- the socket -------------------------------------------------
            10 => {
                let sel = input.byte();
                poke(&self.wire, |w| {
                    w.read_chunk = [1, 2, 3, 7, 16, 64, 1000, usize::MAX][usize::from(sel & 7)];
                    w.read_pending = u32::from((sel >> 3) & 3);
                    if sel & 0x20 != 0 {
                        w.read_hold = !w.read_hold;
                    }
                });
            }
            11 => {
                let sel = input.byte();
                poke(&self.wire, |w| {
                    w.write_max =
                        [1, 2, 5, 16, 64, 1000, usize::MAX, usize::MAX][usize::from(sel & 7)];
                    w.write_pending = u32::from((sel >> 3) & 3);
                    if sel & 0x20 != 0 {
                        w.write_hold = !w.write_hold;
                    }
                });
            }
            12 => {
                let sel = input.byte();
                poke(&self.wire, |w| match sel % 4 {
                    0 => w.read_eof = true,
                    1 => w.read_error = true,
                    2 => w.write_zero = true,
                    _ => w.write_error = true,
                });
            }
            13 => poke(&self.wire, |w| {
                w.read_hold = false;
                w.write_hold = false;
            }),
            14 => {
                let d = input.duration();
                if d.is_zero() {
                    for _ in 0..4 {
                        tokio::task::yield_now().await;
                    }
                } else {
                    tokio::time::sleep(d).await;
                }
            }
            // ----- the application --------------------------------------------
            15 => {
                let (k, d) = (Self::slot(input), input.duration());
                let Some(conn) = self.conn.clone() else {
                    return;
                };
                if let Ok(Ok(stream)) = timeout(d, conn.open_stream()).await {
                    self.place(k, stream, true);
                }
            }
            16 => {
                let (k, d) = (Self::slot(input), input.duration());
                let Some(conn) = self.conn.clone() else {
                    return;
                };
                if let Ok(Ok(stream)) = timeout(d, conn.accept_stream()).await {
                    self.place(k, stream, false);
                }
            }
            17 => {
                let k = Self::slot(input);
                let len = (input.amount() as usize).min(16 * 1024);
                let d = input.duration();
                let Some(s) = self.slots[k].as_mut() else {
                    return;
                };
                let data = vec![0x5Au8; len];
                if let Ok(Ok(n)) = timeout(d, s.write(&data)).await {
                    assert!(n <= len, "write of {len} bytes returned {n}");
                }
            }
            18 => {
                let k = Self::slot(input);
                self.write_burst(k);
            }
            19 => {
                let k = Self::slot(input);
                let size = usize::from(input.byte()) * 16 + 1;
                let d = input.duration();
                let Some(s) = self.slots[k].as_mut() else {
                    return;
                };
                let id = s.id().get();
                let mut buf = vec![0u8; size];
                if let Ok(Ok(n)) = timeout(d, s.read(&mut buf)).await {
                    self.reads.record(&self.inbound, id, &buf[..n]);
                }
            }
            20 => self.read_burst(),
            21 => {
                let (k, d) = (Self::slot(input), input.duration());
                if let Some(s) = self.slots[k].as_mut() {
                    let _ = timeout(d, s.shutdown()).await;
                }
            }
            22 => {
                let (k, d) = (Self::slot(input), input.duration());
                if let Some(s) = self.slots[k].as_mut() {
                    let _ = timeout(d, s.flush()).await;
                }
            }
            23 => {
                let (k, code) = (Self::slot(input), input.amount());
                if let Some(s) = self.slots[k].as_mut() {
                    s.reset_with(code);
                }
            }
            24 => {
                let k = Self::slot(input);
                if let Some(s) = self.slots[k].as_mut() {
                    let _ = s.close_read();
                }
            }
            25 => {
                let (k, sel, d) = (Self::slot(input), input.byte(), input.duration());
                if let Some(s) = self.slots[k].as_mut() {
                    let at = (sel & 4 == 0).then(|| Instant::now() + d);
                    match sel & 3 {
                        0 => s.set_read_deadline(at),
                        1 => s.set_write_deadline(at),
                        _ => s.set_deadline(at),
                    }
                }
            }
            26 => {
                let k = Self::slot(input);
                self.slots[k] = None;
            }
            27 => {
                let d = input.duration();
                if let Some(conn) = self.conn.clone() {
                    let _ = timeout(d, conn.close()).await;
                }
            }
            _ => self.conn = None,
        }
    }

    /// Writes to stream `k` without yielding: the driver cannot run, so the
    /// bytes accepted sit in the stream's send buffer, except those that an
    /// answer written through puts on the wire itself (or, for one frame,
    /// leaves in the write queue).
    fn write_burst(&mut self, k: usize) {
        let Some(s) = self.slots[k].as_mut() else {
            return;
        };
        let wire_before = lock(&self.wire).written.len();
        let mut cx = Context::from_waker(Waker::noop());
        let chunk = [0xC3u8; 1024];
        let mut queued = 0usize;
        for _ in 0..10_000 {
            match Pin::new(&mut *s).poll_write(&mut cx, &chunk) {
                Poll::Ready(Ok(n)) if n > 0 => queued += n,
                _ => break,
            }
        }
        // Frame headers count too: a bound, not an exact figure.
        let on_wire = lock(&self.wire).written.len() - wire_before;
        let limit = self.config.send_buffer.max(1);
        // An answer to a read written through that the transport did not
        // take whole leaves
        // the rest of its frame in the write queue, off the wire and
        // outside the send buffer. Only one can: the next answer written through needs
        // an empty queue, and the driver, which empties it, cannot run here.
        let answer_rest = chunk.len();
        assert!(
            queued <= limit + on_wire + answer_rest,
            "stream {}: {queued} bytes accepted in one burst, {on_wire} on the wire, send_buffer is {limit}",
            s.id().get()
        );
    }

    /// Reads every stream dry without yielding: what comes out was buffered.
    fn read_burst(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = vec![0u8; 4096];
        let max_window = self.config.max_window.max(self.config.initial_window) as usize;
        let (mut total, mut streams) = (0usize, 0usize);
        for s in self.slots.iter_mut().flatten() {
            let id = s.id().get();
            let mut got = 0usize;
            for _ in 0..10_000 {
                let mut rb = ReadBuf::new(&mut buf);
                match Pin::new(&mut *s).poll_read(&mut cx, &mut rb) {
                    Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                        got += rb.filled().len();
                        self.reads.record(&self.inbound, id, rb.filled());
                    }
                    _ => break,
                }
            }
            assert!(
                got <= max_window,
                "stream {id}: {got} bytes buffered, max_window is {max_window}"
            );
            total += got;
            streams += 1;
        }
        let bound = self
            .config
            .connection_receive_budget
            .saturating_add(streams as u64 * u64::from(self.config.initial_window));
        assert!(
            total as u64 <= bound,
            "{total} bytes buffered over {streams} streams, more than {bound}"
        );
    }

    /// The socket turns well-behaved and the application closes: the
    /// connection must end in bounded virtual time, then every handle must
    /// fail (or see EOF) at once.
    async fn finish(&mut self) {
        let peer_eof = self.peer_eof;
        poke(&self.wire, |w| {
            w.read_pending = 0;
            w.read_hold = false;
            w.read_eof |= peer_eof;
            w.write_pending = 0;
            w.write_hold = false;
            w.write_max = usize::MAX;
            w.write_zero = false;
            w.write_error = false;
        });
        if let Some(conn) = self.conn.clone() {
            // close() is bounded by the flush timeout alone (plus the
            // timer's millisecond rounding), whatever state the ops left.
            let bound = self.config.close_flush_timeout + Duration::from_millis(2);
            let closed = timeout(bound, conn.close()).await;
            self.check_output();
            assert!(closed.is_ok(), "close() did not return within {bound:?}");
        }
        let limit = self.config.close_timeout + Duration::from_secs(300);
        // Without a Connection handle the close started when the last one
        // was dropped; either way the driver task must be gone.
        let handle = tokio::runtime::Handle::current();
        let deadline = Instant::now() + limit;
        while handle.metrics().num_alive_tasks() > 0 {
            assert!(
                Instant::now() < deadline,
                "the driver did not finish within {limit:?} of the close"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.check_output();
        lock(&self.wire).inbox.clear();

        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = vec![0u8; 4096];
        for s in self.slots.iter_mut().flatten() {
            let id = s.id().get();
            let mut ended = false;
            for _ in 0..10_000 {
                let mut rb = ReadBuf::new(&mut buf);
                match Pin::new(&mut *s).poll_read(&mut cx, &mut rb) {
                    Poll::Pending => panic!("stream {id}: read pending after the connection ended"),
                    Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                        self.reads.record(&self.inbound, id, rb.filled());
                    }
                    Poll::Ready(_) => {
                        ended = true;
                        break;
                    }
                }
            }
            assert!(ended, "stream {id}: reads never end");
            match Pin::new(&mut *s).poll_write(&mut cx, b"late") {
                Poll::Pending => panic!("stream {id}: write pending after the connection ended"),
                Poll::Ready(Ok(n)) => {
                    panic!("stream {id}: write of {n} bytes accepted after the end")
                }
                Poll::Ready(Err(_)) => {}
            }
            assert!(
                Pin::new(&mut *s).poll_flush(&mut cx).is_ready(),
                "stream {id}: flush pending after the connection ended"
            );
            assert!(
                Pin::new(&mut *s).poll_shutdown(&mut cx).is_ready(),
                "stream {id}: shutdown pending after the connection ended"
            );
        }
        if let Some(conn) = self.conn.take() {
            assert!(conn.is_closed(), "connection not closed after close()");
            let open = pin!(conn.open_stream()).poll(&mut cx);
            assert!(
                matches!(open, Poll::Ready(Err(_))),
                "open_stream after the end: {open:?}"
            );
            let accept = pin!(conn.accept_stream()).poll(&mut cx);
            assert!(
                matches!(accept, Poll::Ready(Err(_))),
                "accept_stream after the end: {accept:?}"
            );
        }
        self.slots.clear();
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        assert_eq!(handle.metrics().num_alive_tasks(), 0, "tasks left behind");
        self.check_output();
    }
}
