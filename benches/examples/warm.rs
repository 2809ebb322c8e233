//! One transfer run many times on one warm runtime, for a steadier figure
//! than the summary's fresh runtime per run gives on a noisy machine, and in
//! application writes of any size up to 64 KiB.
//!
//! ```sh
//! cargo run --release -p mux-benches --example warm -- CONTENDER TRANSPORT STREAMS KIB_PER_STREAM RUNS [WRITE_BYTES]
//! cargo run --release -p mux-benches --example warm -- mux duplex 1 262144 9
//! cargo run --release -p mux-benches --example warm -- mux tcp 1 65536 5 1024
//! ```
//!
//! CONTENDER is a bench id (`raw`, `mux`, `yamux`, `tokio-yamux`),
//! TRANSPORT `duplex`, `tcp` or `h2-tunnel`; writes are 64 KiB unless
//! WRITE_BYTES says otherwise. Prints the median and every run in MiB/s;
//! wrap it in `perf stat -e task-clock` for the CPU time. With
//! `--fresh-runtime` (or `WARM_FRESH_RUNTIME` set in the environment) each
//! run gets a fresh runtime instead, as in the summary (the allocator stays
//! warm). `--help` explains the arguments.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io;
use std::process::ExitCode;

use clap::Parser;
use mux_benches::cli;
use mux_benches::contender::Setup;
use mux_benches::scenario::throughput;
use mux_benches::{measure, with_contender, Contender, Transport, CHUNK, KIB};

/// One transfer (STREAMS streams at once, KIB_PER_STREAM each) repeated on
/// one warm runtime; prints the median and every run in MiB/s.
#[derive(Parser)]
struct Args {
    /// The muxer (or raw transport) measured.
    contender: Contender,
    /// What the connection runs over.
    transport: Transport,
    /// Streams writing at once.
    streams: usize,
    /// KiB each stream writes.
    kib_per_stream: usize,
    /// Runs, each on a fresh connection.
    #[arg(value_parser = cli::count)]
    runs: usize,
    /// Size of each application write, 1 to 65536 bytes.
    #[arg(default_value_t = CHUNK, value_parser = write_size)]
    write_bytes: usize,
    /// A fresh runtime for each run, as the summary runner does, instead of
    /// one warm runtime (also set by WARM_FRESH_RUNTIME in the
    /// environment).
    #[arg(long)]
    fresh_runtime: bool,
}

/// Parses an application write size: 1 to [`CHUNK`] bytes.
fn write_size(text: &str) -> Result<usize, String> {
    let size = cli::count(text)?;
    if size > CHUNK {
        return Err(format!("at most {CHUNK}"));
    }
    Ok(size)
}

/// What to run, in bytes.
struct Case {
    contender: Contender,
    transport: Transport,
    streams: usize,
    per_stream: usize,
    runs: usize,
    write: usize,
    /// `streams` × `per_stream`, checked when made.
    total: usize,
}

impl Case {
    /// The case `args` describe, or `None` if its sizes overflow.
    fn new(args: &Args) -> Option<Self> {
        let per_stream = args.kib_per_stream.checked_mul(KIB)?;
        Some(Self {
            contender: args.contender,
            transport: args.transport,
            streams: args.streams,
            per_stream,
            runs: args.runs,
            write: args.write_bytes,
            total: args.streams.checked_mul(per_stream)?,
        })
    }
}

/// One transfer on a fresh connection; MiB/s.
async fn once(case: &Case) -> io::Result<f64> {
    let setup = Setup::new(case.transport, case.streams);
    with_contender!(case.contender, setup, |opener, acceptor| {
        let (elapsed, _acceptor) =
            throughput::transfer_in(&opener, acceptor, case.streams, case.per_stream, case.write)
                .await?;
        Ok(throughput::mib_per_s(case.total, elapsed))
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(case) = Case::new(&args) else {
        eprintln!("warm: STREAMS × KIB_PER_STREAM is too large");
        return ExitCode::FAILURE;
    };
    let fresh = args.fresh_runtime || std::env::var_os("WARM_FRESH_RUNTIME").is_some();
    let figures = if fresh {
        measure::repeat_fresh(case.runs, || once(&case))
    } else {
        measure::repeat_warm(case.runs, || once(&case))
    };
    measure::report_figures(figures, case.contender.name(), |median, all| {
        format!(
            "{} over {}, {} × {} KiB in {} B writes: median {median:.0} MiB/s ({all})",
            case.contender.name(),
            case.transport.name(),
            case.streams,
            case.per_stream / KIB,
            case.write,
        )
    })
}
