//! The round trip of `--example round_trip`, for several contenders at once
//! on one current-thread runtime, taking turns in short batches, so that
//! every contender is measured in the same spells of the machine (which
//! change speed within milliseconds, docs/BENCHMARKS.md). Prints each
//! contender's p50 over all its round trips and, against the first
//! contender, the median of the per-round ratios of p50s.
//!
//! ```sh
//! cargo run --release -p mux-benches --example round_trip_paired -- TRANSPORT ROUNDS BATCH CONTENDER...
//! cargo run --release -p mux-benches --example round_trip_paired -- duplex 200 250 raw mux yamux
//! ```
//!
//! `--help` explains the arguments.
// A measurement tool, as the benches package is: indexes stay within the
// contender list it built, and its numbers are small local counts.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::any::Any;
use std::io;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mux_benches::cli;
use mux_benches::contender::{BenchStream, Setup};
use mux_benches::measure::{self, Flavor};
use mux_benches::scenario::round_trip;
use mux_benches::{runner, with_contender, Contender, Transport};

/// 64-byte round trips of several contenders on one current-thread
/// runtime, taking turns in batches; prints each contender's p50 in µs and
/// the median of its per-round ratio to the first contender's p50.
#[derive(Parser)]
struct Case {
    /// What every connection runs over.
    transport: Transport,
    /// Rounds; in each, every contender makes one batch.
    #[arg(value_parser = cli::count)]
    rounds: usize,
    /// Round trips per batch.
    #[arg(value_parser = cli::count)]
    batch: usize,
    /// The contenders, the first being the one the others are divided by.
    #[arg(required = true)]
    contenders: Vec<Contender>,
}

/// A client stream and what keeps its connection open (yamux closes the
/// connection with its last handle).
type Client = (Box<dyn BenchStream>, Box<dyn Any>);

/// A connection of `contender` with its echo server running.
async fn connect(contender: Contender, transport: Transport) -> io::Result<Client> {
    let setup = Setup::new(transport, 1);
    with_contender!(contender, setup, |opener, acceptor| {
        let stream = round_trip::connect(&opener, acceptor).await?;
        Ok((
            Box::new(stream) as Box<dyn BenchStream>,
            Box::new(opener) as Box<dyn Any>,
        ))
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median of `times`, which it sorts.
fn p50(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    round_trip::percentile(times, 50)
}

async fn run(case: &Case) -> io::Result<()> {
    let mut streams = Vec::with_capacity(case.contenders.len());
    let mut _openers = Vec::with_capacity(case.contenders.len());
    for &c in &case.contenders {
        let (mut stream, opener) = connect(c, case.transport).await?;
        for _ in 0..case.batch {
            round_trip::once(&mut stream).await?;
        }
        streams.push(stream);
        _openers.push(opener);
    }
    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); streams.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); streams.len()];
    let mut batch = Vec::with_capacity(case.batch);
    for round in 0..case.rounds {
        let mut round_p50 = vec![Duration::ZERO; streams.len()];
        // Each round starts one contender later, as the summary does.
        for k in 0..streams.len() {
            let i = (round + k) % streams.len();
            batch.clear();
            for _ in 0..case.batch {
                batch.push(round_trip::once(&mut streams[i]).await?);
            }
            all[i].extend_from_slice(&batch);
            round_p50[i] = p50(&mut batch);
        }
        for (i, p) in round_p50.iter().enumerate() {
            ratios[i].push(p.as_secs_f64() / round_p50[0].as_secs_f64().max(1e-12));
        }
    }
    let base = case.contenders[0].name();
    for (i, c) in case.contenders.iter().enumerate() {
        let mut r = std::mem::take(&mut ratios[i]);
        r.sort_by(f64::total_cmp);
        let q = |f: f64| r[((r.len() - 1) as f64 * f) as usize];
        let (low, high) = (q(0.25), q(0.75));
        println!(
            "{} over {}: p50 {:.2} µs over {} round trips; ÷ {base} per round: median {:.2}× (quartiles {:.2}–{:.2})",
            c.name(),
            case.transport.name(),
            micros(p50(&mut all[i])),
            all[i].len(),
            runner::median(r),
            low,
            high,
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let case = Case::parse();
    measure::warm_allocator();
    let rt = measure::runtime(Flavor::CurrentThread);
    match rt.block_on(run(&case)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
