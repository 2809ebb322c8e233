//! Running one measurement: a fresh tokio runtime per run, a time bound,
//! and the outcome.
//!
//! Every run gets its own runtime, which is shut down afterwards, so tasks a
//! stalled contender leaves behind cannot slow the next run.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// The default bound on one run: 10 s. The slowest run that finishes takes
/// under 1 s here (tokio-yamux, 10,000 streams over TCP); a stalled one
/// waits out the bound, and tokio-yamux stalls in eight cases.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which runtime a measurement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Multi-thread, 2 worker threads (throughput scenarios).
    MultiThread,
    /// Current-thread (round trip).
    CurrentThread,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// It finished with this result.
    Done(T),
    /// It did not finish within the time bound.
    Stalled,
    /// It returned an error or panicked.
    Failed(String),
}

/// Puts the allocator in the state a long-running process has, before any
/// contender runs. glibc serves allocations above a threshold (128 KiB at
/// start) with fresh `mmap`s, each paid for in page faults, and raises the
/// threshold to the size of the first such block freed. Without this, the
/// first contender whose code frees a large block leaves every later one a
/// warmer allocator: `yamux` measured 2.5–3.2 GiB/s in bulk over duplex
/// alone in a process and 9 GiB/s after one 1 MiB block was freed (ours
/// was unchanged), so the order of contenders decided the ratio. Harmless
/// with other allocators.
pub fn warm_allocator() {
    let block = std::hint::black_box(vec![1u8; WARM_BLOCK]);
    drop(block);
}

/// Larger than any buffer the scenarios allocate at once (the in-memory
/// pipe's 1 MiB buffer included), and within glibc's 32 MiB ceiling.
const WARM_BLOCK: usize = 4 << 20;

/// Builds a runtime of `flavor`.
pub fn runtime(flavor: Flavor) -> tokio::runtime::Runtime {
    let mut builder = match flavor {
        Flavor::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build().expect("tokio runtime")
}

/// Runs `make()` on a fresh runtime of `flavor`, bounded by `timeout`, then
/// shuts the runtime down (dropping every task it still has).
pub fn run<T, F, Fut>(flavor: Flavor, timeout: Duration, make: F) -> Outcome<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let rt = runtime(flavor);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async { tokio::time::timeout(timeout, make()).await })
    }));
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(Ok(Ok(value))) => Outcome::Done(value),
        Ok(Ok(Err(e))) => Outcome::Failed(e.to_string()),
        Ok(Err(_elapsed)) => Outcome::Stalled,
        Err(panic) => Outcome::Failed(panic_message(&panic)),
    }
}

/// Runs `make()` `runs` times on one 2-worker runtime, after warming the
/// allocator, and returns each run's figure: the opposite of [`run`], for
/// steadier figures on a noisy machine (`benches/examples`).
pub fn repeat_warm<F, Fut>(runs: usize, mut make: F) -> io::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<f64>>,
{
    warm_allocator();
    let rt = runtime(Flavor::MultiThread);
    (0..runs.max(1)).map(|_| rt.block_on(make())).collect()
}

/// [`repeat_warm`], but each run on a fresh runtime as the summary does
/// (bounded by 10 s), to tell what a fresh runtime costs from the rest.
pub fn repeat_fresh<F, Fut>(runs: usize, mut make: F) -> io::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<f64>>,
{
    warm_allocator();
    (0..runs.max(1))
        .map(
            |_| match run(Flavor::MultiThread, Duration::from_secs(10), &mut make) {
                Outcome::Done(figure) => Ok(figure),
                Outcome::Stalled => Err(io::Error::other("stalled")),
                Outcome::Failed(e) => Err(io::Error::other(e)),
            },
        )
        .collect()
}

/// How a bench example ends: on success it prints the line `line` makes
/// from the median and every figure (to no decimals, comma-separated), on
/// failure `who: error`; returns the process's exit code.
pub fn report_figures(
    figures: io::Result<Vec<f64>>,
    who: &str,
    line: impl FnOnce(f64, &str) -> String,
) -> std::process::ExitCode {
    match figures {
        Ok(figures) => {
            let all: Vec<String> = figures.iter().map(|f| format!("{f:.0}")).collect();
            println!("{}", line(crate::runner::median(figures), &all.join(", ")));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{who}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The message of a caught panic.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_owned()
    }
}

/// Turns a task's join error into an I/O error.
pub fn join_error(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("task failed: {e}"))
}
