//! # mux-tunnel: many TCP connections over one HTTP exchange
//!
//! `mux-tunnel server` accepts HTTP exchanges (HTTP/2 CONNECT or POST, or
//! an HTTP/1.1 upgrade; in clear or over TLS) with `mux_h2`, runs one `mux_yamux_lite`
//! connection over each, and connects every stream to the target it
//! names. `mux-tunnel client URL REMOTE...` opens one such exchange and
//! forwards each local connection of each REMOTE as one stream.
//! docs/TUNNEL.md ("The mux-tunnel command") is the user's guide.
//!
//! ## Layout
//! - [`cli`]: the command line and the parsers of its values.
//! - [`remote`]: REMOTE arguments, parsed by a pure function.
//! - [`auth`]: `--auth` credentials as HTTP Basic, checked in constant time,
//!   and `--authfile` users with the targets each may reach.
//! - [`header`]: the few bytes that open each stream (target, then status).
//! - [`forward`]: copying a connection both ways, FIN and reset included.
//! - [`socks`]: the client's SOCKS5 handshake (no auth, CONNECT).
//! - [`proxy`]: `--proxy`, the way to the server through an HTTP CONNECT
//!   proxy.
//! - [`tls`]: the server's certificate (PEM files or self-signed), its
//!   fingerprint, and the client's verification (webpki roots, or pinned).
//! - [`tunnel`]: the client's tunnel: opening it, which failures to
//!   retry, the backoff, and the tunnel currently up.
//! - [`reverse`]: `R:` remotes, the client's and the server's half.
//! - [`server`] and [`client`]: the two sides, each using the modules
//!   above.
//!
//! This file parses the command line, sets up logging, runs a side and
//! turns its error into one line on stderr and exit status 1.

mod auth;
mod cli;
mod client;
mod forward;
mod header;
mod proxy;
mod remote;
mod reverse;
mod server;
mod socks;
mod tls;
mod tunnel;

use std::{io::IsTerminal as _, process::ExitCode, time::Duration};

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::Error::new(e).context("cannot start the runtime")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Client(args) => client::run(args).await,
        }
    });
    // A stdio client may leave a read of stdin blocked in a thread; do not
    // wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// The one error line, and exit status 1.
#[allow(clippy::print_stderr, reason = "the documented error line")]
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("mux-tunnel: error: {e:#}");
    ExitCode::FAILURE
}

/// Logs to stderr: `info` for mux-tunnel and `warn` below it; `-v` adds
/// mux-tunnel's per-connection lines, `-vv` everything. `RUST_LOG` wins.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,mux_tunnel=info",
        1 => "warn,mux_tunnel=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The mux-yamux-lite configuration of both sides: defaults, with the
/// keepalive of `--keepalive` (0 turns it off). A ping unanswered for the
/// same time (at least 1 s) ends the tunnel.
pub(crate) fn mux_config(keepalive: Duration) -> mux_yamux_lite::Config {
    let mut config = mux_yamux_lite::Config::default();
    if keepalive.is_zero() {
        config.keepalive_interval = None;
    } else {
        config.keepalive_interval = Some(keepalive);
        config.keepalive_timeout = keepalive.max(Duration::from_secs(1));
    }
    config
}
