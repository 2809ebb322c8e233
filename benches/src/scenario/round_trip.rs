//! Round trip: a 64-byte request and its 64-byte echo on one already-open
//! stream, one at a time, on a current-thread runtime; every iteration's
//! latency is recorded.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::contender::{Acceptor, BenchStream, Opener};

/// Size of a request and of its reply.
pub const MESSAGE: usize = 64;

/// Runs `warmup` untimed and then `iterations` timed round trips; returns
/// the timed latencies, sorted.
pub async fn latencies<O: Opener, A: Acceptor>(
    opener: &O,
    acceptor: A,
    warmup: usize,
    iterations: usize,
) -> io::Result<Vec<Duration>> {
    let mut stream = connect(opener, acceptor).await?;
    let mut times = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let took = once(&mut stream).await?;
        if i >= warmup {
            times.push(took);
        }
    }
    stream.shutdown().await?;
    times.sort_unstable();
    Ok(times)
}

/// Spawns a server task that echoes every message of the first stream
/// `acceptor` accepts, and opens that stream.
pub async fn connect<O: Opener, A: Acceptor>(opener: &O, mut acceptor: A) -> io::Result<O::Stream> {
    tokio::spawn(async move {
        let mut stream = acceptor.accept().await?;
        let mut buf = [0u8; MESSAGE];
        loop {
            match stream.read_exact(&mut buf).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            stream.write_all(&buf).await?;
            stream.flush().await?;
        }
    });
    opener.open().await
}

/// One timed round trip on a stream that [`connect`] opened.
pub async fn once<S: BenchStream>(stream: &mut S) -> io::Result<Duration> {
    let request = [7u8; MESSAGE];
    let mut reply = [0u8; MESSAGE];
    let start = Instant::now();
    stream.write_all(&request).await?;
    stream.flush().await?;
    stream.read_exact(&mut reply).await?;
    Ok(start.elapsed())
}

/// The `p`-th percentile (0..=100) of sorted `times`, nearest rank.
pub fn percentile(times: &[Duration], p: usize) -> Duration {
    let rank = (times.len() * p).div_ceil(100).max(1);
    times.get(rank - 1).copied().unwrap_or_default()
}
