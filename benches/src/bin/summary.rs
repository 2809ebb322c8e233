//! The summary runner: every scenario, every contender, both transports,
//! in one process; prints one markdown table (medians of 5 runs, the
//! contenders taking turns) and writes it to `benches/last-summary.md`, and
//! draws `docs/benchmarks-streams.svg`.
//!
//! ```text
//! cargo run --release -p mux-benches --bin summary [-- OPTIONS] [FILTER...]
//! ```
//!
//! Options: `--quick` (1 run each, smaller sizes), `--runs COUNT` (default 5; idle
//! memory at most 3), `--timeout SECS` (10, per run), `--chart PATH` (draw
//! the chart there even for a quick or filtered run; a full unfiltered run
//! draws it to `docs/benchmarks-streams.svg`). A FILTER keeps the cases whose
//! `name/transport` contains it, e.g. `bulk`, `round-trip`, `/tcp`. `--help`
//! says the same.

// A measurement tool: it reports on stdout/stderr, and panics on a broken
// setup; its arithmetic is on small local numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use mux_benches::runner::{self, Options};
use mux_benches::{chart, measure, report};

/// Counts live heap bytes for the idle-memory scenario.
#[global_allocator]
static ALLOC: mux_alloc_count::CountingAlloc = mux_alloc_count::CountingAlloc::new();

/// Runs every benchmark scenario against every contender (raw transport,
/// mux-yamux-lite on its own wire and on the yamux wire, yamux 0.14,
/// tokio-yamux 0.3, and mux-yamux-lite against yamux 0.14 in either role)
/// over its transports, and
/// prints one markdown table of medians; also writes it to
/// benches/last-summary.md.
#[derive(Parser)]
#[command(name = "summary")]
struct Args {
    /// One run per figure and smaller sizes: a quick look, not a result.
    #[arg(long)]
    quick: bool,
    /// Runs per figure; the median is reported (idle memory: at most 3)
    /// [default: 5, or 1 with --quick].
    #[arg(long, value_name = "N", value_parser = mux_benches::cli::count)]
    runs: Option<usize>,
    /// Bound on each run, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = measure::DEFAULT_TIMEOUT.as_secs_f64())]
    timeout: f64,
    /// Draw the chart to PATH, even for a quick or filtered run (a full
    /// unfiltered run draws it to docs/benchmarks-streams.svg).
    #[arg(long, value_name = "PATH")]
    chart: Option<PathBuf>,
    /// Keep only the cases whose `name/transport` contains one of these,
    /// e.g. `bulk`, `round-trip`, `/tcp`.
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
}

impl Args {
    /// The runner's options and an explicit chart path.
    fn options(self) -> Result<(Options, Option<PathBuf>), String> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or(format!(
                "--timeout {}: not a positive number of seconds",
                self.timeout
            ))?;
        let runs = self
            .runs
            .unwrap_or(if self.quick { 1 } else { runner::DEFAULT_RUNS });
        let options = Options {
            quick: self.quick,
            runs,
            timeout,
            filters: self.filters,
        };
        Ok((options, self.chart))
    }
}

fn main() {
    let (options, chart_path) = match Args::parse().options() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("summary: {message}");
            std::process::exit(2);
        }
    };
    measure::warm_allocator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chart_path = chart_path.or_else(|| {
        (!options.quick && options.filters.is_empty())
            .then(|| root.join("../docs/benchmarks-streams.svg"))
    });

    let started = Instant::now();
    let rows = runner::run(&options, |line| eprintln!("{line}"));
    let elapsed = started.elapsed();

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let header = format!(
        "mux benchmark summary: {} run(s) per figure (median; idle memory at most {}, the round \
         trip {} times as many, each that much shorter), the contenders taking turns run by run, {} sizes, {} s bound per run, \
         {cores} cores, runner took {:.0} s. Throughput runs on a 2-worker multi-thread \
         runtime, the round trip on a current-thread one; 64 KiB application writes. \
         ↑ higher is better, ↓ lower is better; in the ratios, ours is mux-yamux-lite on its own \
         wire (lite), yamux wire is mux-yamux-lite on the yamux wire.\n",
        options.runs,
        mux_benches::scenario::IDLE_RUNS,
        mux_benches::scenario::ROUND_TRIP_SPLIT,
        if options.quick { "quick" } else { "full" },
        options.timeout.as_secs_f64(),
        elapsed.as_secs_f64(),
    );
    let table = report::markdown(&rows);
    println!("{header}\n{table}");

    let summary_path = root.join("last-summary.md");
    if let Err(e) = std::fs::write(&summary_path, format!("{header}\n{table}")) {
        eprintln!("writing {}: {e}", summary_path.display());
    }
    if let Some(path) = chart_path {
        let subtitle = format!(
            "medians of {} run(s), 64 KiB writes, 2-worker runtime",
            options.runs
        );
        match chart::write_svg(&rows, &path, &subtitle) {
            Ok(()) => eprintln!("chart written to {}", path.display()),
            Err(e) => eprintln!("drawing {}: {e}", path.display()),
        }
    }
}
