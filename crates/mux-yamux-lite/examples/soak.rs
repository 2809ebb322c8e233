//! Soak test: random stream churn over real TCP on 127.0.0.1 between a
//! client and a server `Connection` in one process, for a given time.
//!
//! Each client worker loops: open a stream, send a header (seed, sizes,
//! ending) and pseudo-random bytes, and end the stream one of four ways:
//! a full request/response exchange, a client reset after `k` bytes, a
//! client drop after `k` bytes (the server must then see exactly `k` bytes
//! and EOF), or a server reset after `k` bytes. Every byte is checked
//! against the generator on the other side, so lost, duplicated or
//! corrupted data is caught. Every `--interval` seconds a line reports RSS
//! (`/proc/self/status` VmRSS), live streams and counters, under a legend
//! that explains the columns; the summary at the end fails (exit 1) on
//! corruption, unexpected errors, streams left in the session tables, or
//! RSS still climbing at the end: the highest sample of the last quarter
//! more than 10% above the highest of the third. A plateau passes however
//! late it came; a leak, which keeps climbing, fails. A run with fewer than
//! 4 samples in each of those quarters (shorter than about 16 intervals)
//! is too short to tell the two apart: its RSS is reported "not judged".
//!
//! ```text
//! cargo run --release --example soak -p mux-yamux-lite -- --minutes 10
//! cargo run --release --example soak -p mux-yamux-lite -- --help
//! ```
// A measurement tool, not library code: it prints its report, panics on a
// broken setup, and does arithmetic on small local counters and sizes.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mux_core::{MuxedStream, StreamError};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reset code the client uses; the server expects exactly this one.
const CLIENT_RESET: u32 = 0x5EED;
/// Reset code the server uses; the client expects exactly this one.
const SERVER_RESET: u32 = 0xBEEF;
/// Longest a single stream may take before it counts as stalled.
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);
const HEADER_LEN: usize = 21;
const CHUNK: usize = 16 * 1024;

/// How a stream ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ending {
    /// Request, FIN, full response, FIN.
    Exchange = 0,
    /// The client resets after writing `k` bytes.
    ClientReset = 1,
    /// The client drops its handle after writing `k` bytes.
    ClientDrop = 2,
    /// The server resets after reading `k` bytes.
    ServerReset = 3,
}

impl Ending {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Exchange,
            1 => Self::ClientReset,
            2 => Self::ClientDrop,
            3 => Self::ServerReset,
            _ => return None,
        })
    }
}

/// What the client tells the server first.
#[derive(Clone, Copy, Debug)]
struct Header {
    seed: u64,
    len: u32,
    k: u32,
    resp: u32,
    ending: Ending,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&self.seed.to_be_bytes());
        b[8..12].copy_from_slice(&self.len.to_be_bytes());
        b[12..16].copy_from_slice(&self.k.to_be_bytes());
        b[16..20].copy_from_slice(&self.resp.to_be_bytes());
        b[20] = self.ending as u8;
        b
    }

    fn decode(b: &[u8; HEADER_LEN]) -> Option<Self> {
        Some(Self {
            seed: u64::from_be_bytes(b[..8].try_into().ok()?),
            len: u32::from_be_bytes(b[8..12].try_into().ok()?),
            k: u32::from_be_bytes(b[12..16].try_into().ok()?),
            resp: u32::from_be_bytes(b[16..20].try_into().ok()?),
            ending: Ending::from_u8(b[20])?,
        })
    }
}

/// xorshift64*: the data generator both sides run, and the churn's dice.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Sizes spread over orders of magnitude: many small, some large.
    fn size(&mut self, max: u64) -> u64 {
        let bits = 64 - max.max(1).leading_zeros();
        let cap = 1u64 << self.below(u64::from(bits) + 1);
        self.below(cap.min(max) + 1)
    }
}

/// The byte stream a seed stands for, produced in any chunking.
struct Gen {
    rng: Rng,
    word: [u8; 8],
    used: usize,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            word: [0; 8],
            used: 8,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 8 {
                self.word = self.rng.next().to_le_bytes();
                self.used = 0;
            }
            *b = self.word[self.used];
            self.used += 1;
        }
    }

    /// Whether `got` is the next part of the stream.
    fn check(&mut self, got: &[u8], scratch: &mut Vec<u8>) -> bool {
        scratch.resize(got.len(), 0);
        self.fill(scratch);
        scratch.as_slice() == got
    }
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    exchanges: AtomicU64,
    client_resets: AtomicU64,
    client_drops: AtomicU64,
    server_resets: AtomicU64,
    bytes_verified: AtomicU64,
    corrupt: AtomicU64,
    errors: AtomicU64,
    stalled: AtomicU64,
    live_client: AtomicU64,
    live_server: AtomicU64,
}

impl Counters {
    fn error(&self, side: &str, what: &str, e: &dyn std::fmt::Display) {
        let n = self.errors.fetch_add(1, Relaxed);
        if n < 20 {
            eprintln!("soak: {side}: unexpected {what}: {e}");
        }
    }

    fn corrupt(&self, side: &str, h: &Header, at: u64) {
        let n = self.corrupt.fetch_add(1, Relaxed);
        if n < 20 {
            eprintln!("soak: {side}: CORRUPT data at byte {at} of {h:?}");
        }
    }
}

/// Decrements a live counter when the stream's task ends.
struct Live<'a>(&'a AtomicU64);

impl<'a> Live<'a> {
    fn new(c: &'a AtomicU64) -> Self {
        c.fetch_add(1, Relaxed);
        Self(c)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

fn reset_code(e: &io::Error) -> Option<(u32, bool)> {
    let se = StreamError::from_io(e)?;
    Some((se.reset_code()?, se.is_remote()))
}

/// Writes `n` bytes of `gen`'s stream.
async fn send(stream: &mut Stream, gen: &mut Gen, n: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut left = n;
    while left > 0 {
        let m = left.min(buf.len() as u64) as usize;
        gen.fill(&mut buf[..m]);
        stream.write_all(&buf[..m]).await?;
        left -= m as u64;
    }
    Ok(())
}

/// How a verified receive ended.
enum Received {
    /// EOF after this many bytes (all matching).
    Eof(u64),
    /// An error after this many bytes (all matching).
    Error(u64, io::Error),
    /// A byte did not match at this offset.
    Corrupt(u64),
    /// More than `limit` bytes arrived.
    TooMuch,
}

/// Reads until EOF, an error, or `stop_at` bytes, checking every byte.
async fn receive(stream: &mut Stream, seed: u64, limit: u64, stop_at: Option<u64>) -> Received {
    let mut gen = Gen::new(seed);
    let mut buf = vec![0u8; CHUNK];
    let mut scratch = Vec::with_capacity(CHUNK);
    let mut got = 0u64;
    loop {
        if stop_at.is_some_and(|s| got >= s) {
            return Received::Eof(got);
        }
        let want = stop_at.map_or(buf.len() as u64, |s| (s - got).min(buf.len() as u64));
        match stream.read(&mut buf[..want as usize]).await {
            Ok(0) => return Received::Eof(got),
            Ok(n) => {
                if got + n as u64 > limit {
                    return Received::TooMuch;
                }
                if !gen.check(&buf[..n], &mut scratch) {
                    let at = buf[..n]
                        .iter()
                        .zip(&scratch)
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    return Received::Corrupt(got + at as u64);
                }
                got += n as u64;
            }
            Err(e) => return Received::Error(got, e),
        }
    }
}

/// The server side of one stream.
async fn serve_stream(mut stream: Stream, c: Arc<Counters>) {
    let _live = Live::new(&c.live_server);
    let mut hb = [0u8; HEADER_LEN];
    if let Err(e) = stream.read_exact(&mut hb).await {
        // Only a client reset may cut the header short.
        if reset_code(&e) != Some((CLIENT_RESET, true)) {
            c.error("server", "header read error", &e);
        }
        return;
    }
    let Some(h) = Header::decode(&hb) else {
        c.error("server", "header", &"bad header");
        return;
    };
    let stop = (h.ending == Ending::ServerReset).then_some(u64::from(h.k));
    match receive(&mut stream, h.seed, u64::from(h.len), stop).await {
        Received::Corrupt(at) => return c.corrupt("server", &h, at),
        Received::TooMuch => return c.corrupt("server", &h, u64::from(h.len)),
        Received::Eof(got) => {
            c.bytes_verified.fetch_add(got, Relaxed);
            let expected = match h.ending {
                Ending::Exchange => h.len,
                Ending::ClientDrop | Ending::ServerReset => h.k,
                Ending::ClientReset => {
                    c.error("server", "EOF on a client reset stream", &got);
                    return;
                }
            };
            if got != u64::from(expected) {
                // Bytes written before FIN (or before a drop) were lost.
                c.error(
                    "server",
                    "short stream",
                    &format!("{got} of {expected} in {h:?}"),
                );
                return;
            }
        }
        Received::Error(got, e) => {
            c.bytes_verified.fetch_add(got, Relaxed);
            if !(h.ending == Ending::ClientReset && reset_code(&e) == Some((CLIENT_RESET, true))) {
                c.error("server", "read error", &e);
            }
            return;
        }
    }
    match h.ending {
        Ending::Exchange => {
            let mut gen = Gen::new(!h.seed);
            let mut buf = vec![0u8; CHUNK];
            let sent = send(&mut stream, &mut gen, u64::from(h.resp), &mut buf).await;
            if let Err(e) = sent.and(stream.shutdown().await) {
                c.error("server", "response write", &e);
            }
        }
        Ending::ServerReset => stream.reset_with(SERVER_RESET),
        Ending::ClientDrop | Ending::ClientReset => {}
    }
}

/// The client side of one stream.
async fn client_stream(conn: &Connection, rng: &mut Rng, max: u64, c: &Counters) {
    let ending = Ending::from_u8(rng.below(4) as u8).unwrap_or(Ending::Exchange);
    let len = rng.size(max);
    let h = Header {
        seed: rng.next(),
        len: len as u32,
        k: rng.below(len + 1) as u32,
        resp: rng.size(max) as u32,
        ending,
    };
    let mut stream = match conn.open_stream().await {
        Ok(s) => s,
        Err(e) => return c.error("client", "open", &e),
    };
    c.opened.fetch_add(1, Relaxed);
    let _live = Live::new(&c.live_client);
    let mut gen = Gen::new(h.seed);
    let mut buf = vec![0u8; CHUNK];
    let header = stream.write_all(&h.encode()).await;
    match h.ending {
        Ending::Exchange => {
            let wrote = header
                .and(send(&mut stream, &mut gen, u64::from(h.len), &mut buf).await)
                .and(stream.shutdown().await);
            if let Err(e) = wrote {
                return c.error("client", "request write", &e);
            }
            match receive(&mut stream, !h.seed, u64::from(h.resp), None).await {
                Received::Eof(got) if got == u64::from(h.resp) => {
                    c.bytes_verified.fetch_add(got, Relaxed);
                    c.exchanges.fetch_add(1, Relaxed);
                }
                Received::Eof(got) => {
                    c.error("client", "short response", &format!("{got} of {h:?}"));
                }
                Received::Error(_, e) => c.error("client", "response read", &e),
                Received::Corrupt(at) => c.corrupt("client", &h, at),
                Received::TooMuch => c.corrupt("client", &h, u64::from(h.resp)),
            }
        }
        Ending::ClientReset | Ending::ClientDrop => {
            let wrote = header.and(send(&mut stream, &mut gen, u64::from(h.k), &mut buf).await);
            if let Err(e) = wrote {
                return c.error("client", "write before reset/drop", &e);
            }
            if h.ending == Ending::ClientReset {
                stream.reset_with(CLIENT_RESET);
                c.client_resets.fetch_add(1, Relaxed);
            } else {
                drop(stream);
                c.client_drops.fetch_add(1, Relaxed);
            }
        }
        Ending::ServerReset => {
            // The server resets once it has read `k` bytes; writes past that
            // point may fail, and the read must end in that reset.
            let wrote = header
                .and(send(&mut stream, &mut gen, u64::from(h.len), &mut buf).await)
                .and(stream.shutdown().await);
            let err = match wrote {
                Err(e) => e,
                Ok(()) => match stream.read(&mut buf).await {
                    Err(e) => e,
                    Ok(n) => {
                        let got = format!("read gave {n} bytes instead of the reset");
                        return c.error("client", "server reset", &got);
                    }
                },
            };
            if reset_code(&err) == Some((SERVER_RESET, true)) {
                c.server_resets.fetch_add(1, Relaxed);
            } else {
                c.error("client", "server reset", &err);
            }
        }
    }
}

/// Resident set size in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Soak test: random stream churn (whole exchanges, resets and dropped
/// streams from both sides) over TCP on 127.0.0.1 between two
/// mux-yamux-lite connections in this process, every byte checked. Samples
/// RSS and stream counts as it goes; exits 1 on corruption, unexpected
/// errors, stalls, leaked streams or RSS still climbing at the end of a
/// run long enough to tell.
#[derive(Parser)]
#[command(name = "soak")]
struct Args {
    /// How long to run, in minutes (fractions allowed).
    #[arg(long, default_value_t = 1.0, value_parser = minutes)]
    minutes: f64,
    /// Seconds between samples.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Client workers, each with one stream at a time.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// Largest request or response, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_size: u64,
    /// Seed of the random churn [default: from the clock; printed at the start].
    #[arg(long)]
    seed: Option<u64>,
}

/// Parses a positive, finite number of minutes.
fn minutes(text: &str) -> Result<f64, String> {
    let m: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if m.is_finite() && m > 0.0 && m < 1e6 {
        Ok(m)
    } else {
        Err("must be a positive number of minutes".to_owned())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let interval = Duration::from_secs(args.interval);
    println!(
        "soak: {} of churn over TCP, {} workers, requests and responses up to {} bytes, \
         seed {seed} (--seed {seed} repeats it), a sample every {} s",
        for_people(total),
        args.concurrency,
        args.max_size,
        args.interval
    );
    let judged_from = interval * MIN_INTERVALS_FOR_VERDICT;
    if total < judged_from {
        println!(
            "soak: this run may be too short to judge RSS growth, which needs \
             {MIN_SAMPLES_PER_QUARTER} samples in each of the last two quarters: runs of {} \
             ({MIN_INTERVALS_FOR_VERDICT} intervals) or more always have them",
            for_people(judged_from)
        );
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client_tcp, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client_tcp, (server_tcp, _)) = (client_tcp.unwrap(), accepted.unwrap());
    client_tcp.set_nodelay(true).unwrap();
    server_tcp.set_nodelay(true).unwrap();
    let config = Config::default();
    let client = Connection::new(client_tcp, Role::Client, config.clone());
    let server = Connection::new(server_tcp, Role::Server, config);

    let c = Arc::new(Counters::default());
    let acceptor = {
        let (server, c) = (server.clone(), c.clone());
        tokio::spawn(async move {
            while let Ok(stream) = server.accept_stream().await {
                tokio::spawn(serve_stream(stream, c.clone()));
            }
        })
    };

    let start = Instant::now();
    let deadline = start + total;
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (client, c) = (client.clone(), c.clone());
        let mut rng = Rng::new(seed ^ w.wrapping_mul(0xA24B_AED4_963E_E407));
        let max = args.max_size;
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let one = client_stream(&client, &mut rng, max, &c);
                if tokio::time::timeout(STREAM_TIMEOUT, one).await.is_err() {
                    c.stalled.fetch_add(1, Relaxed);
                    eprintln!("soak: a stream stalled for {STREAM_TIMEOUT:?}");
                }
            }
        }));
    }

    // Sampling.
    let rss_start = rss_kib();
    let mut rss_max = rss_start;
    // (fraction of the run, RSS) at every sample.
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut last_bytes = 0u64;
    let mut last_sample = start;
    let mut next = start + interval;
    println!("{LEGEND}");
    println!(
        "{:>7} {:>9} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>6} {:>7}",
        "secs",
        "rss_KiB",
        "busy_c",
        "busy_s",
        "tbl_c",
        "tbl_s",
        "opened",
        "GiB_ok",
        "MiB/s",
        "errors",
        "corrupt"
    );
    while Instant::now() < deadline {
        tokio::time::sleep_until(next.min(deadline).into()).await;
        let now = Instant::now();
        let rss = rss_kib();
        rss_max = rss_max.max(rss);
        samples.push(((now - start).as_secs_f64() / total.as_secs_f64(), rss));
        let bytes = c.bytes_verified.load(Relaxed);
        let secs = (now - last_sample).as_secs_f64().max(1e-9);
        println!(
            "{:>7.1} {:>9} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9.2} {:>9.1} {:>6} {:>7}",
            (now - start).as_secs_f64(),
            rss,
            c.live_client.load(Relaxed),
            c.live_server.load(Relaxed),
            client.stats().streams,
            server.stats().streams,
            c.opened.load(Relaxed),
            bytes as f64 / f64::from(1u32 << 30),
            (bytes - last_bytes) as f64 / secs / f64::from(1u32 << 20),
            c.errors.load(Relaxed),
            c.corrupt.load(Relaxed),
        );
        last_sample = now;
        last_bytes = bytes;
        next += interval;
    }
    let rss_end_load = rss_kib();
    rss_max = rss_max.max(rss_end_load);

    for w in workers {
        w.await.unwrap();
    }
    // Every stream must leave both session tables once its peer is done.
    let settle = Instant::now();
    while (client.stats().streams > 0 || server.stats().streams > 0)
        && settle.elapsed() < Duration::from_secs(40)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (tbl_c, tbl_s) = (client.stats().streams, server.stats().streams);
    let (cs, ss) = (client.stats(), server.stats());
    let closed = tokio::time::timeout(Duration::from_secs(40), client.close()).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), acceptor).await;

    samples.push((1.0, rss_end_load));
    // The first sample past the warm-up quarter.
    let rss_mark = samples
        .iter()
        .find(|(at, _)| *at >= 0.25)
        .map_or(rss_start, |(_, rss)| *rss);
    let trend = rss_trend(&samples);
    let errors = c.errors.load(Relaxed);
    let corrupt = c.corrupt.load(Relaxed);
    let stalled = c.stalled.load(Relaxed);
    println!("---- soak summary ({:.1} s)", start.elapsed().as_secs_f64());
    println!(
        "memory: RSS {rss_start} KiB at the start, {rss_mark} KiB after the first quarter, \
         {rss_end_load} KiB at the end, {rss_max} KiB at the highest"
    );
    let limit = MAX_LAST_QUARTER_GROWTH * 100.0;
    match trend {
        Ok(t) => println!(
            "RSS growth check: {}: the last quarter's highest RSS is {:+.1}% over the third \
             quarter's (at most {limit:+.0}% passes)",
            if t > MAX_LAST_QUARTER_GROWTH {
                "FAILED"
            } else {
                "passed"
            },
            t * 100.0
        ),
        Err([third, last]) => println!(
            "RSS growth check: not judged: the run's third and last quarters had {third} and \
             {last} samples, and at least {MIN_SAMPLES_PER_QUARTER} each are needed to tell a \
             plateau from a leak (a run of {MIN_INTERVALS_FOR_VERDICT} intervals, {} at \
             --interval {}, has them)",
            for_people(interval * MIN_INTERVALS_FOR_VERDICT),
            args.interval
        ),
    }
    println!(
        "streams: opened {}; ended as full exchanges {}, client resets {}, client drops {}, \
         server resets {}",
        c.opened.load(Relaxed),
        c.exchanges.load(Relaxed),
        c.client_resets.load(Relaxed),
        c.client_drops.load(Relaxed),
        c.server_resets.load(Relaxed),
    );
    println!(
        "data: {} bytes ({:.2} GiB) checked byte for byte; the client connection sent {} bytes \
         in {} frames and received {} bytes in {} frames",
        c.bytes_verified.load(Relaxed),
        c.bytes_verified.load(Relaxed) as f64 / f64::from(1u32 << 30),
        cs.bytes_sent,
        cs.frames_sent,
        cs.bytes_received,
        cs.frames_received,
    );
    let close = match &closed {
        Ok(Ok(())) => "clean".to_owned(),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(_) => "timed out".to_owned(),
    };
    println!(
        "problems: unexpected errors {errors}, corrupt or lost data {corrupt}, stalled streams \
         {stalled}; streams left in the session tables: client {tbl_c}, server {tbl_s}; \
         streams reset for a peer's protocol error: client {}, server {}; close: {close}",
        cs.peer_error_resets, ss.peer_error_resets,
    );
    let mut failed = Vec::new();
    if corrupt > 0 {
        failed.push("data corrupted or lost");
    }
    if errors > 0 || stalled > 0 {
        failed.push("unexpected errors or stalls");
    }
    if tbl_c > 0 || tbl_s > 0 {
        failed.push("streams leaked in the session tables");
    }
    if trend.is_ok_and(|t| t > MAX_LAST_QUARTER_GROWTH) {
        failed.push("RSS still climbing: last quarter's peak more than 10% over the third's");
    }
    if !matches!(closed, Ok(Ok(()))) {
        failed.push("close did not complete cleanly");
    }
    if !failed.is_empty() {
        println!("soak: FAIL: {}", failed.join("; "));
        std::process::exit(1);
    }
    if trend.is_ok() {
        println!("soak: PASS");
    } else {
        println!("soak: PASS, RSS growth not judged (the run is too short for it)");
    }
}

/// `d` for people: seconds up to two minutes, minutes above.
fn for_people(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else {
        format!("{:.1} min", secs / 60.0)
    }
}

/// What the columns of the sample lines mean.
const LEGEND: &str = "\
columns: secs = seconds since the start; rss_KiB = resident memory of this process (VmRSS, KiB);
  busy_c, busy_s = streams being worked on by the client and the server tasks;
  tbl_c, tbl_s = streams in the client's and the server's session tables;
  opened = streams opened so far; GiB_ok = data checked byte for byte so far (GiB);
  MiB/s = data checked since the previous line, per second;
  errors = unexpected errors so far; corrupt = corrupt or lost data so far (must stay 0)";

/// The most the last quarter's RSS peak may exceed the third quarter's.
const MAX_LAST_QUARTER_GROWTH: f64 = 0.10;
/// Samples each of the two quarters needs for a verdict.
const MIN_SAMPLES_PER_QUARTER: usize = 4;
/// Sample intervals after which a run always has
/// [`MIN_SAMPLES_PER_QUARTER`] samples in each of its last two quarters.
const MIN_INTERVALS_FOR_VERDICT: u32 = 16;

/// How much higher RSS peaked in the last quarter of the run than in the
/// third, as a fraction; with too few samples, the number of samples in
/// each of the two quarters instead. Memory that levels off, even late,
/// scores near 0; memory that keeps growing scores its growth over a
/// quarter of the run.
fn rss_trend(samples: &[(f64, u64)]) -> Result<f64, [usize; 2]> {
    let peak = |from: f64, to: f64| {
        samples
            .iter()
            .filter(|(at, _)| (from..=to).contains(at))
            .fold((0, 0), |(n, max), (_, rss)| (n + 1, max.max(*rss)))
    };
    let (third_samples, third) = peak(0.5, 0.75);
    let (last_samples, last) = peak(0.75, 1.0);
    if third_samples < MIN_SAMPLES_PER_QUARTER || last_samples < MIN_SAMPLES_PER_QUARTER {
        return Err([third_samples, last_samples]);
    }
    Ok((last as f64 - third as f64) / third.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::rss_trend;

    fn run(rss: impl Fn(f64) -> u64) -> Vec<(f64, u64)> {
        (1..=60)
            .map(|i| f64::from(i) / 60.0)
            .map(|at| (at, rss(at)))
            .collect()
    }

    #[test]
    fn a_late_plateau_passes_and_a_steady_leak_fails() {
        // A step up between 50% and 75%, then flat.
        let step = run(|at| if at < 0.6 { 38_000 } else { 51_000 });
        assert!(rss_trend(&step).unwrap() < 0.01);
        // A leak of 1 MiB per sample from 30 MiB.
        let leak = run(|at| 30_000 + (at * 60.0) as u64 * 1024);
        assert!(rss_trend(&leak).unwrap() > 0.10);
    }

    #[test]
    fn a_short_run_gives_no_verdict() {
        let short: Vec<(f64, u64)> = (1..=6).map(|i| (f64::from(i) / 6.0, 1000)).collect();
        assert_eq!(rss_trend(&short), Err([2, 2]));
    }

    #[test]
    fn a_run_of_the_minimum_length_is_judged() {
        // Samples land just after each interval; the one at the deadline
        // lands past it (outside the last quarter) and the end sample is
        // added at exactly 1.0, as `main` does.
        let n = super::MIN_INTERVALS_FOR_VERDICT;
        let mut samples: Vec<(f64, u64)> = (1..=n)
            .map(|i| ((f64::from(i) + 0.001) / f64::from(n), 1000))
            .collect();
        samples.push((1.0, 1000));
        assert_eq!(rss_trend(&samples), Ok(0.0));
    }
}
