//! The summary runner: every scenario, every contender, both transports,
//! in one process; prints one markdown table (medians of 5 runs, the
//! contenders taking turns) and writes it to `benches/last-summary.md`, and
//! draws `docs/benchmarks-streams.svg`.
//!
//! ```text
//! cargo run --release -p mux-benches --bin summary [-- OPTIONS] [FILTER...]
//! ```
//!
//! Options: `--quick` (1 run each, smaller sizes), `--runs N` (5; idle
//! memory at most 3), `--timeout SECS` (10, per run), `--chart PATH` (draw
//! the chart there even for a quick or filtered run; a full unfiltered run
//! draws it to `docs/benchmarks-streams.svg`). A FILTER keeps the cases whose
//! `name/transport` contains it, e.g. `bulk`, `round-trip`, `/tcp`.

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

use mux_benches::runner::{self, Options};
use mux_benches::{chart, report};

/// Counts live heap bytes for the idle-memory scenario.
#[global_allocator]
static ALLOC: mux_alloc_count::CountingAlloc = mux_alloc_count::CountingAlloc::new();

const USAGE: &str =
    "usage: summary [--quick] [--runs N] [--timeout SECS] [--chart PATH] [FILTER...]";

/// Parses the command line: the options and an explicit chart path.
fn parse_args() -> Result<(Options, Option<PathBuf>), String> {
    let mut options = Options::default();
    let mut chart = None;
    let mut runs = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--runs" => {
                runs = Some(
                    value("--runs")?
                        .parse()
                        .map_err(|e| format!("--runs: {e}"))?,
                )
            }
            "--timeout" => {
                let secs: f64 = value("--timeout")?
                    .parse()
                    .map_err(|e| format!("--timeout: {e}"))?;
                options.timeout = Duration::from_secs_f64(secs);
            }
            "--chart" => chart = Some(PathBuf::from(value("--chart")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            filter => options.filters.push(filter.to_owned()),
        }
    }
    options.runs = runs.unwrap_or(if options.quick {
        1
    } else {
        runner::DEFAULT_RUNS
    });
    Ok((options, chart))
}

fn main() {
    let (options, chart_path) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    mux_benches::measure::warm_allocator();
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
         ↑ higher is better, ↓ lower is better; ratios are mux-yamux-lite ÷ the other (\"direct\": its `Config::direct_writes` variant).\n",
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
