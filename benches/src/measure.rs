//! Running one measurement: a fresh tokio runtime per run, a time bound,
//! and the outcome.
//!
//! Every run gets its own runtime, which is shut down afterwards, so tasks a
//! stalled contender leaves behind cannot slow the next run.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// The default bound on one run: 20 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

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
