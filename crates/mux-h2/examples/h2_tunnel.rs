//! A multiplexer inside an HTTP/2 tunnel: mux-yamux-lite over one `H2Conn`.
//!
//! Starts a hyper HTTP/2 server on 127.0.0.1:0 (`mux_h2::serve`) whose
//! handler runs a mux-yamux-lite server over each tunnel and echoes every
//! stream. The client opens one tunnel (HTTP/2 CONNECT by default), runs a
//! mux-yamux-lite client over it, pushes deterministic pseudo-random data
//! through N streams at once and checks every echoed byte, then times K
//! small request/response round trips on one stream, and prints a summary.
//!
//! ```text
//! cargo run --release --example h2_tunnel -p mux-h2
//! cargo run --release --example h2_tunnel -p mux-h2 -- --streams 16 --bytes-per-stream 1MiB --mode post
//! ```
//!
//! Options: `--streams N` (64), `--bytes-per-stream BYTES` (4 MiB; a `K`,
//! `KiB`, `M`, `MiB`, `G` or `GiB` suffix is binary), `--mode
//! connect|post|upgrade` (connect), `--rtt-samples K` (1000); `--help`
//! explains them. Exits with a non-zero status if any echo differs.

// A command-line demo: it reports on stdout/stderr, and its size and
// throughput arithmetic works on values far below any overflow.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::arithmetic_side_effects
)]

use std::error::Error;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mux_h2::{Connector, H2Conn, Mode};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

type BoxError = Box<dyn Error + Send + Sync>;

const MIB: u64 = 1024 * 1024;

/// Size of each write, and of each chunk the reader checks.
const CHUNK: usize = 64 * 1024;

/// Size of each round-trip message.
const RTT_MESSAGE: usize = 64;

/// How long the final graceful close may take before it is abandoned.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A multiplexer inside an HTTP tunnel: an HTTP/2 server and client on
/// 127.0.0.1, one exchange turned into a connection, mux-yamux-lite over
/// it, STREAMS streams pushing verified data at once, then timed round
/// trips on one stream. Exits 1 if any echo differs.
#[derive(Parser, Debug)]
#[command(name = "h2_tunnel")]
struct Options {
    /// Streams pushing data at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    streams: u64,
    /// Bytes each stream sends (and gets back); a K, KiB, M, MiB, G or GiB
    /// suffix is binary: 4MiB = 4194304.
    #[arg(long, value_name = "BYTES", default_value = "4MiB", value_parser = parse_bytes)]
    bytes_per_stream: u64,
    /// How the tunnel is opened.
    #[arg(long, value_enum, default_value_t = ModeArg::Connect)]
    mode: ModeArg,
    /// Timed 64-byte round trips on one stream after the bulk phase.
    #[arg(long, value_name = "K", default_value_t = 1000)]
    rtt_samples: usize,
}

/// [`Mode`] as a command-line value.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    /// HTTP/2 CONNECT.
    Connect,
    /// An HTTP/2 POST with streaming request and response bodies.
    Post,
    /// An HTTP/1.1 `Upgrade: mux-tunnel`.
    Upgrade,
}

impl ModeArg {
    fn mode(self) -> Mode {
        match self {
            Self::Connect => Mode::Connect,
            Self::Post => Mode::Post,
            Self::Upgrade => Mode::Http1Upgrade,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Post => "post",
            Self::Upgrade => "upgrade",
        }
    }
}

/// `4194304`, `4M`, `4MiB`, `512k`, ...: binary suffixes.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let unit: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => MIB,
        "g" | "gib" | "gb" => 1024 * MIB,
        other => return Err(format!("unknown size suffix {other:?}")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("{text}: too large"))
}

/// The tunnel handler: a mux-yamux-lite server over the tunnel, echoing
/// every stream until the client closes the connection.
async fn serve_tunnel(conn: H2Conn) {
    let mux = Connection::new(conn, Role::Server, Config::default());
    while let Ok(stream) = mux.accept_stream().await {
        tokio::spawn(echo(stream));
    }
}

/// Copies a stream back to itself until EOF, then closes the write side.
async fn echo(stream: Stream) -> std::io::Result<u64> {
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::with_capacity(CHUNK, r);
    let n = tokio::io::copy_buf(&mut r, &mut w).await?;
    w.shutdown().await?;
    Ok(n)
}

/// The deterministic pseudo-random chunks of stream `index`: writer and
/// reader each run one generator, so nothing is kept in memory.
struct Chunks {
    rng: fastrand::Rng,
    left: u64,
    buf: Vec<u8>,
}

impl Chunks {
    fn new(index: usize, len: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(0x6832_7475_6e6e_656c ^ index as u64),
            left: len,
            buf: vec![0; CHUNK],
        }
    }

    /// The next chunk, or `None` at the end.
    fn next_chunk(&mut self) -> Option<&[u8]> {
        if self.left == 0 {
            return None;
        }
        let n = usize::try_from(self.left).map_or(CHUNK, |left| left.min(CHUNK));
        self.left -= n as u64;
        let chunk = self.buf.get_mut(..n)?;
        self.rng.fill(chunk);
        Some(chunk)
    }
}

/// Sends stream `index`'s data on a new stream and checks the echo chunk by
/// chunk, advancing `progress` by each verified chunk. Returns whether the
/// echo matched exactly (same bytes, then EOF).
async fn push_stream(
    mux: Connection,
    index: usize,
    len: u64,
    progress: ProgressBar,
) -> Result<bool, BoxError> {
    let stream = mux.open_stream().await?;
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = async move {
        let mut chunks = Chunks::new(index, len);
        while let Some(chunk) = chunks.next_chunk() {
            w.write_all(chunk).await?;
        }
        w.shutdown().await
    };
    let reader = async move {
        let mut expected = Chunks::new(index, len);
        let mut got = vec![0; CHUNK];
        let mut matched = true;
        while let Some(want) = expected.next_chunk() {
            let Some(got) = got.get_mut(..want.len()) else {
                return Ok(false);
            };
            if let Err(e) = r.read_exact(got).await {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    progress.suspend(|| eprintln!("stream {index}: echo ended early"));
                    return Ok(false);
                }
                return Err(e);
            }
            // After a mismatch, keep draining: a reader that stopped would
            // stall the echo and so this stream's writer.
            if matched && got != want {
                progress.suspend(|| eprintln!("stream {index}: echoed bytes differ"));
                matched = false;
            }
            progress.inc(want.len() as u64);
        }
        // Nothing may follow the data.
        let mut extra = [0u8; 1];
        if r.read(&mut extra).await? != 0 {
            progress.suspend(|| eprintln!("stream {index}: echo longer than sent"));
            return Ok(false);
        }
        Ok::<_, std::io::Error>(matched)
    };
    let (wrote, verified) = tokio::join!(writer, reader);
    wrote?;
    Ok(verified?)
}

/// `K` request/response round trips of [`RTT_MESSAGE`] bytes on one stream.
/// Returns the sorted round-trip times and whether every reply matched.
async fn time_round_trips(
    mux: &Connection,
    samples: usize,
    progress: &ProgressBar,
) -> Result<(Vec<Duration>, bool), BoxError> {
    let mut stream = mux.open_stream().await?;
    let mut times = Vec::with_capacity(samples);
    let mut verified = true;
    let mut message = [0u8; RTT_MESSAGE];
    let mut reply = [0u8; RTT_MESSAGE];
    for i in 0..samples {
        // Each message differs, so a stale reply would not match.
        for (j, b) in message.iter_mut().enumerate() {
            *b = (i.wrapping_mul(31).wrapping_add(j)) as u8;
        }
        let started = Instant::now();
        stream.write_all(&message).await?;
        stream.read_exact(&mut reply).await?;
        times.push(started.elapsed());
        verified &= reply == message;
        progress.inc(1);
    }
    stream.shutdown().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    verified &= rest.is_empty();
    times.sort_unstable();
    Ok((times, verified))
}

/// The `p`-th percentile (0..=100) of sorted `times`, nearest rank.
fn percentile(times: &[Duration], p: usize) -> Option<Duration> {
    let rank = (times.len() * p).div_ceil(100).max(1);
    times.get(rank - 1).copied()
}

fn micros(d: Option<Duration>) -> String {
    d.map_or_else(
        || "no samples".to_owned(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e6),
    )
}

fn bar(len: u64, template: &str) -> Result<ProgressBar, BoxError> {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(template)?.progress_chars("=> "));
    Ok(bar)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match run().await {
        Ok(true) => {}
        // The table already says "verified: no".
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("h2_tunnel: {e}");
            std::process::exit(2);
        }
    }
}

/// Runs the demo; `Ok(false)` when an echo did not match.
async fn run() -> Result<bool, BoxError> {
    let options = Options::parse();
    let streams = usize::try_from(options.streams)?;
    let total = options
        .bytes_per_stream
        .checked_mul(options.streams)
        .ok_or("--streams × --bytes-per-stream is too large")?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(mux_h2::serve(listener, serve_tunnel));

    let url = format!("http://{addr}/tunnel");
    let (tunnel, response) = Connector::new()
        .mode(options.mode.mode())
        .connect(url.as_str())
        .await?;
    println!(
        "tunnel to {url} opened by {}: HTTP status {}; {} streams × {} bytes each way",
        options.mode.name(),
        response.status,
        options.streams,
        options.bytes_per_stream
    );
    let mux = Connection::new(tunnel, Role::Client, Config::default());

    // Bulk phase: every stream at once.
    let progress = bar(
        total,
        "{spinner} echo  [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} \
         ({binary_bytes_per_sec}, eta {eta})",
    )?;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..streams {
        tasks.spawn(push_stream(
            mux.clone(),
            index,
            options.bytes_per_stream,
            progress.clone(),
        ));
    }
    let mut verified = true;
    let mut failures = 0usize;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(ok)) => verified &= ok,
            Ok(Err(e)) => {
                progress.suspend(|| eprintln!("stream failed: {e}"));
                failures += 1;
                verified = false;
            }
            Err(e) => {
                progress.suspend(|| eprintln!("stream task failed: {e}"));
                failures += 1;
                verified = false;
            }
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();

    // Round-trip phase: one stream, one small message at a time.
    let progress = bar(
        options.rtt_samples as u64,
        "{spinner} rtt   [{elapsed_precise}] [{wide_bar}] {pos}/{len}",
    )?;
    let (times, rtt_ok) = match time_round_trips(&mux, options.rtt_samples, &progress).await {
        Ok(result) => result,
        Err(e) => {
            progress.suspend(|| eprintln!("round trips failed: {e}"));
            (Vec::new(), false)
        }
    };
    progress.finish_and_clear();
    verified &= rtt_ok;

    if tokio::time::timeout(CLOSE_TIMEOUT, mux.close())
        .await
        .is_err()
    {
        eprintln!("closing the muxed connection timed out");
    }
    server.abort();

    let secs = elapsed.as_secs_f64();
    let mib_per_s = if secs > 0.0 {
        total as f64 / MIB as f64 / secs
    } else {
        f64::INFINITY
    };
    let rows = [
        ("mode", options.mode.name().to_owned()),
        ("streams", options.streams.to_string()),
        (
            "bytes",
            format!("{total} ({:.1} MiB each way)", total as f64 / MIB as f64),
        ),
        ("elapsed", format!("{secs:.3} s")),
        ("MiB/s", format!("{mib_per_s:.1}")),
        ("RTT samples", times.len().to_string()),
        ("RTT p50 (µs)", micros(percentile(&times, 50))),
        ("RTT p99 (µs)", micros(percentile(&times, 99))),
        ("failed streams", failures.to_string()),
        ("verified", if verified { "yes" } else { "no" }.to_owned()),
    ];
    let key_width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|(_, v)| v.chars().count())
        .max()
        .unwrap_or(0);
    let rule = format!(
        "+-{}-+-{}-+",
        "-".repeat(key_width),
        "-".repeat(value_width)
    );
    println!("{rule}");
    for (key, value) in &rows {
        println!("| {key:<key_width$} | {value:>value_width$} |");
    }
    println!("{rule}");
    Ok(verified)
}
