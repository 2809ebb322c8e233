//! # mux-benches: mux-yamux-lite against the raw transport and the incumbents
//!
//! Every scenario runs, within one process and with the same transport,
//! chunk size ([`CHUNK`], 64 KiB application writes) and runtime settings,
//! against these [`Contender`]s:
//!
//! - [`contender::raw`]: no muxer; one transport connection per stream (the
//!   physical limit);
//! - [`contender::mux`]: this workspace's `mux-yamux-lite`, on its own wire
//!   and on the yamux wire;
//! - [`contender::yamux`]: the `yamux` crate 0.14 through `tokio_util::compat`;
//! - [`contender::tokio_yamux`]: `tokio-yamux` 0.3;
//! - [`contender::interop`]: `mux-yamux-lite` on the yamux wire against the
//!   `yamux` crate, each in either role.
//!
//! Each contender turns a [`transport::Transport`] (a `tokio::io::duplex`
//! pipe, TCP on 127.0.0.1, or an HTTP/2 tunnel of `mux-h2`) into an
//! [`contender::Opener`] and an [`contender::Acceptor`] of streams; the
//! [`scenario`] functions are generic over those two traits, so the criterion
//! benches (`benches/benches`) and the summary runner (`src/bin/summary.rs`)
//! drive every contender through the same code. [`measure`] runs one
//! measurement on a fresh runtime, bounded in time, and [`report`] and
//! [`chart`] turn the results into a markdown table and an SVG chart; [`cli`]
//! reads the command lines of the examples (`benches/examples`), which repeat
//! one scenario on a warm runtime for A/B comparisons and profiles.
//!
//! benches/README.md lists the scenarios and their sizes.

// A measurement package, not library code: a broken setup should panic
// loudly, sizes are small local numbers, and the runner reports on stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr
)]

pub mod chart;
pub mod cli;
pub mod contender;
pub mod measure;
pub mod pump;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod transport;

pub use contender::Contender;
pub use transport::Transport;

/// Size of every application write (and read buffer): 64 KiB.
pub const CHUNK: usize = 64 * 1024;

/// One mebibyte.
pub const MIB: usize = 1024 * 1024;

/// One kibibyte.
pub const KIB: usize = 1024;
