//! Bulk and concurrent throughput: `streams` streams opened at once, each
//! writing `per_stream` bytes in 64 KiB writes and then FIN; the peer reads
//! every stream to EOF. The clock runs from the first open to the last EOF.
//! Writers keep their streams until then (see [`pump::write_then_close`]).

use std::io;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::contender::{Acceptor, Opener};
use crate::measure::join_error;
use crate::{pump, CHUNK};

/// Runs one transfer in 64 KiB writes and returns its duration and the
/// acceptor (so that a caller can run more on the same connection).
pub async fn transfer<O: Opener, A: Acceptor>(
    opener: &O,
    acceptor: A,
    streams: usize,
    per_stream: usize,
) -> io::Result<(Duration, A)> {
    transfer_in(opener, acceptor, streams, per_stream, CHUNK).await
}

/// [`transfer`] in application writes of `write` bytes (at most 64 KiB).
pub async fn transfer_in<O: Opener, A: Acceptor>(
    opener: &O,
    mut acceptor: A,
    streams: usize,
    per_stream: usize,
    write: usize,
) -> io::Result<(Duration, A)> {
    let start = Instant::now();
    let server = tokio::spawn(async move {
        let mut readers = JoinSet::new();
        for _ in 0..streams {
            let stream = acceptor.accept().await?;
            readers.spawn(pump::drain(stream));
        }
        while let Some(read) = readers.join_next().await {
            let read = read.map_err(join_error)??;
            if read != per_stream {
                return Err(io::Error::other(format!(
                    "a stream delivered {read} of {per_stream} bytes"
                )));
            }
        }
        Ok(acceptor)
    });
    let mut writers = JoinSet::new();
    for _ in 0..streams {
        let stream = opener.open().await?;
        writers.spawn(pump::write_then_close(stream, per_stream, write));
    }
    let mut finished = Vec::with_capacity(streams);
    while let Some(written) = writers.join_next().await {
        finished.push(written.map_err(join_error)??);
    }
    let acceptor = server.await.map_err(join_error)??;
    let elapsed = start.elapsed();
    drop(finished);
    Ok((elapsed, acceptor))
}

/// MiB/s of `bytes` moved in `elapsed`.
pub fn mib_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / crate::MIB as f64 / elapsed.as_secs_f64().max(1e-9)
}
