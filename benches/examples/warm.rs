//! One transfer run many times on one warm runtime, for a steadier figure
//! than the summary's fresh runtime per run gives on a noisy machine, and in
//! application writes of any size up to 64 KiB.
//!
//! ```sh
//! cargo run --release -p mux-benches --example warm -- CONTENDER TRANSPORT STREAMS KIB_PER_STREAM RUNS [WRITE_BYTES]
//! cargo run --release -p mux-benches --example warm -- mux duplex 1 262144 9
//! cargo run --release -p mux-benches --example warm -- mux-direct tcp 1 65536 5 1024
//! ```
//!
//! CONTENDER is a bench id (`raw`, `mux`, `mux-direct`, `yamux`,
//! `tokio-yamux`), TRANSPORT `duplex`, `tcp` or `h2-tunnel`; writes are
//! 64 KiB unless WRITE_BYTES says otherwise. Prints the median and every
//! run in MiB/s; wrap it in `perf stat -e task-clock` for the CPU time.
//! With `WARM_FRESH_RUNTIME` set in the environment each run gets a fresh
//! runtime instead, as in the summary (the allocator stays warm).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io;
use std::process::ExitCode;

use mux_benches::cli::{self, Words};
use mux_benches::contender::Setup;
use mux_benches::scenario::throughput;
use mux_benches::{measure, with_contender, Contender, Transport, CHUNK, KIB};

const USAGE: &str = "usage: warm CONTENDER TRANSPORT STREAMS KIB_PER_STREAM RUNS [WRITE_BYTES]";

/// What to run, from the command line.
struct Case {
    contender: Contender,
    transport: Transport,
    streams: usize,
    per_stream: usize,
    runs: usize,
    write: usize,
    /// `streams` × `per_stream`, checked when parsed.
    total: usize,
}

fn parse() -> Option<Case> {
    let mut words = Words::from_env();
    let contender = words.contender()?;
    let transport = words.transport()?;
    let streams = words.number()?;
    let per_stream = words.number()?.checked_mul(KIB)?;
    let runs = words.count()?;
    let write = match words.optional() {
        Some(w) => w.parse().ok().filter(|w| (1..=CHUNK).contains(w))?,
        None => CHUNK,
    };
    words.end()?;
    Some(Case {
        contender,
        transport,
        streams,
        per_stream,
        total: streams.checked_mul(per_stream)?,
        runs,
        write,
    })
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
    let Some(case) = parse() else {
        return cli::usage(USAGE);
    };
    let figures = if std::env::var_os("WARM_FRESH_RUNTIME").is_some() {
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
