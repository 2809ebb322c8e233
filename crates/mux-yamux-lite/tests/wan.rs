//! Over an emulated long fat link (`mux-netem`: a one-way delay, a rate
//! limit and a queue of twice the bandwidth-delay product), in paused
//! time: windows grow to what the path holds, streams share it fairly,
//! the receive windows stay inside the connection's budget, and the RTT
//! follows a path whose delay changes mid-transfer.
//!
//! Each test moves tens of megabytes through the link; the clock is
//! paused, so waiting on the link costs no wall time.
// Arithmetic and indexing run on the test's own counters; each run
// prints its curve (`-- --nocapture`).
#![allow(
    clippy::arithmetic_side_effects,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::print_stderr
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mux_netem::{link, Control, LinkConfig};
use mux_yamux_lite::{Config, Connection, Role, Wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const MBIT: u64 = 1_000_000;

/// What a transfer measured, sampled every `TICK`.
struct Run {
    /// Bytes each stream delivered to its reader, per tick.
    per_tick: Vec<Vec<u64>>,
    /// The most bytes in flight on the link, client to server.
    peak_in_flight: usize,
    /// The largest sum of receive windows the server held.
    peak_receive_windows: u64,
    /// The server's smoothed RTT at each tick.
    rtt: Vec<Option<Duration>>,
    config: LinkConfig,
}

const TICK: Duration = Duration::from_millis(100);

impl Run {
    /// Link throughput (bytes/s) of tick `i`, all streams together.
    fn rate(&self, i: usize) -> f64 {
        self.per_tick[i].iter().sum::<u64>() as f64 / TICK.as_secs_f64()
    }

    /// The first tick from which every tick carries at least `share` of
    /// the link's rate.
    fn holds_from(&self, share: f64) -> Option<usize> {
        let floor = self.config.rate as f64 * share;
        let n = self.per_tick.len();
        (0..n).find(|&i| (i..n).all(|j| self.rate(j) >= floor))
    }

    /// Jain's fairness index of the bytes each stream delivered from
    /// tick `from` on.
    fn jain(&self, from: usize) -> f64 {
        let streams = self.per_tick[0].len();
        let totals: Vec<f64> = (0..streams)
            .map(|s| self.per_tick[from..].iter().map(|t| t[s]).sum::<u64>() as f64)
            .collect();
        let sum: f64 = totals.iter().sum();
        let squares: f64 = totals.iter().map(|x| x * x).sum();
        sum * sum / (streams as f64 * squares)
    }
}

/// A connection pair over a link of `config`, `streams` bulk writers on
/// the client for `duration`. `on_tick` runs at each sample with the
/// link's control and the tick's index.
async fn transfer(
    config: LinkConfig,
    mux: Config,
    streams: usize,
    duration: Duration,
    on_tick: impl Fn(&Control, usize),
) -> Run {
    let (a, b, control) = link(config);
    let client = Connection::new(a, Role::Client, mux.clone());
    let server = Connection::new(b, Role::Server, mux);
    // Let the handshake ping measure the idle path first, as a
    // connection that is reused would have.
    tokio::time::sleep(config.one_way_delay * 4).await;
    let counters: Vec<Arc<AtomicU64>> = (0..streams).map(|_| Arc::default()).collect();
    for _ in 0..streams {
        let mut s = client.open_stream().await.expect("open");
        tokio::spawn(async move {
            let chunk = vec![0x5au8; 64 * 1024];
            while s.write_all(&chunk).await.is_ok() {}
        });
    }
    let readers = counters.clone();
    let acceptor = server.clone();
    tokio::spawn(async move {
        for counter in readers {
            let mut s = acceptor.accept_stream().await.expect("accept");
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    let mut run = Run {
        per_tick: Vec::new(),
        peak_in_flight: 0,
        peak_receive_windows: 0,
        rtt: Vec::new(),
        config,
    };
    let mut last = vec![0u64; streams];
    let start = Instant::now();
    let mut tick = tokio::time::interval_at(start + TICK, TICK);
    for i in 0..(duration.as_millis() / TICK.as_millis()) as usize {
        tick.tick().await;
        let now: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        run.per_tick
            .push(now.iter().zip(&last).map(|(n, l)| n - l).collect());
        last = now;
        let stats = server.stats();
        run.peak_receive_windows = run.peak_receive_windows.max(stats.receive_windows);
        run.rtt.push(server.rtt());
        on_tick(&control, i);
    }
    run.peak_in_flight = control.a_to_b().peak_in_flight;
    run
}

fn lite() -> Config {
    Config::default()
}

fn yamux_wire() -> Config {
    let mut c = Config::default();
    c.wire = Wire::Yamux;
    c
}

fn report(name: &str, run: &Run) {
    let rates: Vec<String> = (0..run.per_tick.len())
        .map(|i| format!("{:.0}", run.rate(i) * 8.0 / MBIT as f64))
        .collect();
    eprintln!(
        "{name}: Mbit/s per 100 ms {}; peak in flight {:.2} BDP; peak windows {:.2} BDP; holds 90% from tick {:?}",
        rates.join(" "),
        run.peak_in_flight as f64 / run.config.bdp() as f64,
        run.peak_receive_windows as f64 / run.config.bdp() as f64,
        run.holds_from(0.9),
    );
}

/// 100 Mbit/s over 200 ms: a BDP of 2.5 MB, ten times the initial
/// window. One stream fills the link within a few round trips and keeps
/// no more than 1.5 BDP in flight, on either wire.
#[tokio::test(start_paused = true)]
async fn one_stream_grows_its_window_to_the_path() {
    for (name, mux) in [("lite", lite()), ("yamux wire", yamux_wire())] {
        let config = LinkConfig::new(Duration::from_millis(200), 100 * MBIT);
        let run = transfer(config, mux, 1, Duration::from_secs(4), |_, _| {}).await;
        report(name, &run);
        let from = run.holds_from(0.9).expect("the link is filled");
        assert!(from <= 12, "{name}: 90% held from {from} × 100 ms");
        assert!(
            run.peak_receive_windows <= 3 * config.bdp(),
            "{name}: windows of {} for a BDP of {}",
            run.peak_receive_windows,
            config.bdp()
        );
    }
}

/// 100 Mbit/s over 2 ms: a BDP of 25 KB, a tenth of the initial window,
/// so the window has no reason to grow and does not.
#[tokio::test(start_paused = true)]
async fn a_stream_on_a_short_path_keeps_its_initial_window() {
    let config = LinkConfig::new(Duration::from_millis(2), 100 * MBIT);
    let run = transfer(config, lite(), 1, Duration::from_secs(1), |_, _| {}).await;
    report("short path", &run);
    assert!(run.holds_from(0.9).is_some(), "the link is filled");
    assert_eq!(
        run.peak_receive_windows,
        u64::from(Config::default().initial_window)
    );
}

/// 20 streams share 100 Mbit/s over 50 ms: together they fill the link,
/// and each gets an equal share (Jain's index ≥ 0.99).
#[tokio::test(start_paused = true)]
async fn twenty_streams_fill_the_link_and_share_it_fairly() {
    let config = LinkConfig::new(Duration::from_millis(50), 100 * MBIT);
    let run = transfer(config, lite(), 20, Duration::from_secs(3), |_, _| {}).await;
    report("20 streams", &run);
    let from = run.holds_from(0.9).expect("the link is filled");
    assert!(from <= 5, "90% held from {from} × 100 ms");
    let jain = run.jain(from);
    assert!(jain >= 0.99, "Jain's index {jain:.4}");
}

/// However much a path would take, the sum of the receive windows stays
/// inside `connection_receive_budget`, and the streams split it evenly:
/// four streams on 1 Gbit/s over 100 ms (12.5 MB of BDP) with a budget
/// of 4 MiB.
#[tokio::test(start_paused = true)]
async fn the_receive_windows_stay_inside_the_budget() {
    const BUDGET: u64 = 4 * 1024 * 1024;
    let config = LinkConfig::new(Duration::from_millis(100), 1000 * MBIT);
    let mut mux = lite();
    mux.connection_receive_budget = BUDGET;
    let run = transfer(config, mux, 4, Duration::from_secs(2), |_, _| {}).await;
    report("4 streams, 4 MiB budget", &run);
    assert!(
        run.peak_receive_windows <= BUDGET,
        "windows of {} over the budget",
        run.peak_receive_windows
    );
    // Window-limited at 4 MiB per 100 ms: about 335 Mbit/s in all.
    let last = run.per_tick.len() - 1;
    let rate = run.rate(last) * 8.0 / MBIT as f64;
    assert!(rate > 200.0, "{rate:.0} Mbit/s");
}

/// The smoothed RTT follows a path whose delay goes from 50 ms to 200 ms
/// per round trip mid-transfer, through the pings sent while DATA flows,
/// and the window grows toward the longer path once its least RTT
/// follows (after one to two periods of ten seconds). The
/// link's queue is sized for the longer path (twice its BDP).
#[tokio::test(start_paused = true)]
async fn the_rtt_follows_a_path_whose_delay_changes() {
    let mut config = LinkConfig::new(Duration::from_millis(50), 50 * MBIT);
    config.queue = LinkConfig::new(Duration::from_millis(200), 50 * MBIT).queue;
    let run = transfer(
        config,
        lite(),
        1,
        Duration::from_secs(30),
        |control, tick| {
            if tick == 50 {
                control.set_one_way_delay(Duration::from_millis(100));
            }
        },
    )
    .await;
    report("delay 50 → 200 ms", &run);
    let ms = |i: usize| run.rtt[i].expect("measured").as_secs_f64() * 1000.0;
    eprintln!(
        "RTT at 4.9 s {:.1} ms, at 15 s {:.1} ms, at 30 s {:.1} ms",
        ms(49),
        ms(150),
        ms(299)
    );
    // Before the change: the path's 50 ms plus what queues (a window of
    // 1.5 × BDP queues up to half a round trip).
    assert!((50.0..90.0).contains(&ms(49)), "{:.1} ms", ms(49));
    // Ten seconds after it: the path's 200 ms plus what queues.
    assert!((200.0..280.0).contains(&ms(150)), "{:.1} ms", ms(150));
    assert!((200.0..300.0).contains(&ms(299)), "{:.1} ms", ms(299));
    // Window growth follows the path's least RTT, which gives way to the
    // longer one within two periods (10–20 s): the last five seconds
    // carry more than the five after the change.
    let mean = |ticks: std::ops::Range<usize>| {
        let n = ticks.len() as f64;
        ticks.map(|i| run.rate(i)).sum::<f64>() / n
    };
    assert!(mean(250..300) > 1.2 * mean(50..100));
}
