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

use mux_benches::cli::{self, Words};
use mux_benches::{measure, scenario::throughput, CHUNK, KIB, MIB};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str = "usage: pipe_limit MIB WRITE_KIB READ_KIB RUNS";

/// What to run, from the command line.
struct Case {
    total: usize,
    write: usize,
    read: usize,
    runs: usize,
}

fn parse() -> Option<Case> {
    let mut words = Words::from_env();
    let total = words.number()?.checked_mul(MIB)?;
    let write = words.number()?.checked_mul(KIB).filter(|w| *w > 0)?;
    let read = words.number()?.checked_mul(KIB).filter(|r| *r > 0)?;
    let runs = words.count()?;
    words.end()?;
    Some(Case {
        total,
        write,
        read,
        runs,
    })
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
    let Some(case) = parse() else {
        return cli::usage(USAGE);
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
