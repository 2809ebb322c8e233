//! The sans-IO protocol core, in the style of quinn-proto.
//!
//! A [`Session`] holds no socket, no runtime and no clock. Its driver feeds it
//! decoded frames ([`Session::handle_frame`]), application commands
//! ([`Session::open`], [`Session::write`], [`Session::read`], ...) and the
//! current time; it pulls frames to send ([`Session::poll_frame`]), events
//! to wake the application ([`Session::poll_event`]) and the next instant it
//! wants to be called back ([`Session::poll_timeout`]). Everything is
//! deterministic, so tests and fuzzers run it without tokio.
//!
//! Submodules: [`stream`] (per-stream state and the transition table),
//! `inbound` (what each received frame does), `outbound` (what goes on the
//! wire next, in priority order), [`error`] (peer faults).

mod chunks;
pub mod error;
mod inbound;
mod outbound;
pub mod stream;

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mux_core::{ConnError, StreamError};

use crate::config::Config;
use crate::frame::{go_away, reset_code, Frame, Hello};
use crate::StreamMap;
use chunks::Spares;
pub use error::ProtocolError;
pub use outbound::{DirectData, DirectSend};
use stream::{RecvState, ResetInfo, SendState, Stream};

/// Control frames that may wait to be sent before this side stops reading
/// the transport. A peer that provokes replies (resets, pongs) without
/// reading them therefore stalls itself instead of growing this queue.
pub const CONTROL_QUEUE_LIMIT: usize = 64;

/// The least a stream's send buffer may hold however many streams send at
/// once (see `Config::connection_send_buffer`).
pub const MIN_SEND_SHARE: usize = 16 * 1024;

/// Which end of the transport this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The dialer: opens odd stream ids.
    Client,
    /// The listener: opens even stream ids.
    Server,
}

impl Role {
    fn first_id(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 2,
        }
    }

    fn owns(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Client)
    }
}

/// Something the application side should react to (usually by waking a task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A stream got data, FIN or a reset.
    Readable(u32),
    /// A stream got window, buffer space, framed its FIN, or was reset.
    Writable(u32),
    /// A new inbound stream waits in the accept backlog.
    Incoming,
    /// An outbound open slot freed up.
    OpenReady,
    /// The connection started closing or closed: wake everyone.
    StateChanged,
}

/// The result of [`Session::read_chunk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadChunk {
    /// Received bytes, now consumed from the stream.
    Data(Bytes),
    /// The peer closed its write side and every byte was read.
    Eof,
    /// Nothing to read yet.
    Blocked,
}

/// The result of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were copied.
    Data(usize),
    /// The peer closed its write side and every byte was read.
    Eof,
    /// Nothing to read yet.
    Blocked,
}

/// Counters kept for [`Session::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// DATA payload bytes framed for sending.
    pub bytes_sent: u64,
    /// DATA payload bytes received.
    pub bytes_received: u64,
    /// Frames framed for sending.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Streams currently in the table.
    pub streams: usize,
    /// Inbound streams refused (limits, backlog, go-away).
    pub streams_refused: u64,
    /// Streams reset because the peer broke stream rules.
    pub peer_error_resets: u32,
}

#[derive(Debug, Clone)]
enum Lifecycle {
    Active,
    Draining { deadline: Instant },
    Closed(ConnError),
}

/// The protocol state machine of one connection.
#[derive(Debug)]
pub struct Session {
    role: Role,
    config: Config,
    peer: Option<Hello>,
    hello_sent: bool,
    lifecycle: Lifecycle,
    /// When `close()` stops waiting for streams; kept after the close.
    drain_deadline: Option<Instant>,
    go_away_received: Option<u32>,

    streams: StreamMap<Stream>,
    next_local_id: Option<u32>,
    last_remote_id: u32,
    accept_queue: VecDeque<u32>,
    live_inbound: usize,
    live_outbound: usize,
    pending_opens: usize,
    recv_budget_used: u64,

    /// Storage emptied stream queues left for the next to use.
    spares: Spares,
    control: VecDeque<Frame>,
    ctrl_queue: VecDeque<u32>,
    data_queue: VecDeque<u32>,
    owed_pong: Option<u32>,
    events: VecDeque<Event>,

    ping_outstanding: Option<(u32, Instant)>,
    ping_due: Option<Instant>,
    next_ping_opaque: u32,
    rtt: Option<Duration>,
    last_recv: Instant,

    open_deadlines: VecDeque<(Instant, u32)>,
    linger_deadlines: VecDeque<(Instant, u32)>,

    empty_frames: u32,
    reset_before_accept: u32,
    /// Inbound streams the application accepted, over the lifetime.
    accepted: u32,
    stats: Stats,
}

impl Session {
    /// Creates a session. `now` starts the keepalive clock; the HELLO and a
    /// first RTT ping are the first frames [`poll_frame`](Self::poll_frame) yields.
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        Self {
            role,
            config: config.normalized(),
            peer: None,
            hello_sent: false,
            lifecycle: Lifecycle::Active,
            drain_deadline: None,
            go_away_received: None,
            streams: StreamMap::default(),
            next_local_id: Some(role.first_id()),
            last_remote_id: 0,
            accept_queue: VecDeque::new(),
            live_inbound: 0,
            live_outbound: 0,
            pending_opens: 0,
            recv_budget_used: 0,
            spares: Spares::default(),
            control: VecDeque::new(),
            ctrl_queue: VecDeque::new(),
            data_queue: VecDeque::new(),
            owed_pong: None,
            events: VecDeque::new(),
            ping_outstanding: None,
            ping_due: Some(now),
            next_ping_opaque: 1,
            rtt: None,
            last_recv: now,
            open_deadlines: VecDeque::new(),
            linger_deadlines: VecDeque::new(),
            empty_frames: 0,
            reset_before_accept: 0,
            accepted: 0,
            stats: Stats::default(),
        }
    }

    /// The configuration in force (after clamping to protocol ranges).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's HELLO, once received.
    pub fn peer_hello(&self) -> Option<&Hello> {
        self.peer.as_ref()
    }

    /// The latest measured round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            streams: self.streams.len(),
            ..self.stats
        }
    }

    /// The largest TLV value this side accepts, for the frame decoder.
    pub fn max_frame_value(&self) -> u32 {
        crate::wire::lite::max_value_len(self.config.max_frame_payload)
    }

    /// Whether the driver should read more from the transport. It is `false`
    /// while a pong is owed (the one-slot rule) or too many control frames
    /// wait, so a peer that never reads cannot make this side queue replies.
    pub fn wants_read(&self) -> bool {
        !matches!(self.lifecycle, Lifecycle::Closed(_))
            && self.owed_pong.is_none()
            && self.control.len() < CONTROL_QUEUE_LIMIT
    }

    /// Why the connection ended, once it has.
    pub fn closed_reason(&self) -> Option<&ConnError> {
        match &self.lifecycle {
            Lifecycle::Closed(e) => Some(e),
            _ => None,
        }
    }

    /// Until when the last frames of a closed session may wait for a
    /// transport that does not take them, given that the driver first saw
    /// the session closed at `now`: the graceful close's own deadline, at
    /// once after a keepalive timeout (the peer is gone), otherwise
    /// `close_timeout` from `now`.
    pub fn flush_deadline(&self, now: Instant) -> Instant {
        if matches!(self.closed_reason(), Some(ConnError::KeepaliveTimeout)) {
            return now;
        }
        self.drain_deadline
            .or_else(|| now.checked_add(self.config.close_timeout))
            .unwrap_or(now)
    }

    /// Whether either side has said that no new streams may open (a
    /// GO_AWAY sent or received), or the connection has closed. Streams
    /// already open may still be running.
    pub fn refuses_new_streams(&self) -> bool {
        self.is_closing() || self.go_away_received.is_some()
    }

    /// Whether the connection has started closing or has closed.
    pub fn is_closing(&self) -> bool {
        !matches!(self.lifecycle, Lifecycle::Active)
    }

    /// Whether the transport may be shut down: the session is closed and
    /// every frame it still wanted to send has been pulled.
    pub fn is_done(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Closed(_))
            && self.control.is_empty()
            && self.owed_pong.is_none()
            && self.hello_sent
    }

    /// Whether [`poll_frame`](Self::poll_frame) has something to yield, so the
    /// driver need not be woken after a command that queued nothing.
    pub fn wants_transmit(&self) -> bool {
        !self.hello_sent
            || self.owed_pong.is_some()
            || !self.control.is_empty()
            || (self.peer.is_some()
                && !matches!(self.lifecycle, Lifecycle::Closed(_))
                && (!self.ctrl_queue.is_empty() || !self.data_queue.is_empty()))
    }

    /// Whether events wait in [`poll_event`](Self::poll_event).
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- application commands -------------------------------------------

    /// Opens an outbound stream. `Ok(None)` means "wait for
    /// [`Event::OpenReady`]": too many opens await ACK, or the peer's
    /// stream limit is reached.
    pub fn open(&mut self, now: Instant) -> Result<Option<u32>, ConnError> {
        self.check_can_open()?;
        let peer_limit = self.peer.map_or(usize::MAX, |h| {
            usize::try_from(h.max_inbound_streams).unwrap_or(usize::MAX)
        });
        if self.pending_opens >= self.config.max_pending_opens || self.live_outbound >= peer_limit {
            return Ok(None);
        }
        let id = self.next_local_id.ok_or(ConnError::StreamIdsExhausted)?;
        self.next_local_id = id.checked_add(2);
        let send_window = self.peer.map_or(0, |h| h.initial_window);
        let stream = Stream::new(true, send_window, self.config.initial_window);
        self.recv_budget_used = self
            .recv_budget_used
            .saturating_add(u64::from(stream.recv_window));
        self.streams.insert(id, stream);
        self.live_outbound = self.live_outbound.saturating_add(1);
        self.pending_opens = self.pending_opens.saturating_add(1);
        self.open_deadlines
            .push_back((now.checked_add(self.config.open_timeout).unwrap_or(now), id));
        self.enqueue_ctrl(id);
        tracing::trace!(stream = id, "open");
        Ok(Some(id))
    }

    fn check_can_open(&self) -> Result<(), ConnError> {
        match &self.lifecycle {
            Lifecycle::Closed(e) => return Err(e.clone()),
            Lifecycle::Draining { .. } => {
                return Err(ConnError::GoAwaySent {
                    code: go_away::NORMAL,
                })
            }
            Lifecycle::Active => {}
        }
        if let Some(code) = self.go_away_received {
            return Err(ConnError::GoAway { code });
        }
        Ok(())
    }

    /// Takes the next inbound stream from the backlog (and owes it an ACK).
    /// `Ok(None)` means "wait for [`Event::Incoming`]".
    pub fn accept(&mut self) -> Result<Option<u32>, ConnError> {
        while let Some(id) = self.accept_queue.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.flags.in_backlog = false;
            s.flags.detached = false;
            s.flags.ack_pending = true;
            self.enqueue_ctrl(id);
            self.accepted = self.accepted.saturating_add(1);
            return Ok(Some(id));
        }
        match &self.lifecycle {
            Lifecycle::Closed(e) => Err(e.clone()),
            Lifecycle::Draining { .. } => Err(ConnError::GoAwaySent {
                code: go_away::NORMAL,
            }),
            Lifecycle::Active => match self.go_away_received {
                Some(code) => Err(ConnError::GoAway { code }),
                None => Ok(None),
            },
        }
    }

    fn closed_error(&self) -> Option<StreamError> {
        match &self.lifecycle {
            Lifecycle::Closed(e) => Some(StreamError::ConnectionClosed(e.clone())),
            _ => None,
        }
    }

    /// Copies received bytes of stream `id` into `dst`.
    pub fn read(&mut self, id: u32, dst: &mut [u8]) -> Result<ReadOutcome, StreamError> {
        let mut copied = 0usize;
        loop {
            let room = dst.len().saturating_sub(copied);
            let chunk = match self.read_chunk(id, room) {
                Ok(ReadChunk::Data(chunk)) if !chunk.is_empty() => chunk,
                Ok(_) | Err(_) if copied > 0 => return Ok(ReadOutcome::Data(copied)),
                Ok(ReadChunk::Data(_)) => return Ok(ReadOutcome::Data(0)),
                Ok(ReadChunk::Eof) => return Ok(ReadOutcome::Eof),
                Ok(ReadChunk::Blocked) => return Ok(ReadOutcome::Blocked),
                Err(e) => return Err(e),
            };
            let end = copied.saturating_add(chunk.len());
            if let Some(out) = dst.get_mut(copied..end) {
                mux_core::copy::copy(out, &chunk);
            }
            copied = end;
        }
    }

    /// Takes up to `max` received bytes of stream `id` without copying
    /// them, so the caller can copy after releasing any lock. The chunk
    /// may be shorter than `max` where a received frame ends.
    pub fn read_chunk(&mut self, id: u32, max: usize) -> Result<ReadChunk, StreamError> {
        let closed = self.closed_error();
        let s = stream_in(&mut self.streams, &self.lifecycle, id)?;
        if let Some(r) = s.reset {
            return Err(r.into());
        }
        if s.flags.read_closed {
            return Err(StreamError::ReadClosed);
        }
        if max == 0 {
            return Ok(ReadChunk::Data(Bytes::new()));
        }
        if s.recv_buf.is_empty() {
            return match (s.recv, closed) {
                (RecvState::FinReceived, _) => Ok(ReadChunk::Eof),
                (_, Some(e)) => Err(e),
                _ => Ok(ReadChunk::Blocked),
            };
        }
        let chunk = s.recv_buf.take(max, &mut self.spares);
        let n32 = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        s.recv_buffered = s.recv_buffered.saturating_sub(n32);
        s.recv_consumed = s.recv_consumed.saturating_add(n32);
        self.maybe_window_update(id);
        Ok(ReadChunk::Data(chunk))
    }

    /// How many bytes a write to `id` may queue now (0: wait for
    /// [`Event::Writable`]), or why it cannot write at all.
    pub fn write_room(&mut self, id: u32) -> Result<usize, StreamError> {
        let closed = self.closed_error();
        let limit = self.send_limit();
        let s = self.stream_mut(id)?;
        if let Some(r) = s.reset {
            return Err(r.into());
        }
        if s.send != SendState::Open {
            return Err(StreamError::WriteClosed);
        }
        if let Some(e) = closed {
            return Err(e);
        }
        Ok(limit.saturating_sub(s.send_buf.len()))
    }

    /// The most a stream may hold in its send buffer now: its share of
    /// `connection_send_buffer` among the streams waiting to send, within
    /// [`MIN_SEND_SHARE`] and `send_buffer`. A stream never waits on
    /// another's bytes: with an empty buffer it always has room.
    fn send_limit(&self) -> usize {
        let max = self.config.send_buffer;
        let share = self
            .config
            .connection_send_buffer
            .checked_div(self.data_queue.len())
            .unwrap_or(max);
        share.max(MIN_SEND_SHARE.min(max)).min(max)
    }

    /// Queues bytes on stream `id`. `Ok(None)` means the send buffer is full:
    /// wait for [`Event::Writable`].
    pub fn write(&mut self, id: u32, data: &[u8]) -> Result<Option<usize>, StreamError> {
        let n = self.write_room(id)?.min(data.len());
        if n == 0 && !data.is_empty() {
            return Ok(None);
        }
        if let Some(s) = self.streams.get_mut(&id) {
            s.send_buf
                .extend_from_slice(data.get(..n).unwrap_or_default(), &mut self.spares);
        }
        self.enqueue_data(id);
        Ok(Some(n))
    }

    /// Like [`write`](Self::write), but takes ownership of the bytes so they
    /// are framed without another copy. Bytes beyond the room are dropped
    /// and not counted.
    pub fn write_chunk(&mut self, id: u32, mut chunk: Bytes) -> Result<Option<usize>, StreamError> {
        let n = self.write_room(id)?.min(chunk.len());
        if n == 0 && !chunk.is_empty() {
            return Ok(None);
        }
        chunk.truncate(n);
        if let Some(s) = self.streams.get_mut(&id) {
            s.send_buf.push(chunk, &mut self.spares);
        }
        self.enqueue_data(id);
        Ok(Some(n))
    }

    /// Whether every byte written to `id` is committed: framed, or
    /// buffered within the peer's window, so that the driver frames it
    /// without waiting for anything from the peer. `Ok(false)` means wait
    /// for [`Event::Writable`].
    ///
    /// Committed is as far as the session can promise (a framed byte may
    /// still sit in the write queue), and waiting for the framing itself
    /// would cost the writer a wakeup per flush for nothing more.
    pub fn flush(&mut self, id: u32) -> Result<bool, StreamError> {
        let closed = self.closed_error();
        let peer_known = self.peer.is_some();
        let s = self.stream_mut(id)?;
        if let Some(r) = s.reset {
            return Err(r.into());
        }
        if s.send_buf.is_empty() {
            return Ok(true);
        }
        if let Some(e) = closed {
            return Err(e);
        }
        Ok(s.send_committed(peer_known))
    }

    /// Closes the write side of `id`: FIN follows the buffered bytes.
    /// `Ok(true)` once the FIN is committed (framed, or queued behind bytes
    /// the peer's window already admits, as in [`flush`](Self::flush));
    /// `Ok(false)` means wait for [`Event::Writable`].
    pub fn close_write(&mut self, id: u32) -> Result<bool, StreamError> {
        let closed = self.closed_error();
        let peer_known = self.peer.is_some();
        let s = self.stream_mut(id)?;
        if let Some(r) = s.reset {
            return Err(r.into());
        }
        match s.send {
            SendState::FinSent => return Ok(true),
            SendState::Open => s.send = SendState::FinQueued,
            SendState::FinQueued => {}
        }
        if let Some(e) = closed {
            return Err(e);
        }
        let committed = s.send_committed(peer_known);
        self.enqueue_data(id);
        Ok(committed)
    }

    /// Closes the read side of `id`: buffered bytes are dropped (and their
    /// credit returned), later ones discarded, reads fail with `ReadClosed`.
    pub fn close_read(&mut self, id: u32) -> Result<(), StreamError> {
        let s = self.stream_mut(id)?;
        if s.flags.read_closed {
            return Ok(());
        }
        s.flags.read_closed = true;
        let dropped = std::mem::take(&mut s.recv_buffered);
        s.recv_buf.clear();
        s.recv_consumed = s.recv_consumed.saturating_add(dropped);
        self.maybe_window_update(id);
        self.events.push_back(Event::Readable(id));
        Ok(())
    }

    /// Resets `id` with `code`. A no-op on a finished or already reset stream.
    pub fn reset(&mut self, id: u32, code: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.is_finished() {
            return;
        }
        self.reset_local(id, code);
    }

    /// The application dropped its handle on `id`. Unfinished streams close
    /// both sides (written bytes still go out, then FIN) and get
    /// `close_timeout` to finish before they are reset.
    pub fn detach(&mut self, id: u32, now: Instant) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.flags.detached = true;
        if !s.is_finished() {
            if s.send == SendState::Open {
                s.send = SendState::FinQueued;
                self.enqueue_data(id);
            }
            let _ = self.close_read(id);
            let deadline = now.checked_add(self.config.close_timeout).unwrap_or(now);
            self.linger_deadlines.push_back((deadline, id));
        }
        self.after_change(id);
    }

    /// Starts a graceful close: GO_AWAY, refuse new streams, let open ones
    /// drain for at most `close_timeout`.
    pub fn close(&mut self, now: Instant) {
        if !matches!(self.lifecycle, Lifecycle::Active) {
            return;
        }
        tracing::debug!("closing: go-away sent");
        self.control.push_back(Frame::GoAway {
            code: go_away::NORMAL,
        });
        let deadline = now.checked_add(self.config.close_timeout).unwrap_or(now);
        self.lifecycle = Lifecycle::Draining { deadline };
        self.drain_deadline = Some(deadline);
        for id in std::mem::take(&mut self.accept_queue) {
            if let Some(s) = self.streams.get_mut(&id) {
                s.flags.in_backlog = false;
                self.reset_local(id, reset_code::REFUSED);
            }
        }
        self.events.push_back(Event::StateChanged);
        self.check_drained();
    }

    /// Ends the connection at once (transport failure, or hard close).
    /// Every stream fails with `err` once its buffered bytes are read.
    pub fn abort(&mut self, err: ConnError) {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return;
        }
        tracing::debug!(error = %err, "connection closed");
        self.lifecycle = Lifecycle::Closed(err);
        self.accept_queue.clear();
        self.ctrl_queue.clear();
        self.data_queue.clear();
        self.streams.retain(|_, s| {
            // Written bytes can no longer leave; received ones stay readable.
            s.send_buf.clear();
            s.flags.in_ctrl_queue = false;
            s.flags.in_data_queue = false;
            !(s.flags.detached || s.flags.in_backlog)
        });
        self.recv_budget_used = self
            .streams
            .values()
            .map(|s| u64::from(s.recv_window))
            .sum();
        self.events.push_back(Event::StateChanged);
    }

    // ----- time -------------------------------------------------------------

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match self.ping_outstanding {
            Some((_, sent)) if self.config.keepalive_interval.is_some() => {
                consider(sent.checked_add(self.config.keepalive_timeout));
            }
            Some(_) => {}
            None => consider(self.ping_due),
        }
        consider(self.open_deadlines.front().map(|d| d.0));
        consider(self.linger_deadlines.front().map(|d| d.0));
        if let Lifecycle::Draining { deadline } = self.lifecycle {
            consider(Some(deadline));
        }
        next
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return;
        }
        match self.ping_outstanding {
            Some((_, sent)) => {
                let expired = sent
                    .checked_add(self.config.keepalive_timeout)
                    .is_some_and(|t| t <= now);
                if expired && self.config.keepalive_interval.is_some() {
                    tracing::debug!("keepalive timeout");
                    // The final GO_AWAY must be the last frame: drop what
                    // waits (a GO_AWAY(0) of a close in the same turn, say).
                    self.control.clear();
                    self.owed_pong = None;
                    self.control.push_back(Frame::GoAway {
                        code: go_away::KEEPALIVE_TIMEOUT,
                    });
                    self.abort(ConnError::KeepaliveTimeout);
                    return;
                }
            }
            None => {
                if self.ping_due.is_some_and(|t| t <= now) {
                    let opaque = self.next_ping_opaque;
                    self.next_ping_opaque = opaque.wrapping_add(1);
                    self.control.push_back(Frame::Ping { ack: false, opaque });
                    self.ping_outstanding = Some((opaque, now));
                    self.ping_due = None;
                }
            }
        }
        while let Some(&(at, id)) = self.open_deadlines.front() {
            if at > now {
                break;
            }
            self.open_deadlines.pop_front();
            if let Some(s) = self.streams.get(&id) {
                if !s.flags.acked && s.reset.is_none() {
                    tracing::debug!(stream = id, "open timeout");
                    self.reset_local(id, reset_code::OPEN_TIMEOUT);
                }
            }
        }
        while let Some(&(at, id)) = self.linger_deadlines.front() {
            if at > now {
                break;
            }
            self.linger_deadlines.pop_front();
            if self.streams.get(&id).is_some_and(|s| !s.is_finished()) {
                self.reset_local(id, reset_code::CLOSE_TIMEOUT);
            }
        }
        if let Lifecycle::Draining { deadline } = self.lifecycle {
            if deadline <= now {
                let ids: Vec<u32> = self.streams.keys().copied().collect();
                for id in ids {
                    self.reset(id, reset_code::CLOSE_TIMEOUT);
                }
                self.finish_close();
            }
        }
    }

    // ----- internals shared by inbound/outbound ------------------------------

    fn stream_mut(&mut self, id: u32) -> Result<&mut Stream, StreamError> {
        stream_in(&mut self.streams, &self.lifecycle, id)
    }

    fn enqueue_ctrl(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.flags.in_ctrl_queue && s.needs_ctrl() {
                s.flags.in_ctrl_queue = true;
                self.ctrl_queue.push_back(id);
            }
        }
    }

    fn enqueue_data(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.flags.in_data_queue && s.can_send() {
                s.flags.in_data_queue = true;
                self.data_queue.push_back(id);
            }
        }
    }

    /// Owes the peer a window update once half the window was consumed.
    fn maybe_window_update(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            let half = s.recv_window / 2;
            if s.recv == RecvState::Open
                && s.reset.is_none()
                && s.recv_consumed > 0
                && s.recv_consumed >= half
            {
                s.flags.window_pending = true;
                self.enqueue_ctrl(id);
            }
        }
    }

    fn reset_local(&mut self, id: u32, code: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset.is_some() {
            return;
        }
        s.reset = Some(ResetInfo {
            code,
            remote: false,
        });
        s.clear_buffers();
        // A stream whose SYN never left is unknown to the peer; a RESET for
        // it would be a protocol error there, so it just vanishes here.
        let peer_knows = !std::mem::take(&mut s.flags.syn_pending);
        s.flags.ack_pending = false;
        s.flags.window_pending = false;
        // After the session ended nothing more may go out: the final
        // GO_AWAY (or EOF) already told the peer every stream is gone.
        let closed = matches!(self.lifecycle, Lifecycle::Closed(_));
        if peer_knows && !closed {
            self.control.push_back(Frame::Reset { id, code });
        }
        self.events.push_back(Event::Readable(id));
        self.events.push_back(Event::Writable(id));
        self.after_change(id);
    }

    /// Bookkeeping after any change to stream `id`: release counts of
    /// streams that finished, drop streams nobody needs any more.
    fn after_change(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let finished = s.is_finished();
        if s.flags.outbound && !s.flags.acked && (finished || s.reset.is_some()) {
            // Count it as answered so a dead open frees its slot.
            s.flags.acked = true;
            self.pending_opens = self.pending_opens.saturating_sub(1);
            self.events.push_back(Event::OpenReady);
        }
        // Stream limits count unfinished streams, so a handle the
        // application keeps after both FINs does not hold a slot.
        let release = finished && s.flags.live;
        let outbound = s.flags.outbound;
        if release {
            s.flags.live = false;
        }
        let reclaim = s.is_reclaimable();
        if release {
            if outbound {
                self.live_outbound = self.live_outbound.saturating_sub(1);
            } else {
                self.live_inbound = self.live_inbound.saturating_sub(1);
            }
            self.events.push_back(Event::OpenReady);
        }
        if reclaim {
            if let Some(s) = self.streams.remove(&id) {
                self.recv_budget_used = self
                    .recv_budget_used
                    .saturating_sub(u64::from(s.recv_window));
            }
        }
        self.check_drained();
    }

    fn check_drained(&mut self) {
        if matches!(self.lifecycle, Lifecycle::Draining { .. })
            && self.streams.values().all(|s| s.is_finished())
        {
            self.finish_close();
        }
    }

    fn finish_close(&mut self) {
        self.abort(ConnError::Closed);
    }

    /// Gives back storage kept for reuse: spare queue buffers, and the
    /// capacity that the session's queues grew to in a burst (a few hundred
    /// streams opened at once leave kilobytes of it). For a connection that
    /// has gone quiet; the driver calls it after the read buffer's idle
    /// spell, and busy connections keep reusing the storage instead.
    pub fn release_idle_storage(&mut self) {
        self.spares.clear();
        // Sized for the most streams ever open at once otherwise.
        self.streams.shrink_to(0);
        shrink_deque(&mut self.accept_queue);
        shrink_deque(&mut self.control);
        shrink_deque(&mut self.ctrl_queue);
        shrink_deque(&mut self.data_queue);
        shrink_deque(&mut self.events);
        shrink_deque(&mut self.open_deadlines);
        shrink_deque(&mut self.linger_deadlines);
    }

    /// Checks the session's invariants; fuzzers and simulations call this
    /// after every step. Returns a description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.accept_queue.len() > self.config.accept_backlog {
            return Err("accept backlog over its limit".into());
        }
        if self.live_inbound > self.config.max_inbound_streams {
            return Err("inbound streams over the limit".into());
        }
        if self.pending_opens > self.config.max_pending_opens {
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
            if s.reset.is_some() && (!s.send_buf.is_empty() || s.recv_buffered != 0) {
                return Err(format!("stream {id}: reset stream still buffers data"));
            }
        }
        Self::check_queue("data", &self.data_queue, &self.streams, |s| {
            s.flags.in_data_queue
        })?;
        Self::check_queue("control", &self.ctrl_queue, &self.streams, |s| {
            s.flags.in_ctrl_queue
        })
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

/// Stream `id` of `streams`, or the error a handle of a stream that is gone
/// gets. The error is built only on a miss: this runs on every read and
/// write.
fn stream_in<'a>(
    streams: &'a mut StreamMap<Stream>,
    lifecycle: &Lifecycle,
    id: u32,
) -> Result<&'a mut Stream, StreamError> {
    streams.get_mut(&id).ok_or_else(|| {
        let err = match lifecycle {
            Lifecycle::Closed(e) => e.clone(),
            _ => ConnError::Closed,
        };
        StreamError::ConnectionClosed(err)
    })
}

/// Entries a queue keeps room for after [`Session::release_idle_storage`].
const IDLE_QUEUE_ROOM: usize = 8;

fn shrink_deque<T>(q: &mut VecDeque<T>) {
    q.shrink_to(q.len().max(IDLE_QUEUE_ROOM));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_never_wrap_and_exhaustion_is_a_typed_error() {
        let now = Instant::now();
        let mut session = Session::new(Role::Client, Config::default(), now);
        session.next_local_id = Some(u32::MAX);
        assert_eq!(session.open(now).unwrap(), Some(u32::MAX));
        assert!(matches!(
            session.open(now),
            Err(ConnError::StreamIdsExhausted)
        ));
        // Ids past the last one are "gone", not "never opened", so late
        // frames for them are discarded rather than fatal.
        assert!(session.is_past_stream(u32::MAX));
    }

    #[test]
    fn server_ids_are_even_and_client_ids_odd() {
        let now = Instant::now();
        let mut client = Session::new(Role::Client, Config::default(), now);
        let mut server = Session::new(Role::Server, Config::default(), now);
        assert_eq!(client.open(now).unwrap(), Some(1));
        assert_eq!(client.open(now).unwrap(), Some(3));
        assert_eq!(server.open(now).unwrap(), Some(2));
        assert_eq!(server.open(now).unwrap(), Some(4));
    }
}
