//! mux as a rust-libp2p stream muxer.
//!
//! [`Config`] is the upgrade a `SwarmBuilder` takes in place of
//! `libp2p::yamux::Config`:
//!
//! ```text
//! .with_tcp(tcp::Config::default(), noise::Config::new, mux_libp2p::Config::default)?
//! ```
//!
//! It offers two protocol ids, in this order:
//! - `/mux/lite/1.0.0`, the lite wire: reset codes, close-read and each
//!   side's limits on the wire. Two nodes using this crate pick it.
//! - `/yamux/1.0.0`, the yamux 1.0 wire: what every other libp2p node
//!   (rust, Go, JS) speaks, so ours joins their connections unchanged.
//!
//! The negotiated connection is a [`Muxer`] (`StreamMuxer`) over
//! `mux_yamux_lite::Connection`, whose substreams are [`Substream`]s
//! (futures-io `AsyncRead + AsyncWrite`). Connections run on tokio: the
//! upgrade fails outside a tokio runtime.
//!
//! Layout: `config.rs` holds the upgrade and the protocol ids, `muxer.rs`
//! maps libp2p's polls onto the connection, `substream.rs` adapts a stream
//! to futures-io.
//!
//! # Example
//!
//! Two ends of an in-memory pipe negotiate nothing here (a swarm does
//! that); each side upgrades with the lite protocol, then one opens a
//! substream and the other reads it.
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use libp2p_core::muxing::StreamMuxerExt;
//! use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
//! use mux_core::compat::TokioAsyncReadCompatExt;
//! use mux_libp2p::{Config, Protocol};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let mut dialer = Config::default().upgrade_outbound(a.compat(), Protocol::Lite).await?;
//! let mut listener = Config::default().upgrade_inbound(b.compat(), Protocol::Lite).await?;
//!
//! let mut out = futures::future::poll_fn(|cx| dialer.poll_outbound_unpin(cx)).await?;
//! out.write_all(b"hello").await?;
//! out.close().await?;
//!
//! let mut inc = futures::future::poll_fn(|cx| listener.poll_inbound_unpin(cx)).await?;
//! let mut got = Vec::new();
//! inc.read_to_end(&mut got).await?;
//! assert_eq!(got, b"hello");
//! # Ok(())
//! # }
//! ```

mod config;
mod muxer;
mod substream;

pub use config::{Config, Protocol};
pub use muxer::Muxer;
pub use substream::Substream;
