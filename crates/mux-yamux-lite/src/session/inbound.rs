//! What each received frame does. Peer faults that break the connection
//! return a [`ProtocolError`]; faults confined to one stream reset it.

use bytes::Bytes;
use std::time::Instant;

use super::stream::{PeerFault, Stream};
use super::{queue_data, Event, Lifecycle, ProtocolError, Session};
use crate::config::{Wire, MAX_WINDOW};
use crate::frame::{go_away, reset_code, Flags, Frame, Hello};
use mux_core::{ConnError, StreamId};

impl Session {
    /// Feeds one decoded frame from the peer.
    pub fn handle_frame(&mut self, frame: Frame, now: Instant) {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return;
        }
        self.stats.frames_received = self.stats.frames_received.saturating_add(1);
        self.last_recv = now;
        if self.ping_outstanding.is_none() && self.rtt.smoothed().is_some() {
            // Any traffic proves liveness, so the next keepalive waits
            // (but never the handshake RTT ping, which is still due).
            self.ping_due = self
                .config
                .keepalive_interval
                .and_then(|i| now.checked_add(i));
        }
        if let Err(e) = self.dispatch(frame, now) {
            self.fail(e);
        }
    }

    /// Ends the connection because the peer broke the protocol: GO_AWAY
    /// (protocol error) goes out ahead of everything else.
    pub fn fail(&mut self, err: ProtocolError) {
        if matches!(self.lifecycle, Lifecycle::Closed(_)) {
            return;
        }
        tracing::warn!(error = %err, "peer violated the protocol");
        self.control.clear();
        self.owed_pong = None;
        self.go_away_sent = true;
        self.control.push_back(Frame::GoAway {
            code: go_away::PROTOCOL_ERROR,
        });
        self.abort(ConnError::protocol(err));
    }

    /// The transport ended (`None`: clean EOF) or failed. After the
    /// peer's GO_AWAY either is the end it announced, so the reason is
    /// the GO_AWAY and its code.
    pub fn transport_closed(&mut self, err: Option<std::io::Error>) {
        let reason = match (err, self.go_away_received, &self.lifecycle) {
            (_, Some(code), _) => ConnError::GoAway { code },
            (Some(e), None, _) => ConnError::io(e),
            (None, None, Lifecycle::Draining { .. }) => ConnError::Closed,
            (None, None, _) => ConnError::io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "transport closed by the peer",
            )),
        };
        self.control.clear();
        self.owed_pong = None;
        self.abort(reason);
    }

    fn dispatch(&mut self, frame: Frame, now: Instant) -> Result<(), ProtocolError> {
        let Some(_) = self.peer else {
            return match frame {
                Frame::Hello(h) => self.on_hello(h),
                _ => Err(ProtocolError::MissingHello),
            };
        };
        match frame {
            Frame::Hello(_) => Err(ProtocolError::DuplicateHello),
            Frame::Data { id, flags, payload } => {
                let len = payload.len();
                // yamux negotiates no frame size: the stream's credit,
                // checked below, is the bound there.
                let max = match self.config.wire {
                    Wire::Lite => self.config.max_frame_payload,
                    Wire::Yamux => MAX_WINDOW,
                };
                if len > usize::try_from(max).unwrap_or(usize::MAX) {
                    return Err(ProtocolError::PayloadTooLarge {
                        len,
                        max: self.config.max_frame_payload,
                    });
                }
                self.stats.bytes_received = self
                    .stats
                    .bytes_received
                    .saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
                if len == 0 && flags == Flags::NONE {
                    self.count_empty()?;
                }
                self.on_data_at(now);
                self.on_stream_frame(id, flags, Some(payload), 0, now)
            }
            Frame::Window { id, flags, delta } => {
                if delta == 0 && flags == Flags::NONE {
                    self.count_empty()?;
                }
                self.on_stream_frame(id, flags, None, delta, now)
            }
            Frame::Reset { id, code } => self.on_reset(id, code),
            Frame::Ping { ack: false, opaque } => {
                // One slot: `wants_read` is false until this pong is sent,
                // so a second request cannot arrive before then.
                self.owed_pong = Some(opaque);
                Ok(())
            }
            Frame::Ping { ack: true, opaque } => {
                if let Some((expected, sent)) = self.ping_outstanding {
                    if expected == opaque {
                        self.rtt.on_sample(now.saturating_duration_since(sent), now);
                        self.ping_outstanding = None;
                        self.rtt_probe_due = now.checked_add(super::RTT_PROBE_INTERVAL);
                        self.ping_due = self
                            .config
                            .keepalive_interval
                            .and_then(|i| now.checked_add(i));
                    }
                }
                Ok(())
            }
            Frame::GoAway { code } => {
                tracing::debug!(code, "peer sent go-away");
                if self.go_away_received.is_none() {
                    self.go_away_received = Some(code);
                    self.events.push_back(Event::StateChanged);
                }
                Ok(())
            }
        }
    }

    fn count_empty(&mut self) -> Result<(), ProtocolError> {
        self.empty_frames = self.empty_frames.saturating_add(1);
        if self.empty_frames > self.config.max_empty_frames {
            return Err(ProtocolError::TooManyEmptyFrames);
        }
        Ok(())
    }

    fn on_hello(&mut self, h: Hello) -> Result<(), ProtocolError> {
        if h.version != Hello::VERSION {
            return Err(ProtocolError::UnsupportedVersion(h.version));
        }
        if h.initial_window > MAX_WINDOW {
            return Err(ProtocolError::BadHello("initial window above 2^31-1"));
        }
        if h.max_frame_payload == 0 {
            return Err(ProtocolError::BadHello("max frame payload of 0"));
        }
        tracing::debug!(?h, "peer hello");
        self.peer = Some(h);
        // Streams opened before the HELLO arrived could not send yet; now
        // they know their window.
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            if let Some(s) = self.streams.get_mut(&id) {
                s.on_peer_hello(h.initial_window);
                queue_data(&mut self.data_queue, id, s);
            }
        }
        self.events.push_back(Event::OpenReady);
        Ok(())
    }

    /// Unread received bytes, over all streams, kept as slices of the
    /// buffers they were decoded from (each keeps its whole buffer alive).
    pub(crate) fn received_by_reference(&self) -> u64 {
        self.streams
            .values()
            .map(|s| u64::try_from(s.received_by_reference()).unwrap_or(u64::MAX))
            .fold(0, u64::saturating_add)
    }

    /// Copies every unread received byte kept as a slice into storage of
    /// its own, so that the buffers the slices kept alive can be freed.
    pub(crate) fn copy_out_received(&mut self) {
        for s in self.streams.values_mut() {
            s.copy_out_received();
        }
    }

    /// Whether `id` belonged to a stream that existed and is gone, as
    /// opposed to one that was never opened.
    pub(super) fn is_past_stream(&self, id: u32) -> bool {
        if self.role.owns(id) {
            self.next_local_id.is_none_or(|next| id < next)
        } else {
            id <= self.last_remote_id
        }
    }

    /// Registers a stream the peer opens. `Ok(false)`: refused with RESET.
    fn on_syn(&mut self, id: u32) -> Result<bool, ProtocolError> {
        if self.role.owns(id) {
            return Err(ProtocolError::WrongParity(id));
        }
        // yamux peers may open lazily (the SYN rides the first frame), so
        // their SYNs can arrive out of id order.
        let fresh = match self.config.wire {
            Wire::Lite => id > self.last_remote_id,
            Wire::Yamux => self.seen_ids.insert(id),
        };
        if !fresh {
            return Err(ProtocolError::StreamIdReused(id));
        }
        self.last_remote_id = self.last_remote_id.max(id);
        let refuse = !matches!(self.lifecycle, Lifecycle::Active)
            || self.go_away_received.is_some()
            || self.counts.inbound_full(&self.config)
            || self.accept_queue.len() >= self.config.accept_backlog
            || self.counts.budget_left(&self.config) < u64::from(self.config.initial_window);
        if refuse {
            tracing::debug!(stream = id, "refusing inbound stream");
            self.stats.streams_refused = self.stats.streams_refused.saturating_add(1);
            self.control.push_back(Frame::Reset {
                id,
                code: reset_code::REFUSED,
            });
            return Ok(false);
        }
        let send_window = self.peer.map_or(0, |h| h.initial_window);
        let stream = Stream::on_syn(
            send_window,
            self.config.initial_window,
            self.advertised_window(),
        );
        self.counts.on_incoming(stream.recv_window());
        self.streams.insert(id, stream);
        self.accept_queue.push_back(id);
        self.events.push_back(Event::Incoming);
        Ok(true)
    }

    fn on_stream_frame(
        &mut self,
        id: u32,
        flags: Flags,
        payload: Option<Bytes>,
        delta: u32,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if id == 0 {
            return Err(ProtocolError::StreamIdZero);
        }
        if flags.contains(Flags::SYN) && !self.on_syn(id)? {
            return Ok(());
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return self.on_unknown_stream(id);
        };
        if flags.contains(Flags::ACK) {
            match s.on_ack() {
                Ok(true) => {
                    self.counts.on_open_answered();
                    self.events.push_back(Event::OpenReady);
                }
                Ok(false) => {}
                Err(fault) => return self.on_peer_fault(id, fault),
            }
        }
        if s.is_reset() {
            // Reset here, the peer has not seen it yet: drop silently.
            self.after_change(id);
            return Ok(());
        }
        if let Some(payload) = payload.filter(|p| !p.is_empty()) {
            s.on_data_arrival(now);
            match s.on_data_received(payload, &mut self.spares) {
                Ok(true) => self.events.push_back(Event::Readable(StreamId(id))),
                // Discarded; the credit goes back only while a handle
                // exists (`Stream::on_consumed`).
                Ok(false) => Self::maybe_window_update(&mut self.ctrl_queue, id, s),
                Err(fault) => return self.on_peer_fault(id, fault),
            }
        }
        if delta > 0 {
            match s.on_window_update(delta) {
                // A writer may be waiting on the empty window.
                Ok(true) => self.events.push_back(Event::Writable(StreamId(id))),
                Ok(false) => {}
                Err(fault) => return self.on_peer_fault(id, fault),
            }
            queue_data(&mut self.data_queue, id, s);
        }
        if flags.contains(Flags::FIN) {
            if let Err(fault) = s.on_fin_received() {
                return self.on_peer_fault(id, fault);
            }
            self.events.push_back(Event::Readable(StreamId(id)));
        }
        self.after_change(id);
        Ok(())
    }

    /// Whether a DATA frame of `len` payload bytes for stream `id`, too
    /// long for a read block (the yamux wire admits DATA as large as the
    /// stream's credit), may be buffered. Decided from its header, before
    /// the payload is read: a stream without that much credit fails the
    /// connection at once. A fresh id of the peer's may be a SYN riding on
    /// this frame, so it gets the credit a new stream starts with. One for
    /// a stream that is gone is read and discarded; the driver buffers one
    /// such frame at a time, at most `max_window` long.
    pub(crate) fn admit_large_data(&mut self, id: u32, len: usize) -> bool {
        let fresh = !self.role.owns(id) && id > self.last_remote_id;
        let verdict = match self.streams.get(&id) {
            Some(s) => s
                .admits(len)
                .map_err(|credit| ProtocolError::WindowExceeded { id, len, credit }),
            None if fresh => {
                let credit = self.config.initial_window;
                match u32::try_from(len) {
                    Ok(n) if n <= credit => Ok(()),
                    _ => Err(ProtocolError::WindowExceeded { id, len, credit }),
                }
            }
            None if id != 0 && self.is_past_stream(id) => Ok(()),
            None => Err(ProtocolError::UnknownStream(id)),
        };
        match verdict {
            Ok(()) => true,
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// A frame for stream `id`, which is not in the table. A late frame for
    /// a stream that is gone is discarded. One for an id never opened is
    /// fatal on the lite wire; yamux peers drain such frames silently and
    /// expect the same, so on the yamux wire it is discarded too, counted
    /// against `max_empty_frames` like any frame that carries nothing.
    fn on_unknown_stream(&mut self, id: u32) -> Result<(), ProtocolError> {
        if self.is_past_stream(id) {
            return Ok(());
        }
        if self.config.wire == Wire::Yamux {
            tracing::trace!(stream = id, "frame for a stream never opened: discarded");
            return self
                .count_empty()
                .map_err(|_| ProtocolError::UnknownStream(id));
        }
        Err(ProtocolError::UnknownStream(id))
    }

    /// What a peer's breach of a stream rule costs: the connection, or
    /// (for DATA or FIN after its FIN) the stream alone; a repeated FIN on
    /// the yamux wire costs nothing but a place in the empty-frame budget.
    fn on_peer_fault(&mut self, id: u32, fault: PeerFault) -> Result<(), ProtocolError> {
        match fault {
            PeerFault::UnexpectedAck => Err(ProtocolError::UnexpectedAck(id)),
            PeerFault::WindowExceeded { len, credit } => {
                Err(ProtocolError::WindowExceeded { id, len, credit })
            }
            PeerFault::WindowOverflow => Err(ProtocolError::WindowOverflow(id)),
            PeerFault::DataAfterFin => self.peer_stream_fault(id, "DATA after FIN"),
            // rust-yamux sends FIN again each time its stream is closed
            // again (libp2p's request-response closes twice), so on the
            // yamux wire a repeated FIN means nothing; it still counts as a
            // frame that carries nothing, so a flood of them ends.
            PeerFault::SecondFin if self.config.wire == Wire::Yamux => self.count_empty(),
            PeerFault::SecondFin => self.peer_stream_fault(id, "second FIN"),
        }
    }

    /// The peer broke a rule of one stream: reset that stream only, unless
    /// it keeps doing so.
    fn peer_stream_fault(&mut self, id: u32, what: &'static str) -> Result<(), ProtocolError> {
        tracing::debug!(stream = id, what, "stream error caused by peer");
        self.stats.peer_error_resets = self.stats.peer_error_resets.saturating_add(1);
        if self.stats.peer_error_resets > self.config.max_peer_error_resets {
            return Err(ProtocolError::TooManyResets);
        }
        self.reset_local(id, reset_code::STREAM_CLOSED);
        Ok(())
    }

    fn on_reset(&mut self, id: u32, code: u32) -> Result<(), ProtocolError> {
        if id == 0 {
            return Err(ProtocolError::StreamIdZero);
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return self.on_unknown_stream(id);
        };
        let Some(in_backlog) = s.on_reset_received(code) else {
            return Ok(());
        };
        tracing::trace!(stream = id, code, "reset by peer");
        if in_backlog {
            // Opened and reset before the application saw it: the Rapid
            // Reset pattern. Free it now, and count it.
            self.accept_queue.retain(|&q| q != id);
            self.reset_before_accept = self.reset_before_accept.saturating_add(1);
            // A client cancelling requests before they were accepted is
            // normal, and over a long connection adds up past any fixed
            // count; a flood gets (almost) nothing accepted. So the limit
            // applies while such resets also outnumber accepted streams:
            // each cheap reset stream then comes with a real one.
            if self.reset_before_accept > self.config.max_reset_before_accept
                && self.reset_before_accept > self.accepted
            {
                return Err(ProtocolError::TooManyResets);
            }
        }
        self.events.push_back(Event::Readable(StreamId(id)));
        self.events.push_back(Event::Writable(StreamId(id)));
        self.after_change(id);
        Ok(())
    }
}
