//! Stream churn: open a stream, write 1 byte, close the write side; the
//! peer accepts, reads to EOF and closes its side; the opener reads EOF.
//! `in_flight` such lifecycles run at a time; the figure is streams/s.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::contender::{Acceptor, Opener};
use crate::measure::join_error;

/// Runs `total` stream lifecycles, `in_flight` at a time; returns the time.
pub async fn lifecycles<O: Opener, A: Acceptor>(
    opener: &O,
    mut acceptor: A,
    total: usize,
    in_flight: usize,
) -> io::Result<Duration> {
    let start = Instant::now();
    let server = tokio::spawn(async move {
        let mut peers = JoinSet::new();
        for _ in 0..total {
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
    let mut clients = JoinSet::new();
    for worker in 0..in_flight {
        // Spread `total` over the workers.
        let count = total / in_flight + usize::from(worker < total % in_flight);
        let opener = opener.clone();
        clients.spawn(async move {
            for _ in 0..count {
                let mut stream = opener.open().await?;
                stream.write_all(b"x").await?;
                stream.shutdown().await?;
                read_to_eof(&mut stream).await?;
            }
            Ok::<_, io::Error>(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done.map_err(join_error)??;
    }
    server.await.map_err(join_error)??;
    Ok(start.elapsed())
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
