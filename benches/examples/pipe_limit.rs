//! What one in-memory pipe can carry: one writer and one reader on a single
//! `tokio::io::duplex(1 MiB)`, no muxer, the way a muxer's two drivers use
//! it. The writer hands over already-framed bytes in vectored writes of up
//! to WRITE_KIB (a muxer's write queue), the reader reads into a block of
//! READ_KIB (a muxer's read block) and drops it. The pipe copies each byte
//! in and out under one lock, so its two ends do not overlap; a muxer over
//! one pipe cannot beat this figure, while raw's many pipes in the
//! concurrent scenarios are not bound by it.
//!
//! ```sh
//! cargo run --release -p mux-benches --example pipe_limit -- MIB WRITE_KIB READ_KIB RUNS
//! cargo run --release -p mux-benches --example pipe_limit -- 25 1024 256 15
//! ```
//!
//! `--help` explains the arguments.
// A measurement tool: its arithmetic and slicing are on local sizes.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use std::io::{self, IoSlice};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use mux_benches::{cli, measure, scenario::throughput, CHUNK, KIB, MIB};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one `tokio::io::duplex(1 MiB)` pipe carries with one writer and
/// one reader and no muxer; prints the median and every run in MiB/s.
#[derive(Parser)]
struct Args {
    /// MiB moved per run.
    mib: usize,
    /// Largest vectored write, in KiB (64 KiB slices).
    #[arg(value_parser = cli::count)]
    write_kib: usize,
    /// Size of the reader's block, in KiB.
    #[arg(value_parser = cli::count)]
    read_kib: usize,
    /// Runs.
    #[arg(value_parser = cli::count)]
    runs: usize,
}

/// What to run, in bytes.
struct Case {
    total: usize,
    write: usize,
    read: usize,
    runs: usize,
}

impl Case {
    /// The case `args` describe, or why the sizes are too large.
    fn new(args: &Args) -> Result<Self, &'static str> {
        let bytes = |n: usize, unit: usize| n.checked_mul(unit).ok_or("a size is too large");
        Ok(Self {
            total: bytes(args.mib, MIB)?,
            write: bytes(args.write_kib, KIB)?,
            read: bytes(args.read_kib, KIB)?,
            runs: args.runs,
        })
    }
}

/// One transfer of `case.total` bytes; MiB/s.
async fn once(case: &Case) -> io::Result<f64> {
    let (mut tx, mut rx) = tokio::io::duplex(MIB);
    let payload = vec![7u8; CHUNK];
    let (total, write, read) = (case.total, case.write, case.read);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut left = total;
        while left > 0 {
            // As a write queue offers it: 64 KiB slices up to `write` bytes.
            let want = left.min(write);
            let slices: Vec<IoSlice<'_>> = (0..want.div_ceil(CHUNK))
                .map(|i| {
                    let len = want.saturating_sub(i * CHUNK).min(CHUNK);
                    IoSlice::new(&payload[..len])
                })
                .collect();
            let n = tx.write_vectored(&slices).await?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            left = left.saturating_sub(n);
        }
        tx.shutdown().await
    });
    let mut block = vec![0u8; read];
    let mut got = 0usize;
    loop {
        let n = rx.read(&mut block).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    writer.await.map_err(measure::join_error)??;
    if got != total {
        return Err(io::Error::other(format!("read {got} of {total} bytes")));
    }
    Ok(throughput::mib_per_s(total, start.elapsed()))
}

fn main() -> ExitCode {
    let case = match Case::new(&Args::parse()) {
        Ok(case) => case,
        Err(e) => {
            eprintln!("pipe_limit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let figures = measure::repeat_warm(case.runs, || once(&case));
    measure::report_figures(figures, "pipe_limit", |median, all| {
        format!(
            "one pipe, {} MiB in writes of {} KiB, reads of {} KiB: median {median:.0} MiB/s ({all})",
            case.total / MIB,
            case.write / KIB,
            case.read / KIB,
        )
    })
}
