//! Stream churn run many times on one warm runtime: the summary's churn
//! scenario (open, write 1 byte, close, accept, read to EOF) without a fresh
//! runtime per run, for A/B comparisons and profiles of stream setup and
//! teardown.
//!
//! ```sh
//! cargo run --release -p mux-benches --example churn -- CONTENDER TRANSPORT TOTAL IN_FLIGHT RUNS
//! cargo run --release -p mux-benches --example churn -- mux duplex 50000 16 9
//! ```
//!
//! CONTENDER is a bench id (`raw`, `mux`, `yamux`, `tokio-yamux`),
//! TRANSPORT `duplex`, `tcp` or `h2-tunnel`. Prints the median and every
//! run in streams/s. `--help` explains the arguments.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io;
use std::process::ExitCode;

use clap::Parser;
use mux_benches::cli;
use mux_benches::contender::Setup;
use mux_benches::scenario::churn;
use mux_benches::{measure, with_contender, Contender, Transport};

/// Stream churn (open, write 1 byte, close; accept, read to EOF) repeated
/// on one warm runtime; prints the median and every run in streams/s.
#[derive(Parser)]
struct Case {
    /// The muxer (or raw transport) measured.
    contender: Contender,
    /// What the connection runs over.
    transport: Transport,
    /// Stream lifecycles per run.
    #[arg(value_parser = cli::count)]
    total: usize,
    /// Streams open at once.
    #[arg(value_parser = cli::count)]
    in_flight: usize,
    /// Runs, each on a fresh connection.
    #[arg(value_parser = cli::count)]
    runs: usize,
}

/// One run on a fresh connection; streams per second.
async fn once(case: &Case) -> io::Result<f64> {
    let setup = Setup::new(case.transport, case.in_flight);
    with_contender!(case.contender, setup, |opener, acceptor| {
        let elapsed = churn::lifecycles(&opener, acceptor, case.total, case.in_flight).await?;
        Ok(case.total as f64 / elapsed.as_secs_f64().max(1e-9))
    })
}

fn main() -> ExitCode {
    let case = Case::parse();
    let figures = measure::repeat_warm(case.runs, || once(&case));
    measure::report_figures(figures, case.contender.name(), |median, all| {
        format!(
            "{} over {}, {} lifecycles, {} at a time: median {median:.0} streams/s ({all})",
            case.contender.name(),
            case.transport.name(),
            case.total,
            case.in_flight,
        )
    })
}
