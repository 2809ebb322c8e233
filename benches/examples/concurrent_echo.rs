//! Many streams answering at once: each of STREAMS streams sends ROUNDS
//! 64-byte requests, one at a time, and the peer echoes each; messages per
//! second, medians of RUNS on one warm 2-worker runtime, for
//! mux-yamux-lite with the default `Config` over TRANSPORT `duplex`, `tcp`
//! or `h2-tunnel`.
//!
//! ```sh
//! cargo run --release -p mux-benches --example concurrent_echo -- TRANSPORT STREAMS ROUNDS RUNS
//! cargo run --release -p mux-benches --example concurrent_echo -- tcp 100 200 9
//! ```
//!
//! `--help` explains the arguments.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use mux_benches::cli;
use mux_benches::contender::{mux, Acceptor, Opener, Setup};
use mux_benches::measure::{self, join_error};
use mux_benches::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// Size of each request and of each echo.
const MESSAGE: usize = 64;

/// STREAMS streams of one mux-yamux-lite connection each making ROUNDS
/// 64-byte round trips at once; prints the median and every run in
/// messages/s.
#[derive(Parser)]
struct Case {
    /// What the connection runs over.
    transport: Transport,
    /// Streams making round trips at once.
    #[arg(value_parser = cli::count)]
    streams: usize,
    /// Round trips each stream makes, one at a time.
    #[arg(value_parser = cli::count)]
    rounds: usize,
    /// Runs, each on a fresh connection.
    #[arg(value_parser = cli::count)]
    runs: usize,
}

/// Echoes every stream until its peer closes.
async fn serve<A: Acceptor>(mut acceptor: A, streams: usize) -> io::Result<()> {
    let mut echoes = JoinSet::new();
    for _ in 0..streams {
        let mut stream = acceptor.accept().await?;
        echoes.spawn(async move {
            let mut buf = [0u8; MESSAGE];
            while stream.read_exact(&mut buf).await.is_ok() {
                stream.write_all(&buf).await?;
            }
            Ok::<_, io::Error>(())
        });
    }
    while let Some(done) = echoes.join_next().await {
        done.map_err(join_error)??;
    }
    Ok(())
}

/// One run on a fresh connection; messages per second.
async fn once<O: Opener, A: Acceptor>(opener: O, acceptor: A, case: &Case) -> io::Result<f64> {
    let server = tokio::spawn(serve(acceptor, case.streams));
    let start = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..case.streams {
        let mut stream = opener.open().await?;
        let rounds = case.rounds;
        clients.spawn(async move {
            let mut buf = [7u8; MESSAGE];
            for _ in 0..rounds {
                stream.write_all(&buf).await?;
                stream.read_exact(&mut buf).await?;
            }
            stream.shutdown().await?;
            Ok::<_, io::Error>(stream)
        });
    }
    let mut finished = Vec::with_capacity(case.streams);
    while let Some(done) = clients.join_next().await {
        finished.push(done.map_err(join_error)??);
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    drop(finished);
    server.await.map_err(join_error)??;
    Ok(case.streams as f64 * case.rounds as f64 / elapsed)
}

async fn run(case: &Case) -> io::Result<f64> {
    let (opener, acceptor) =
        mux::start(Setup::new(case.transport, case.streams), mux::Wire::Lite).await?;
    once(opener, acceptor, case).await
}

fn main() -> ExitCode {
    let case = Case::parse();
    let figures = measure::repeat_warm(case.runs, || run(&case));
    measure::report_figures(figures, "concurrent_echo", |median, all| {
        format!(
            "mux-yamux-lite over {}, {} streams × {} round trips: median {median:.0} messages/s ({all})",
            case.transport.name(),
            case.streams,
            case.rounds,
        )
    })
}
