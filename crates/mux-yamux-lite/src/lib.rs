//! # mux-yamux-lite: many flow-controlled streams over one connection
//!
//! yamux semantics (SYN/ACK/FIN/RST, per-stream windows, ping, go-away,
//! limits) carried in mux-frame TLV frames. docs/PROTOCOL.md is the wire spec.
//!
//! ## Layout
//! - [`frame`]: semantic frames, flags and codes. The session speaks only these.
//! - [`wire`]: byte layouts; [`wire::lite`] maps frames to TLV frames.
//! - [`session`]: the sans-IO protocol core ([`session::Session`]): frames
//!   and commands in, frames, events and the next timeout out, clock passed in.
//! - `driver` (private): the tokio task that owns the transport and feeds
//!   the session.
//! - [`Connection`] and [`Stream`]: the handles applications use; they
//!   implement `mux_core::{MuxedConn, MuxedStream}`. [`YamuxLite`] is the
//!   `mux_core::Multiplexer`.
//! - [`config`]: every limit, with its default.
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
//! client.close().await?;
//! # Ok(())
//! # }
//! ```

mod answer_cost;
pub mod config;
mod connection;
mod driver;
pub mod frame;
mod payload_pool;
pub mod session;
mod shared;
mod stream;
pub mod wire;

/// Maps keyed by stream id. foldhash is several times cheaper than std's
/// SipHash on a `u32` and is still seeded per process, so a peer choosing
/// ids cannot aim at collisions it cannot predict.
type StreamMap<V> = std::collections::HashMap<u32, V, foldhash::fast::RandomState>;

pub use config::Config;
pub use connection::{Connection, YamuxLite};
pub use session::{Role, Stats};
pub use stream::Stream;
