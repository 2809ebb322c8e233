//! Quick throughput check over `tokio::io::duplex(1 MiB)`: raw pipe versus
//! mux-yamux-lite, 1 stream × 256 MiB and 100 streams × 1 MiB, 64 KiB writes.
//! The criterion benches are the reference; this is a fast smoke number.
//!
//! ```text
//! cargo run --release --example throughput -p mux-yamux-lite
//! cargo run --release --example throughput -p mux-yamux-lite -- --window 1048576
//! ```
//!
//! `--window BYTES` and `--max-frame BYTES` change the `Config` for quick
//! experiments; `--help` lists them.
// A measurement tool, not library code: panicking on a broken setup is the
// right reaction, and the arithmetic is on small local sizes.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use clap::Parser;
use mux_yamux_lite::{Config, Connection, Role};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 64 * 1024;

/// Quick throughput check over `tokio::io::duplex(1 MiB)`: a raw pipe per
/// stream against mux-yamux-lite over one pipe, 1 stream × 256 MiB and 100
/// streams × 1 MiB, in 64 KiB writes. The criterion benches and the
/// summary runner of mux-benches are the reference; this is a fast smoke
/// number.
#[derive(Parser)]
#[command(name = "throughput")]
struct Args {
    /// `Config::initial_window`: each stream's receive window, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().initial_window)]
    window: u32,
    /// `Config::max_frame_payload`: the largest DATA payload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_frame_payload)]
    max_frame: u32,
}

async fn pump_write<W: tokio::io::AsyncWrite + Unpin>(mut w: W, total: usize) {
    let buf = vec![7u8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK);
        w.write_all(&buf[..n]).await.unwrap();
        left -= n;
    }
    w.shutdown().await.unwrap();
}

async fn drain<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> usize {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return got;
        }
        got += n;
    }
}

async fn raw(streams: usize, per: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (a, b) = tokio::io::duplex(1 << 20);
        tasks.push(tokio::spawn(pump_write(a, per)));
        tasks.push(tokio::spawn(async move {
            assert_eq!(drain(b).await, per);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    mib_s(streams * per, start)
}

async fn muxed(config: &Config, streams: usize, per: usize) -> f64 {
    let (a, b) = tokio::io::duplex(1 << 20);
    let client = Connection::new(a, Role::Client, config.clone());
    let server = Connection::new(b, Role::Server, config.clone());
    let start = Instant::now();
    let acceptor = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let s = server.accept_stream().await.unwrap();
            tasks.push(tokio::spawn(async move { assert_eq!(drain(s).await, per) }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        server
    });
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let s = client.open_stream().await.unwrap();
        tasks.push(tokio::spawn(pump_write(s, per)));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let _server = acceptor.await.unwrap();
    mib_s(streams * per, start)
}

/// The default configuration with the command line's window and frame
/// size.
fn config(args: &Args) -> Config {
    let mut c = Config::default();
    c.initial_window = args.window;
    c.max_frame_payload = args.max_frame;
    c
}

fn mib_s(bytes: usize, start: Instant) -> f64 {
    bytes as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let config = config(&Args::parse());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (streams, per) in [(1, 256 << 20), (100, 1 << 20)] {
            let r = raw(streams, per).await;
            let m = muxed(&config, streams, per).await;
            println!(
                "{streams:>4} streams x {:>4} MiB: raw {r:>7.0} MiB/s, mux {m:>7.0} MiB/s ({:.0}% of raw)",
                per >> 20,
                100.0 * m / r
            );
        }
    });
}
