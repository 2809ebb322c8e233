//! Every limit and timeout of a connection, with its default.
//!
//! Each limit bounds something a peer could otherwise grow; the table in
//! docs/RELIABILITY.md says what each protects against.

use std::time::Duration;

/// The largest window the protocol allows (as in HTTP/2).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// The window every stream starts with unless configured otherwise (256 KiB).
pub const DEFAULT_INITIAL_WINDOW: u32 = 256 * 1024;

/// The byte layout a connection speaks. Both carry the same semantics
/// through the same session; docs/PROTOCOL.md says how each rule looks in
/// each, and what the yamux layout cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Wire {
    /// The native layout: TLV frames, a HELLO announcing each side's
    /// limits, RESET with a code. Only this crate speaks it.
    #[default]
    Lite,
    /// yamux 1.0 (hashicorp/yamux `spec.md`, libp2p's `/yamux/1.0.0`): the
    /// layout rust-yamux, go-yamux, hashicorp/yamux and every libp2p node
    /// speak. No HELLO: each side assumes the other's defaults.
    Yamux,
}

/// Connection configuration. Build with [`Config::default`] and adjust fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The byte layout on the wire. Default [`Wire::Lite`].
    pub wire: Wire,
    /// Largest DATA payload this side sends and accepts. Default 64 KiB.
    /// On the yamux wire it bounds only what this side sends (at most
    /// 64 KiB, as go-yamux does); a peer's DATA may be as large as the
    /// credit its stream holds, as hashicorp/yamux sends it.
    pub max_frame_payload: u32,
    /// Receive window granted to each new stream. Default 256 KiB. On the
    /// yamux wire at least 256 KiB (go-yamux refuses less); more is granted
    /// by a delta on the stream's SYN or ACK.
    pub initial_window: u32,
    /// Largest receive window auto-tuning may grow a stream to: a hard cap
    /// on what one stream may make this side buffer. Default 64 MiB, above
    /// the 1.5 × bandwidth-delay product auto-tuning aims for on 1 Gbit/s
    /// over 200 ms (1.5 × 25 MB), so such a path is not capped.
    pub max_window: u32,
    /// Ceiling on the sum of all streams' receive windows, which bounds the
    /// bytes a peer can make this side buffer. A SYN whose `initial_window`
    /// it cannot admit is refused with RESET(REFUSED), whether or not the
    /// application would accept the stream, and windows grow only within
    /// it. Streams this side opens get `initial_window` regardless (the
    /// application decides how many it opens); they count against it, so
    /// the peer's streams and window growth then get less. Default 256 MiB:
    /// 1024 streams of the default window. Raising `max_inbound_streams`
    /// beyond that admits more streams only if this is raised too (to
    /// `max_inbound_streams × initial_window` to admit them all).
    pub connection_receive_budget: u64,
    /// Concurrent streams the peer may open; an excess SYN is refused with a
    /// RESET of that stream only. Default 1000.
    pub max_inbound_streams: usize,
    /// Streams opened by the peer and not yet accepted; an excess SYN is
    /// refused with a RESET. Default 256.
    pub accept_backlog: usize,
    /// Outbound streams awaiting the peer's ACK; `open_stream` waits beyond
    /// this. Default 256.
    pub max_pending_opens: usize,
    /// Bytes a stream's writer may queue beyond what has been framed; a
    /// writer blocks past it. Default 256 KiB.
    pub send_buffer: usize,
    /// What the send buffers of all streams together aim to stay under:
    /// while many streams have data to send, each may queue only its share
    /// of this (but at least 16 KiB, and at most `send_buffer`), so that
    /// bytes leave while they are still in the CPU's cache and the memory
    /// in flight does not grow with the number of writers. Default 1 MiB.
    pub connection_send_buffer: usize,
    /// Streams reset because the peer broke stream rules, over the
    /// connection's lifetime, before it is closed with GO_AWAY. Default 1024.
    pub max_peer_error_resets: u32,
    /// Empty DATA frames and zero-delta window updates without flags, over
    /// the connection's lifetime, before GO_AWAY. Default 1000.
    pub max_empty_frames: u32,
    /// Streams the peer opened and reset before they were accepted, over the
    /// connection's lifetime, before GO_AWAY (Rapid Reset), as long as they
    /// also outnumber the streams the application accepted: a client that
    /// cancels some of its requests is not an attacker. Default 10,000.
    pub max_reset_before_accept: u32,
    /// Send a keepalive ping after this long without receiving anything;
    /// `None` disables keepalive. Default 30 s.
    pub keepalive_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is declared
    /// dead. Default 30 s.
    pub keepalive_timeout: Duration,
    /// How long an opened stream may wait for the peer's ACK before it is
    /// reset, and how long `open_stream` waits for the peer's limits to
    /// let a stream open before it fails with `ConnError::OpenTimeout`.
    /// Default 75 s.
    pub open_timeout: Duration,
    /// How long a dropped stream may wait for the peer's FIN, and how long
    /// the graceful shutdown that dropping the last `Connection` starts
    /// lets open streams finish, before they are reset. Default 30 s.
    pub close_timeout: Duration,
    /// How long a closing connection waits for the transport to take the
    /// frames already queued (the GO_AWAY last) and for the peer to end its
    /// side, before it drops the transport anyway: the bound on
    /// `Connection::close`. Default 250 ms.
    pub close_flush_timeout: Duration,
    /// Full read blocks (256 KiB each, more if `max_frame_payload` needs
    /// it) the driver keeps to reuse once the streams have read their
    /// slices, instead of asking the allocator for fresh pages. Unread
    /// received bytes cost at most twice their size plus this many blocks
    /// and the one being filled, whatever frames the peer sends: received
    /// payloads are slices of the blocks, and once slices pin more blocks
    /// than this and twice their bytes, they are copied out. All of it
    /// goes after 0.5–1 s without reads. Lower it for many busy
    /// connections on little memory; 0 keeps none. Default 64 (16 MiB).
    pub read_blocks_kept: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            wire: Wire::Lite,
            max_frame_payload: 64 * 1024,
            initial_window: DEFAULT_INITIAL_WINDOW,
            max_window: 64 * 1024 * 1024,
            connection_receive_budget: 256 * 1024 * 1024,
            max_inbound_streams: 1000,
            accept_backlog: 256,
            max_pending_opens: 256,
            send_buffer: 256 * 1024,
            connection_send_buffer: 1024 * 1024,
            max_peer_error_resets: 1024,
            max_empty_frames: 1000,
            max_reset_before_accept: 10_000,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(30),
            open_timeout: Duration::from_secs(75),
            close_timeout: Duration::from_secs(30),
            close_flush_timeout: Duration::from_millis(250),
            read_blocks_kept: 64,
        }
    }
}

impl Config {
    /// Clamps fields into the ranges the protocol allows, so that no
    /// setting can produce frames the peer must reject.
    pub(crate) fn normalized(mut self) -> Self {
        self.max_frame_payload = self.max_frame_payload.clamp(1, 16 * 1024 * 1024);
        self.initial_window = self.initial_window.min(MAX_WINDOW);
        if self.wire == Wire::Yamux {
            // What a yamux peer assumes every stream starts with.
            self.initial_window = self.initial_window.max(DEFAULT_INITIAL_WINDOW);
        }
        self.max_window = self.max_window.clamp(self.initial_window, MAX_WINDOW);
        self.max_pending_opens = self.max_pending_opens.max(1);
        self.send_buffer = self.send_buffer.max(1);
        self
    }
}
