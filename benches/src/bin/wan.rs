//! The WAN runner: one stream and 20 streams over an emulated long link
//! (`mux-netem`: a one-way delay, a rate limit and a queue of twice the
//! bandwidth-delay product, no loss) in real time, for mux-yamux-lite on
//! each wire, the `yamux` crate 0.14 and the raw link; prints a markdown
//! table and draws the throughput over time of one stream on the longest,
//! fastest path, ours against yamux.
//!
//! ```text
//! cargo run --release -p mux-benches --bin wan [-- OPTIONS]
//! ```
//!
//! Each case runs `--secs` seconds (default 5) after an idle spell of four
//! round trips, in which each side's handshake ping measures the idle
//! path, as on a connection that is reused. `--help` lists the options.

// A measurement tool: it reports on stdout/stderr, and panics on a broken
// setup; its arithmetic is on small local numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mux_benches::contender::{yamux as yamux_contender, Acceptor, Opener};
use mux_netem::{link, Control, End, LinkConfig};
use mux_yamux_lite::{Config, Connection, Role, Wire};
use plotters::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// One stream and 20 streams over emulated WAN paths, each contender in
/// turn; prints a markdown table and draws docs/benchmarks-wan.svg.
#[derive(Parser)]
#[command(name = "wan")]
struct Args {
    /// Seconds each case transfers for.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Round-trip times, in milliseconds.
    #[arg(long, value_delimiter = ',', default_value = "10,50,200")]
    rtts: Vec<u64>,
    /// Link rates, in Mbit/s.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u64>,
    /// Stream counts.
    #[arg(long, value_delimiter = ',', default_value = "1,20")]
    streams: Vec<usize>,
    /// Where to draw the plot (one stream at the longest RTT and the
    /// highest rate).
    #[arg(long, default_value = "docs/benchmarks-wan.svg")]
    svg: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    Lite,
    YamuxWire,
    Yamux,
    Raw,
}

impl Contender {
    const ALL: [Self; 4] = [Self::Lite, Self::YamuxWire, Self::Yamux, Self::Raw];

    fn name(self) -> &'static str {
        match self {
            Self::Lite => "mux-yamux-lite",
            Self::YamuxWire => "mux (yamux wire)",
            Self::Yamux => "yamux 0.14",
            Self::Raw => "raw link",
        }
    }
}

/// Samples are taken this often.
const TICK: Duration = Duration::from_millis(100);
/// Application writes.
const WRITE: usize = 64 * 1024;

/// What one case measured.
struct Run {
    /// Bytes each stream delivered, per tick.
    per_tick: Vec<Vec<u64>>,
    /// The most bytes in flight on the link, client to server.
    peak_in_flight: usize,
    /// The largest sum of the server's receive windows (ours only).
    peak_windows: Option<u64>,
    config: LinkConfig,
}

impl Run {
    fn rate(&self, i: usize) -> f64 {
        self.per_tick[i].iter().sum::<u64>() as f64 / TICK.as_secs_f64()
    }

    fn mbit(&self) -> f64 {
        let n = self.per_tick.len();
        (0..n).map(|i| self.rate(i)).sum::<f64>() / n as f64 * 8.0 / 1e6
    }

    /// Seconds from which every tick carries ≥ 90% of the link.
    fn holds_90(&self) -> Option<f64> {
        let floor = self.config.rate as f64 * 0.9;
        let n = self.per_tick.len();
        (0..n)
            .find(|&i| (i..n).all(|j| self.rate(j) >= floor))
            .map(|i| i as f64 * TICK.as_secs_f64())
    }

    fn jain(&self) -> f64 {
        let streams = self.per_tick[0].len();
        let totals: Vec<f64> = (0..streams)
            .map(|s| self.per_tick.iter().map(|t| t[s]).sum::<u64>() as f64)
            .collect();
        let sum: f64 = totals.iter().sum();
        let squares: f64 = totals.iter().map(|x| x * x).sum();
        if squares == 0.0 {
            return 0.0;
        }
        sum * sum / (streams as f64 * squares)
    }
}

/// Writes `WRITE`-byte blocks until `stop`.
fn writer<S: AsyncWrite + Unpin + Send + 'static>(mut s: S, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let block = vec![0x5au8; WRITE];
        while !stop.load(Ordering::Relaxed) {
            if s.write_all(&block).await.is_err() {
                break;
            }
        }
    });
}

/// Reads to the end, counting into `counter`.
fn reader<S: AsyncRead + Unpin + Send + 'static>(mut s: S, counter: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n @ 1..) = s.read(&mut buf).await {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
}

/// Starts `streams` writers from `a` to readers at `b`; returns what
/// samples the server's receive windows, if the contender has them.
async fn start(
    contender: Contender,
    a: End,
    b: End,
    counters: &[Arc<AtomicU64>],
    stop: &Arc<AtomicBool>,
    idle: Duration,
) -> Option<Connection> {
    match contender {
        Contender::Raw => {
            tokio::time::sleep(idle).await;
            // No streams: the link itself, one writer and one reader.
            writer(a, stop.clone());
            reader(b, counters[0].clone());
            None
        }
        Contender::Lite | Contender::YamuxWire => {
            let mut config = Config::default();
            if contender == Contender::YamuxWire {
                config.wire = Wire::Yamux;
            }
            let client = Connection::new(a, Role::Client, config.clone());
            let server = Connection::new(b, Role::Server, config);
            tokio::time::sleep(idle).await;
            for _ in counters {
                writer(client.open_stream().await.unwrap(), stop.clone());
            }
            let acceptor = server.clone();
            let counters = counters.to_vec();
            tokio::spawn(async move {
                // The client is kept alive by this task until the end.
                let _client = client;
                for c in counters {
                    reader(acceptor.accept_stream().await.unwrap(), c);
                }
                std::future::pending::<()>().await;
            });
            Some(server)
        }
        Contender::Yamux => {
            let opener = yamux_contender::client_on(a);
            let mut acceptor = yamux_contender::server_on(b);
            // yamux measures no RTT before data flows; the idle spell is
            // kept for equal footing.
            tokio::time::sleep(idle).await;
            for _ in counters {
                let mut s = opener.open().await.unwrap();
                // yamux opens lazily: the first write announces the stream.
                s.write_all(b"").await.unwrap();
                writer(s, stop.clone());
            }
            let counters = counters.to_vec();
            tokio::spawn(async move {
                let _opener = opener;
                for c in counters {
                    reader(acceptor.accept().await.unwrap(), c);
                }
                std::future::pending::<()>().await;
            });
            None
        }
    }
}

async fn case(contender: Contender, config: LinkConfig, streams: usize, secs: Duration) -> Run {
    let (a, b, control): (End, End, Control) = link(config);
    let streams = if contender == Contender::Raw {
        1
    } else {
        streams
    };
    let counters: Vec<Arc<AtomicU64>> = (0..streams).map(|_| Arc::default()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let idle = config.one_way_delay * 8 + Duration::from_millis(50);
    let server = start(contender, a, b, &counters, &stop, idle).await;
    let mut run = Run {
        per_tick: Vec::new(),
        peak_in_flight: 0,
        peak_windows: server.as_ref().map(|_| 0),
        config,
    };
    let mut last = vec![0u64; streams];
    let mut tick = tokio::time::interval_at(Instant::now() + TICK, TICK);
    for _ in 0..(secs.as_millis() / TICK.as_millis()) {
        tick.tick().await;
        let now: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        run.per_tick
            .push(now.iter().zip(&last).map(|(n, l)| n - l).collect());
        last = now;
        if let (Some(s), Some(peak)) = (&server, run.peak_windows.as_mut()) {
            *peak = (*peak).max(s.stats().receive_windows);
        }
    }
    stop.store(true, Ordering::Relaxed);
    run.peak_in_flight = control.a_to_b().peak_in_flight;
    run
}

fn draw(
    path: &PathBuf,
    title: &str,
    curves: &[(Contender, &Run)],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = curves
        .iter()
        .flat_map(|(_, r)| (0..r.per_tick.len()).map(|i| r.rate(i) * 8.0 / 1e6))
        .fold(1.0f64, f64::max);
    let end = curves
        .iter()
        .map(|(_, r)| r.per_tick.len() as f64 * TICK.as_secs_f64())
        .fold(0.1f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..end, 0f64..top * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("Mbit/s (per 100 ms)")
        .draw()?;
    for (i, (contender, run)) in curves.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = (0..run.per_tick.len())
            .map(|t| ((t + 1) as f64 * TICK.as_secs_f64(), run.rate(t) * 8.0 / 1e6))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(contender.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() {
    let args = Args::parse();
    let secs = Duration::from_secs_f64(args.secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "WAN summary: {} s per case after an idle spell of 8 one-way delays; link queue 2 × BDP; \
         ↑ higher is better, ↓ lower is better.\n",
        args.secs
    );
    println!("| RTT | rate | streams | contender | throughput (Mbit/s) ↑ | holds ≥ 90% from (s) ↓ | peak in flight (× BDP) ↓ | peak receive windows (× BDP) ↓ | Jain ↑ |");
    println!("|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    let mut plotted: Vec<(Contender, Run)> = Vec::new();
    let plot_rtt = args.rtts.iter().copied().max().unwrap_or(200);
    let plot_rate = args.rates.iter().copied().max().unwrap_or(1000);
    for &rtt in &args.rtts {
        for &rate in &args.rates {
            for &streams in &args.streams {
                let config = LinkConfig::new(Duration::from_millis(rtt), rate * 1_000_000);
                for contender in Contender::ALL {
                    if contender == Contender::Raw && streams > 1 {
                        continue;
                    }
                    let run = rt.block_on(case(contender, config, streams, secs));
                    let bdp = config.bdp() as f64;
                    println!(
                        "| {rtt} ms | {rate} Mbit/s | {streams} | {} | {:.0} | {} | {:.2} | {} | {} |",
                        contender.name(),
                        run.mbit(),
                        run.holds_90().map_or("never".into(), |s| format!("{s:.1}")),
                        run.peak_in_flight as f64 / bdp,
                        run.peak_windows
                            .map_or("—".into(), |w| format!("{:.2}", w as f64 / bdp)),
                        if streams > 1 { format!("{:.4}", run.jain()) } else { "—".into() },
                    );
                    if rtt == plot_rtt
                        && rate == plot_rate
                        && streams == 1
                        && contender != Contender::Raw
                    {
                        plotted.push((contender, run));
                    }
                }
            }
        }
    }
    if !plotted.is_empty() {
        let curves: Vec<(Contender, &Run)> = plotted.iter().map(|(c, r)| (*c, r)).collect();
        let title = format!("One stream, {plot_rtt} ms × {plot_rate} Mbit/s, queue 2 × BDP");
        match draw(&args.svg, &title, &curves) {
            Ok(()) => eprintln!("plot written to {}", args.svg.display()),
            Err(e) => eprintln!("plot not written: {e}"),
        }
    }
    // The writers and connections of every case stop with the runtime.
    rt.shutdown_timeout(Duration::from_secs(1));
}
