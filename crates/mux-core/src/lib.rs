//! # mux-core: the contracts of a stream multiplexer
//!
//! A multiplexer carries many independent, flow-controlled, bidirectional byte
//! streams over one transport. This crate holds only the contracts and the
//! pieces every implementation shares; `mux-yamux-lite` is the implementation.
//!
//! ## Layout
//! - [`traits`]: [`MuxedStream`], [`MuxedConn`] (with [`ShutdownOutcome`]),
//!   [`Multiplexer`] and [`StreamId`].
//! - [`error`]: [`StreamError`] and [`ConnError`], with their `io::ErrorKind` mapping.
//! - [`deadline`]: Go `net.Conn`-style deadlines ([`Deadlines`], [`DeadlineTimer`]).
//! - [`rwconn`]: [`RwConn`], a connection made of any reader plus any writer
//!   (for example an HTTP request body and a response body), with deadlines.
//! - `compat` (feature `futures-io`): futures-io adapters.
//!
//! ## Example
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use mux_core::RwConn;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! // Two one-way pipes become one full-duplex connection per side.
//! let (a_rx, b_tx) = tokio::io::simplex(64);
//! let (b_rx, a_tx) = tokio::io::simplex(64);
//! let mut a = RwConn::new(a_rx, a_tx);
//! let mut b = RwConn::new(b_rx, b_tx);
//!
//! a.write_all(b"ping").await?;
//! let mut buf = [0u8; 4];
//! b.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod deadline;
pub mod error;
pub mod rwconn;
pub mod traits;

#[cfg(feature = "futures-io")]
pub mod compat;

pub use deadline::{DeadlineTimer, Deadlines, Direction};
pub use error::{ConnError, StreamError};
pub use rwconn::{Done, RwConn};
pub use traits::{Multiplexer, MuxedConn, MuxedStream, ShutdownOutcome, StreamId};
