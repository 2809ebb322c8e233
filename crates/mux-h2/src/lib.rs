//! # mux-h2: one HTTP/2 exchange as a full-duplex connection
//!
//! Like Go's `h2conn`, this crate turns a single HTTP request and its
//! response into one bidirectional byte stream, an [`H2Conn`]: a
//! [`mux_core::RwConn`] whose reader is what the peer sends and whose writer
//! is what this side sends. It is a transport like a TCP connection, so a
//! multiplexer (for example `mux-yamux-lite`, which takes any
//! `AsyncRead + AsyncWrite + Send + 'static`) can run over it, through
//! proxies and load balancers that speak only HTTP.
//!
//! ## Layout
//! - [`client`]: [`connect`], the [`Connector`] builder ([`Mode`]: CONNECT,
//!   POST or HTTP/1.1 upgrade; extra headers; TLS) and [`handshake`] for
//!   sharing one HTTP/2 connection between tunnels
//!   ([`Connector::connect_with`]); [`Connector::connect_over`] opens a
//!   tunnel over a connection the caller set up (a proxy, TLS of its own).
//! - [`server`]: [`accept`] turns a hyper request into a response to send
//!   plus a tunnel; [`serve`] runs a complete HTTP/1.1 + HTTP/2 server that
//!   hands each tunnel to a handler.
//! - [`io`]: the tunnel, [`H2Conn`] with [`H2ConnExt`], its halves,
//!   [`TunnelReader`] and [`TunnelWriter`], the body type [`TunnelBody`],
//!   the buffer bounds ([`SEND_QUEUE_CHUNKS`], [`MAX_CHUNK`], [`MAX_FRAME_SIZE`],
//!   [`STREAM_WINDOW`], [`CONNECTION_WINDOW`]), [`DROP_DRAIN_TIMEOUT`] and
//!   [`ResetHandle`].
//! - [`error`]: [`AcceptError`], [`ConnectError`], [`TunnelError`] and
//!   [`BodyError`], each mapped to an `io::ErrorKind`.
//! - `tls` (feature `tls`): rustls with ALPN for `https` URLs, and
//!   `serve_tls`.
//!
//! Each module uses only those below it: `error`, then `io`, then `server`,
//! `tls` and `client`. This file declares them, re-exports what users need
//! and defines [`UPGRADE_PROTOCOL`], which all of them may use.
//!
//! ## Three ways to carry a tunnel ([`TunnelKind`])
//! - **HTTP/2 CONNECT** (the client default): hyper hands the stream over
//!   through its upgrade API on both sides.
//! - **HTTP/2 POST** (or any other method on the server): the request body
//!   carries client→server bytes and the response body server→client bytes.
//!   The server answers at once and never awaits the request body.
//! - **HTTP/1.1 `Upgrade: mux-tunnel`** with `101 Switching Protocols`, for
//!   paths without HTTP/2. A plain HTTP/1.1 request is refused with 426,
//!   since HTTP/1.1 bodies are not reliably full duplex.
//!
//! In every mode memory is bounded: HTTP/2 flow control stops a writer once
//! the peer's reader falls [`STREAM_WINDOW`] (1 MiB) plus at most
//! [`SEND_QUEUE_CHUNKS`] × [`MAX_CHUNK`] (128 KiB) behind, and
//! [`CONNECTION_WINDOW`] keeps one stalled tunnel from stalling the others on
//! its connection. (Over an HTTP/1.1 upgrade the TCP buffers are the bound.) `poll_shutdown`
//! half-closes (HTTP/2 `END_STREAM`; dropping the tunnel right after still
//! delivers everything, see [`DROP_DRAIN_TIMEOUT`]), [`H2ConnExt::reset`] aborts (see
//! [`ResetHandle`] for what each mode can tell the peer), and the
//! [`RwConn`](mux_core::RwConn) deadlines, close and done signal apply as
//! mux-core documents.
//!
//! ## Example
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! // A server whose handler echoes each tunnel.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/echo", listener.local_addr()?);
//! tokio::spawn(mux_h2::serve(listener, |conn| async move {
//!     let (mut rx, mut tx) = tokio::io::split(conn);
//!     let _ = tokio::io::copy(&mut rx, &mut tx).await;
//!     let _ = tx.shutdown().await;
//! }));
//!
//! // HTTP/2 CONNECT over h2c; `Connector` picks POST or an HTTP/1.1 upgrade.
//! let (mut conn, response) = mux_h2::connect(url.as_str()).await?;
//! assert_eq!(response.status, 200);
//! conn.write_all(b"hello").await?;
//! conn.shutdown().await?; // END_STREAM: the server's copy ends
//! let mut echoed = Vec::new();
//! conn.read_to_end(&mut echoed).await?;
//! assert_eq!(echoed, b"hello");
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod client;
pub mod error;
pub mod io;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::{connect, handshake, Connector, Mode};
pub use error::{AcceptError, BodyError, ConnectError, TunnelError};
pub use io::{
    H2Conn, H2ConnExt, ResetHandle, TunnelBody, TunnelKind, TunnelReader, TunnelWriter,
    CONNECTION_WINDOW, DEFAULT_RESET_CODE, DROP_DRAIN_TIMEOUT, MAX_CHUNK, MAX_FRAME_SIZE,
    SEND_QUEUE_CHUNKS, STREAM_WINDOW,
};
pub use server::{accept, serve, ConnAddrs};
#[cfg(feature = "tls")]
pub use tls::serve_tls;

/// The token of the HTTP/1.1 `Upgrade` header this crate offers and accepts.
pub const UPGRADE_PROTOCOL: &str = "mux-tunnel";
