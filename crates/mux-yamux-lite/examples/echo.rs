//! Echo over TCP on 127.0.0.1: a server echoes every stream of every
//! connection; a client opens STREAMS streams (default 16) on one
//! connection, sends 256 KiB on each, checks the echo, and prints a summary.
//!
//! ```text
//! cargo run --example echo -p mux-yamux-lite -- 64
//! cargo run --example echo -p mux-yamux-lite -- --help
//! ```
#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mux_core::MuxedStream;
use mux_yamux_lite::{Config, Connection, Role, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

type BoxError = Box<dyn Error + Send + Sync>;

/// Bytes each client stream sends.
const PER_STREAM: usize = 256 * 1024;

/// Echo over TCP on 127.0.0.1: a mux-yamux-lite client opens STREAMS
/// streams on one connection, sends 256 KiB on each to a server in the same
/// process that echoes every stream, and checks every byte that comes back.
#[derive(Parser)]
#[command(name = "echo")]
struct Args {
    /// Streams opened at once.
    #[arg(default_value_t = 16)]
    streams: usize,
}

/// `d` in milliseconds, for people: `11.57 ms`.
fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Accepts TCP connections and echoes every stream on each.
async fn serve(listener: TcpListener) -> Result<(), BoxError> {
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let conn = Connection::new(tcp, Role::Server, Config::default());
        tokio::spawn(async move {
            // Ends when the client closes the connection.
            while let Ok(stream) = conn.accept_stream().await {
                tokio::spawn(echo(stream));
            }
        });
    }
}

/// Copies a stream back to itself until EOF, then closes the write side.
async fn echo(stream: Stream) -> std::io::Result<u64> {
    let (mut r, mut w) = tokio::io::split(stream);
    let n = tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await?;
    Ok(n)
}

/// Sends `data` on a new stream and checks the echo.
async fn round_trip(conn: Connection, data: Arc<Vec<u8>>) -> Result<usize, BoxError> {
    let stream = conn.open_stream().await?;
    let id = stream.id();
    let (mut r, mut w) = tokio::io::split(stream);
    let mut back = Vec::with_capacity(data.len());
    let (wrote, read) = tokio::join!(
        async {
            w.write_all(&data).await?;
            w.shutdown().await
        },
        r.read_to_end(&mut back)
    );
    wrote?;
    read?;
    if back != *data {
        return Err(format!("stream {id}: echo differs").into());
    }
    Ok(back.len())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let streams = Args::parse().streams;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener));

    let data: Arc<Vec<u8>> = Arc::new((0..PER_STREAM).map(|i| (i % 251) as u8).collect());
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let conn = Connection::new(tcp, Role::Client, Config::default());

    let mut tasks = JoinSet::new();
    for _ in 0..streams {
        tasks.spawn(round_trip(conn.clone(), data.clone()));
    }
    let mut bytes = 0;
    while let Some(result) = tasks.join_next().await {
        bytes += result??;
    }
    let elapsed = started.elapsed();
    let rtt = conn.rtt();
    conn.close().await?;
    server.abort();

    // The latest round trip measured by ping: none until a ping came back.
    let rtt = rtt.map_or_else(|| "unknown".to_owned(), millis);
    println!(
        "echoed {streams} streams over {addr}: {bytes} bytes ({:.1} MiB) sent and verified \
         in {}; round-trip time {rtt}",
        bytes as f64 / f64::from(1u32 << 20),
        millis(elapsed),
    );
    Ok(())
}
