//! # mux-yamux-lite: many flow-controlled streams over one connection
//!
//! yamux semantics (SYN/ACK/FIN/RST, per-stream windows, ping, go-away,
//! limits) carried in mux-frame TLV frames, or on the yamux 1.0 wire that
//! rust-yamux, go-yamux, hashicorp/yamux and libp2p speak
//! (`Config::wire = `[`Wire::Yamux`]). docs/PROTOCOL.md is the wire spec.
//!
//! ## Layout
//! The modules form a stack; each uses only those above it.
//! - [`config`]: every limit, with its default. [`frame`]: semantic frames,
//!   flags and codes; the session speaks only these.
//! - [`session`]: the sans-IO protocol core ([`session::Session`]): frames
//!   and commands in, frames, events and the next timeout out, clock passed
//!   in. It knows no bytes.
//! - [`wire`]: byte layouts behind one trait, [`wire::Layout`];
//!   [`wire::lite::Lite`] maps frames to TLV frames, [`wire::yamux::Yamux`]
//!   to yamux 1.0 headers.
//! - `state` and `driver` (private): the session and the wakers of the
//!   tasks waiting on it, behind one lock; the tokio task that alone reads
//!   the transport and maps frames to bytes.
//! - [`Connection`] and [`Stream`]: the handles applications use; they
//!   change state under the lock and wake the driver, and never encode a
//!   byte. They implement `mux_core::{MuxedConn, MuxedStream}`; [`YamuxLite`]
//!   is the `mux_core::Multiplexer`.
//!
//! ## Example
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use mux_yamux_lite::{Config, Connection, Role};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let client = Connection::new(a, Role::Client, Config::default());
//! let server = Connection::new(b, Role::Server, Config::default());
//!
//! tokio::spawn(async move {
//!     while let Ok(mut stream) = server.accept_stream().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = tokio::io::split(&mut stream);
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!             let _ = w.shutdown().await;
//!         });
//!     }
//! });
//!
//! let mut stream = client.open_stream().await?;
//! stream.write_all(b"hello").await?;
//! stream.shutdown().await?; // close-write: FIN after the bytes
//! let mut echoed = String::new();
//! stream.read_to_string(&mut echoed).await?;
//! assert_eq!(echoed, "hello");
//! // GO_AWAY, every stream fails, transport closed: within 250 ms whatever
//! // the peer does. `client.shutdown(deadline)` lets open streams finish.
//! client.close().await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod config;
mod connection;
mod copy;
mod driver;
pub mod frame;
mod payload_pool;
pub mod session;
mod state;
mod stream;
pub mod wire;

/// Maps keyed by stream id. foldhash is several times cheaper than std's
/// SipHash on a `u32` and is still seeded per process, so a peer choosing
/// ids cannot aim at collisions it cannot predict.
type StreamMap<V> = std::collections::HashMap<u32, V, foldhash::fast::RandomState>;

pub use config::{Config, Wire};
pub use connection::{Connection, YamuxLite};
pub use session::{Role, Stats};
pub use stream::Stream;
