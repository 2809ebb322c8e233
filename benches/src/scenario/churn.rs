//! Stream churn: open a stream, write 1 byte, close the write side; the
//! peer accepts, reads to EOF and closes its side; the opener reads EOF.
//! `in_flight` such lifecycles run at a time; the figure is streams/s.
//!
//! A fifth as many lifecycles run first, untimed, on the same connection:
//! a run of 5000 takes a few milliseconds, so a cold runtime (workers
//! parking and waking, maps and pools growing) would weigh in the figure,
//! for every contender alike.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::contender::{Acceptor, Opener};
use crate::measure::join_error;

/// Untimed lifecycles run before the timed ones, as a share of `total`.
const WARMUP_DIVISOR: usize = 5;

/// Runs `total` timed stream lifecycles, `in_flight` at a time, after
/// `total / 5` untimed ones; returns the time of the timed ones.
pub async fn lifecycles<O: Opener, A: Acceptor>(
    opener: &O,
    mut acceptor: A,
    total: usize,
    in_flight: usize,
) -> io::Result<Duration> {
    let in_flight = in_flight.max(1);
    let warmup = total / WARMUP_DIVISOR;
    let server = tokio::spawn(async move {
        let mut peers = JoinSet::new();
        for _ in 0..warmup + total {
            let mut stream = acceptor.accept().await?;
            peers.spawn(async move {
                let got = read_to_eof(&mut stream).await?;
                stream.shutdown().await?;
                if got == 1 {
                    Ok(())
                } else {
                    Err(io::Error::other(format!("churn: read {got} bytes, not 1")))
                }
            });
            while let Some(done) = peers.try_join_next() {
                done.map_err(join_error)??;
            }
        }
        while let Some(done) = peers.join_next().await {
            done.map_err(join_error)??;
        }
        Ok::<_, io::Error>(())
    });
    // Every worker finishes its warm-up, then all start the timed part.
    let start_line = Arc::new(Barrier::new(in_flight + 1));
    let mut clients = JoinSet::new();
    for worker in 0..in_flight {
        let share = |n: usize| n / in_flight + usize::from(worker < n % in_flight);
        let (untimed, timed) = (share(warmup), share(total));
        let opener = opener.clone();
        let start_line = start_line.clone();
        clients.spawn(async move {
            let result = lifecycle_loop(&opener, untimed).await;
            start_line.wait().await;
            result?;
            let start = Instant::now();
            lifecycle_loop(&opener, timed).await?;
            Ok::<_, io::Error>((start, Instant::now()))
        });
    }
    start_line.wait().await;
    // The clients time themselves: this task runs on the thread that called
    // `block_on`, not on a worker, and waking it after the barrier (or after
    // the last client) takes a while that would count against the figure.
    let (mut first_start, mut last_end) = (None::<Instant>, None::<Instant>);
    while let Some(done) = clients.join_next().await {
        let (start, end) = done.map_err(join_error)??;
        first_start = Some(first_start.map_or(start, |s| s.min(start)));
        last_end = Some(last_end.map_or(end, |e| e.max(end)));
    }
    let elapsed = match (first_start, last_end) {
        (Some(start), Some(end)) => end.saturating_duration_since(start),
        _ => Duration::ZERO,
    };
    server.await.map_err(join_error)??;
    Ok(elapsed)
}

/// `count` lifecycles, one after the other, from the opening side.
async fn lifecycle_loop<O: Opener>(opener: &O, count: usize) -> io::Result<()> {
    for _ in 0..count {
        let mut stream = opener.open().await?;
        stream.write_all(b"x").await?;
        stream.shutdown().await?;
        read_to_eof(&mut stream).await?;
    }
    Ok(())
}

async fn read_to_eof<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> io::Result<usize> {
    let mut buf = [0u8; 64];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(got);
        }
        got += n;
    }
}
