//! Many streams answering at once: each of STREAMS streams sends ROUNDS
//! 64-byte requests, one at a time, and the peer echoes each; messages per
//! second, medians of RUNS on one warm 2-worker runtime, for
//! mux-yamux-lite with the default `Config` or with `direct_writes`, over
//! TRANSPORT `duplex`, `tcp` or `h2-tunnel`.
//!
//! ```sh
//! cargo run --release -p mux-benches --example echo -- TRANSPORT STREAMS ROUNDS RUNS [direct]
//! cargo run --release -p mux-benches --example echo -- tcp 100 200 9
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io;
use std::process::ExitCode;
use std::time::Instant;

use mux_benches::cli::{self, Words};
use mux_benches::contender::{mux, Acceptor, Opener, Setup};
use mux_benches::measure::{self, join_error};
use mux_benches::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

const USAGE: &str = "usage: echo TRANSPORT STREAMS ROUNDS RUNS [direct]";
const MESSAGE: usize = 64;

/// What to run, from the command line.
struct Case {
    transport: Transport,
    streams: usize,
    rounds: usize,
    runs: usize,
    direct: bool,
}

fn parse() -> Option<Case> {
    let mut words = Words::from_env();
    let transport = words.transport()?;
    let streams = words.number()?;
    let rounds = words.number()?;
    let runs = words.count()?;
    let direct = match words.optional() {
        None => false,
        Some(d) if d == "direct" => true,
        Some(_) => return None,
    };
    words.end()?;
    Some(Case {
        transport,
        streams,
        rounds,
        runs,
        direct,
    })
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
    let setup = Setup::new(case.transport, case.streams);
    let (opener, acceptor) = if case.direct {
        mux::start_direct(setup).await?
    } else {
        mux::start(setup).await?
    };
    once(opener, acceptor, case).await
}

fn main() -> ExitCode {
    let Some(case) = parse() else {
        return cli::usage(USAGE);
    };
    let who = if case.direct {
        "direct writes"
    } else {
        "default"
    };
    let figures = measure::repeat_warm(case.runs, || run(&case));
    measure::report_figures(figures, who, |median, all| {
        format!(
            "{who} over {}, {} streams × {} round trips: median {median:.0} messages/s ({all})",
            case.transport.name(),
            case.streams,
            case.rounds,
        )
    })
}
