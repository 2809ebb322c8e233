//! The summary's round trip (64-byte request, 64-byte echo, one at a time)
//! run many times on one warm current-thread runtime, for A/B comparisons
//! and instruction counts (`valgrind --tool=callgrind`) of the request path.
//!
//! ```sh
//! cargo run --release -p mux-benches --example round_trip -- CONTENDER TRANSPORT ITERATIONS RUNS
//! cargo run --release -p mux-benches --example round_trip -- mux duplex 20000 9
//! ```
//!
//! CONTENDER is a bench id (`raw`, `mux`, `yamux`, `tokio-yamux`),
//! TRANSPORT `duplex`, `tcp` or `h2-tunnel`. Each run opens a connection,
//! makes a tenth of ITERATIONS untimed round trips and then ITERATIONS
//! timed ones; prints the medians over the runs of p50 and p99, and every
//! run's p50. `--help` explains the arguments.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io;
use std::process::ExitCode;

use clap::Parser;
use mux_benches::cli;
use mux_benches::contender::Setup;
use mux_benches::measure::{self, Flavor};
use mux_benches::scenario::round_trip;
use mux_benches::{runner, with_contender, Contender, Transport};

/// 64-byte round trips (request, echo, one at a time) on one warm
/// current-thread runtime; prints the medians over the runs of p50 and p99
/// in µs, and every run's p50.
#[derive(Parser)]
struct Case {
    /// The muxer (or raw transport) measured.
    contender: Contender,
    /// What the connection runs over.
    transport: Transport,
    /// Timed round trips per run, after a tenth as many untimed ones.
    #[arg(value_parser = cli::count)]
    iterations: usize,
    /// Runs, each on a fresh connection.
    #[arg(value_parser = cli::count)]
    runs: usize,
}

/// One run on a fresh connection; p50 and p99 in µs.
async fn once(case: &Case) -> io::Result<(f64, f64)> {
    let setup = Setup::new(case.transport, 1);
    with_contender!(case.contender, setup, |opener, acceptor| {
        let times =
            round_trip::latencies(&opener, acceptor, case.iterations / 10, case.iterations).await?;
        let micros = |p| round_trip::percentile(&times, p).as_secs_f64() * 1e6;
        Ok((micros(50), micros(99)))
    })
}

fn main() -> ExitCode {
    let case = Case::parse();
    measure::warm_allocator();
    let rt = measure::runtime(Flavor::CurrentThread);
    let mut p50s = Vec::with_capacity(case.runs);
    let mut p99s = Vec::with_capacity(case.runs);
    for _ in 0..case.runs {
        match rt.block_on(once(&case)) {
            Ok((p50, p99)) => {
                p50s.push(p50);
                p99s.push(p99);
            }
            Err(e) => {
                eprintln!("{}: {e}", case.contender.name());
                return ExitCode::FAILURE;
            }
        }
    }
    let all: Vec<String> = p50s.iter().map(|p| format!("{p:.2}")).collect();
    println!(
        "{} over {}, {} round trips × {} runs: p50 {:.2} µs, p99 {:.2} µs (medians; p50s {})",
        case.contender.name(),
        case.transport.name(),
        case.iterations,
        case.runs,
        runner::median(p50s),
        runner::median(p99s),
        all.join(", ")
    );
    ExitCode::SUCCESS
}
