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
//! This file holds the [`Session`] itself, its queries and the bookkeeping
//! the submodules share. The rest, by what drives it:
//! - `commands`: what the application asks (open, accept, read, write,
//!   flush, close a side, reset, detach);
//! - `inbound`: what each received frame does;
//! - `outbound`: what goes on the wire next, in priority order;
//! - `shutdown`: the graceful close, the abort, and the timers;
//! - `stream`: per-stream state, its transitions and flow control;
//!   `counts`: the connection's stream counts and receive budget; `chunks`:
//!   the byte queues; `error`: peer faults ([`ProtocolError`]); `invariants`: what fuzzers
//!   check.

mod chunks;
mod commands;
mod counts;
mod error;
mod inbound;
mod invariants;
mod outbound;
mod rtt;
mod seen_ids;
mod shutdown;
mod stream;

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mux_core::{ConnError, StreamError, StreamId};

use crate::config::{Config, Wire, DEFAULT_INITIAL_WINDOW};
use crate::frame::{Frame, Hello};
use crate::StreamMap;
use chunks::Spares;
use counts::StreamCounts;
pub use error::ProtocolError;
use rtt::RttEstimator;
use seen_ids::SeenIds;
use stream::Stream;

/// Control frames that may wait to be sent before this side stops reading
/// the transport. A peer that provokes replies (resets, pongs) without
/// reading them therefore stalls itself instead of growing this queue.
pub const CONTROL_QUEUE_LIMIT: usize = 64;

/// The least a stream's send buffer may hold however many streams send at
/// once (see `Config::connection_send_buffer`).
pub const MIN_SEND_SHARE: usize = 16 * 1024;

/// How often a ping measures the round-trip time while DATA flows
/// (docs/PROTOCOL.md §3.5), so that the RTT behind window auto-tuning
/// follows the path. One ping at most is outstanding, keepalive or not.
pub const RTT_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How recent the last DATA must be for a due RTT probe to go out: one
/// that finds the connection quiet waits for the next DATA instead, so a
/// connection that fell quiet is not woken.
const RTT_PROBE_RECENT: Duration = Duration::from_millis(500);

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
    Readable(StreamId),
    /// A stream got window, buffer space, framed its FIN, or was reset.
    Writable(StreamId),
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
    /// The smoothed round-trip time (as TCP's SRTT), once a ping was
    /// answered; the same as [`Session::rtt`].
    pub rtt: Option<Duration>,
    /// The mean deviation of the RTT samples (as TCP's RTTVAR).
    pub rtt_variation: Option<Duration>,
    /// The least RTT sample of the last ten seconds or so: the path's
    /// delay without queueing, which window auto-tuning uses.
    pub min_rtt: Option<Duration>,
    /// Pings answered, each one RTT sample.
    pub rtt_samples: u64,
    /// The sum of the receive windows of the streams in the table: the
    /// most the peer may make this side buffer now, which
    /// `connection_receive_budget` bounds (streams this side opens may
    /// take it past the budget; see there).
    pub receive_windows: u64,
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
    /// When a shutdown stops waiting for streams; kept after the close.
    drain_deadline: Option<Instant>,
    /// Streams not finished when the session closed (cut by the close).
    streams_cut: Option<usize>,
    go_away_received: Option<u32>,
    /// This side queued its GO_AWAY (at most one goes out).
    go_away_sent: bool,

    streams: StreamMap<Stream>,
    next_local_id: Option<u32>,
    last_remote_id: u32,
    /// The peer's ids opened out of order (yamux wire only).
    seen_ids: SeenIds,
    accept_queue: VecDeque<u32>,
    counts: StreamCounts,

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
    /// When the next ping that measures the RTT under traffic may go;
    /// `None` while a ping is outstanding, or while the connection is
    /// quiet (the next DATA arms it).
    rtt_probe_due: Option<Instant>,
    /// When DATA was last received, or framed in [`Session::poll_frame`].
    last_data: Option<Instant>,
    rtt: RttEstimator,
    last_recv: Instant,

    open_deadlines: VecDeque<(Instant, u32)>,
    detached_deadlines: VecDeque<(Instant, u32)>,

    empty_frames: u32,
    reset_before_accept: u32,
    /// Inbound streams the application accepted, over the lifetime.
    accepted: u32,
    stats: Stats,
}

impl Session {
    /// Creates a session. `now` starts the keepalive clock; the HELLO and a
    /// first RTT ping are the first frames [`poll_frame`](Self::poll_frame)
    /// yields. On the yamux wire there is no HELLO: the session starts as
    /// if it had sent one and received [`YAMUX_PEER`].
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        let config = config.normalized();
        let yamux = config.wire == Wire::Yamux;
        Self {
            role,
            config,
            peer: yamux.then_some(YAMUX_PEER),
            hello_sent: yamux,
            lifecycle: Lifecycle::Active,
            drain_deadline: None,
            streams_cut: None,
            go_away_received: None,
            go_away_sent: false,
            streams: StreamMap::default(),
            next_local_id: Some(role.first_id()),
            last_remote_id: 0,
            seen_ids: SeenIds::default(),
            accept_queue: VecDeque::new(),
            counts: StreamCounts::default(),
            spares: Spares::default(),
            control: VecDeque::new(),
            ctrl_queue: VecDeque::new(),
            data_queue: VecDeque::new(),
            owed_pong: None,
            events: VecDeque::new(),
            ping_outstanding: None,
            ping_due: Some(now),
            next_ping_opaque: 1,
            rtt_probe_due: None,
            last_data: None,
            rtt: RttEstimator::default(),
            last_recv: now,
            open_deadlines: VecDeque::new(),
            detached_deadlines: VecDeque::new(),
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

    /// The smoothed round-trip time, from every ping answered: the
    /// handshake's, keepalive pings and the pings that measure it while
    /// DATA flows.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            streams: self.streams.len(),
            rtt: self.rtt.smoothed(),
            rtt_variation: self.rtt.variation(),
            min_rtt: self.rtt.min(),
            rtt_samples: self.rtt.samples(),
            receive_windows: self.counts.recv_budget_used(),
            ..self.stats
        }
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

    /// How many streams had not finished when the session closed: `None`
    /// while it runs, `Some(0)` when every stream finished first.
    pub fn streams_cut(&self) -> Option<usize> {
        self.streams_cut
    }

    /// Until when the last frames of a closed session may wait for a
    /// transport that does not take them, given that the driver first saw
    /// the session closed at `now`: at once after a keepalive timeout (the
    /// peer is gone), otherwise `close_flush_timeout` from `now`, or what
    /// is left of a shutdown's deadline if that is later.
    pub fn flush_deadline(&self, now: Instant) -> Instant {
        if matches!(self.closed_reason(), Some(ConnError::KeepaliveTimeout)) {
            return now;
        }
        let floor = now
            .checked_add(self.config.close_flush_timeout)
            .unwrap_or(now);
        self.drain_deadline.map_or(floor, |d| d.max(floor))
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

    // ----- bookkeeping shared by the submodules -----------------------------

    /// DATA was received or framed at `now`: arms the RTT probe of a
    /// connection that was quiet.
    fn on_data_at(&mut self, now: Instant) {
        self.last_data = Some(now);
        if self.rtt_probe_due.is_none() && self.ping_outstanding.is_none() {
            self.rtt_probe_due = now.checked_add(RTT_PROBE_INTERVAL);
        }
    }

    /// The part of a new stream's receive window the peer knows without
    /// being told: on the yamux wire the 256 KiB every peer assumes (the
    /// rest goes out with the stream's SYN or ACK), otherwise all of it,
    /// announced in our HELLO.
    fn advertised_window(&self) -> u32 {
        match self.config.wire {
            Wire::Lite => self.config.initial_window,
            Wire::Yamux => self.config.initial_window.min(DEFAULT_INITIAL_WINDOW),
        }
    }

    /// Queues this side's GO_AWAY(`code`), unless one was queued already.
    fn send_go_away(&mut self, code: u32) {
        if !std::mem::replace(&mut self.go_away_sent, true) {
            self.control.push_back(Frame::GoAway { code });
        }
    }

    fn stream_mut(&mut self, id: u32) -> Result<&mut Stream, StreamError> {
        stream_in(&mut self.streams, &self.lifecycle, id)
    }

    fn enqueue_ctrl(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            queue_ctrl(&mut self.ctrl_queue, id, s);
        }
    }

    /// After bytes of `s`, stream `id`, were consumed: owes the peer a
    /// window update once half the window was ([`Stream::on_consumed`]),
    /// queueing the stream for its control turn. It takes the stream, not
    /// its id, so a read or a received frame costs no second lookup.
    fn maybe_window_update(ctrl_queue: &mut VecDeque<u32>, id: u32, s: &mut Stream) {
        if s.on_consumed() {
            queue_ctrl(ctrl_queue, id, s);
        }
    }

    /// Resets stream `id` from this side ([`Stream::on_local_reset`]):
    /// RESET(`code`) goes out if the peer knows the stream, and both
    /// directions' tasks wake.
    fn reset_local(&mut self, id: u32, code: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(peer_knows) = s.on_local_reset(code) else {
            return;
        };
        // After the session ended nothing more may go out: the final
        // GO_AWAY (or EOF) already told the peer every stream is gone.
        let closed = matches!(self.lifecycle, Lifecycle::Closed(_));
        if peer_knows && !closed {
            self.control.push_back(Frame::Reset { id, code });
        }
        self.events.push_back(Event::Readable(StreamId(id)));
        self.events.push_back(Event::Writable(StreamId(id)));
        self.after_change(id);
    }

    /// Bookkeeping after any change to stream `id`: reset a stream its
    /// peer keeps sending to after it was dropped, release counts of
    /// streams that ended, drop streams nobody needs any more.
    fn after_change(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.is_abandoned() {
            tracing::debug!(stream = id, "peer keeps sending to a dropped stream");
            self.reset_local(id, crate::frame::reset_code::DROPPED);
            return; // reset_local did the bookkeeping
        }
        if s.on_open_ended() {
            // A dead open frees its pending slot.
            self.counts.on_open_answered();
            self.events.push_back(Event::OpenReady);
        }
        // Stream limits count unfinished streams, so a handle the
        // application keeps after both FINs does not hold a slot.
        if let Some(outbound) = s.on_finished() {
            self.counts.on_finished(outbound);
            self.events.push_back(Event::OpenReady);
        }
        if s.is_reclaimable() {
            if let Some(s) = self.streams.remove(&id) {
                self.counts.on_removed(s.recv_window());
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
        // On the yamux wire a shutdown's GO_AWAY goes out only now (see
        // `shutdown`); elsewhere it went out when the shutdown began.
        self.send_go_away(crate::frame::go_away::NORMAL);
        self.abort(ConnError::Closed);
    }

    /// Gives back storage kept for reuse: spare queue buffers, and the
    /// capacity that the session's queues grew to in a burst (a few hundred
    /// streams opened at once leave kilobytes of it). For a connection that
    /// has gone quiet; the driver calls it after the read buffer's idle
    /// spell, and busy connections keep reusing the storage instead.
    pub(crate) fn release_idle_storage(&mut self) {
        // The driver lets go of its read blocks now; unread slices would
        // keep them alive whole.
        self.copy_out_received();
        self.spares.clear();
        // Sized for the most streams ever open at once otherwise.
        self.streams.shrink_to(0);
        shrink_deque(&mut self.accept_queue);
        shrink_deque(&mut self.control);
        shrink_deque(&mut self.ctrl_queue);
        shrink_deque(&mut self.data_queue);
        shrink_deque(&mut self.events);
        shrink_deque(&mut self.open_deadlines);
        shrink_deque(&mut self.detached_deadlines);
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

/// Puts `s`, stream `id`, in the control queue if it owes a control frame
/// and is not there yet.
fn queue_ctrl(queue: &mut VecDeque<u32>, id: u32, s: &mut Stream) {
    if s.enter_ctrl_queue() {
        queue.push_back(id);
    }
}

/// Puts `s`, stream `id`, in the data queue if it can send and is not
/// there yet.
fn queue_data(queue: &mut VecDeque<u32>, id: u32, s: &mut Stream) {
    if s.enter_data_queue() {
        queue.push_back(id);
    }
}

/// What a yamux peer is taken to have announced, as it sends no HELLO:
/// the 256 KiB window every yamux implementation starts streams with, the
/// 64 KiB frames go-yamux splits at (rust-yamux refuses bodies over 1 MiB),
/// and 256 concurrent streams from this side. rust-yamux ends the whole
/// connection past 512 streams of both sides together, so this side stays
/// at half of that.
pub const YAMUX_PEER: Hello = Hello {
    version: Hello::VERSION,
    initial_window: DEFAULT_INITIAL_WINDOW,
    max_frame_payload: 64 * 1024,
    max_inbound_streams: 256,
};

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
        assert_eq!(session.open(now).unwrap(), Some(StreamId(u32::MAX)));
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
        assert_eq!(client.open(now).unwrap(), Some(StreamId(1)));
        assert_eq!(client.open(now).unwrap(), Some(StreamId(3)));
        assert_eq!(server.open(now).unwrap(), Some(StreamId(2)));
        assert_eq!(server.open(now).unwrap(), Some(StreamId(4)));
    }
}
