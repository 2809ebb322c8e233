//! rust-libp2p request-response over this crate's muxer against stock
//! `libp2p-yamux`, in one run: bulk throughput (large requests, several in
//! flight) and stream churn (small requests, each on a new substream, as
//! request-response opens one per request).
//!
//! ```text
//! cargo run --release --example libp2p_bench -p mux-libp2p
//! cargo run --release --example libp2p_bench -p mux-libp2p -- --runs 5 --bulk-requests 256 --churn-requests 5000
//! ```
//!
//! Every pair is two swarms in this process over TCP on 127.0.0.1 with
//! noise, on a 2-worker runtime; the pairs take turns run by run, and each
//! figure is the median of `--runs`. Prints a Markdown table.

// A command-line benchmark: it reports on stdout, and its arithmetic works
// on counts and sizes far below any overflow.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_precision_loss,
    clippy::indexing_slicing
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use libp2p::request_response::{Event as RrEvent, Message};
use libp2p::swarm::SwarmEvent;
use support::{connected_with, BehaviourEvent, Pair};

#[derive(Parser, Debug)]
#[command(about = "mux-libp2p against libp2p-yamux: request-response throughput and stream churn")]
struct Args {
    /// Runs per figure; the table shows the median.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Requests of the bulk case.
    #[arg(long, default_value_t = 128)]
    bulk_requests: usize,
    /// Bytes per bulk request (the response is 8 bytes).
    #[arg(long, default_value_t = 1 << 20)]
    bulk_size: usize,
    /// Requests of the churn case (64 bytes each way).
    #[arg(long, default_value_t = 2000)]
    churn_requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
}

/// The muxer on each side; `None` is stock `libp2p-yamux`.
#[derive(Clone, Copy)]
struct Contender {
    name: &'static str,
    dialer: Option<Side>,
    listener: Option<Side>,
}

#[derive(Clone, Copy)]
enum Side {
    /// `mux_libp2p::Config::default()`: lite with our own kind.
    Ours,
    /// Ours offering `/yamux/1.0.0` only.
    OursYamux,
}

impl Side {
    fn config(side: Option<Side>) -> Option<mux_libp2p::Config> {
        side.map(|s| match s {
            Side::Ours => mux_libp2p::Config::default(),
            Side::OursYamux => mux_libp2p::Config::default().with_lite(false),
        })
    }
}

const CONTENDERS: [Contender; 4] = [
    Contender {
        name: "libp2p-yamux ↔ libp2p-yamux",
        dialer: None,
        listener: None,
    },
    Contender {
        name: "mux-libp2p ↔ mux-libp2p (lite)",
        dialer: Some(Side::Ours),
        listener: Some(Side::Ours),
    },
    Contender {
        name: "mux-libp2p ↔ mux-libp2p (yamux wire)",
        dialer: Some(Side::OursYamux),
        listener: Some(Side::OursYamux),
    },
    Contender {
        name: "mux-libp2p → libp2p-yamux",
        dialer: Some(Side::Ours),
        listener: None,
    },
];

/// Sends `count` requests of `size` bytes from the dialer, `in_flight` at
/// a time, the listener answering each with `reply` bytes; returns the
/// elapsed time.
async fn exchange(
    pair: &mut Pair,
    count: usize,
    size: usize,
    reply: usize,
    in_flight: usize,
) -> Duration {
    let (_, l_id) = pair.peers();
    let request = vec![0x5a; size];
    let start = Instant::now();
    let (mut sent, mut done) = (0, 0);
    let mut pending = VecDeque::new();
    while done < count {
        while sent < count && sent - done < in_flight {
            let id = pair
                .dialer
                .behaviour_mut()
                .rr
                .send_request(&l_id, request.clone());
            pending.push_back(id);
            sent += 1;
        }
        tokio::select! {
            e = pair.dialer.select_next_some() => match e {
                SwarmEvent::Behaviour(BehaviourEvent::Rr(RrEvent::Message {
                    message: Message::Response { response, .. }, ..
                })) => {
                    assert_eq!(response.len(), reply);
                    done += 1;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Rr(RrEvent::OutboundFailure { error, .. })) => {
                    panic!("request failed: {error}")
                }
                _ => {}
            },
            e = pair.listener.select_next_some() => {
                if let SwarmEvent::Behaviour(BehaviourEvent::Rr(RrEvent::Message {
                    message: Message::Request { request, channel, .. }, ..
                })) = e {
                    assert_eq!(request.len(), size);
                    pair.listener.behaviour_mut().rr.send_response(channel, vec![1; reply]).unwrap();
                }
            }
        }
    }
    start.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let mut bulk = vec![Vec::new(); CONTENDERS.len()];
    let mut churn = vec![Vec::new(); CONTENDERS.len()];
    for run in 0..args.runs {
        // Each round starts one contender later, so a slow spell of the
        // machine is shared rather than landing on one contender.
        for k in 0..CONTENDERS.len() {
            let i = (run + k) % CONTENDERS.len();
            let c = CONTENDERS[i];
            let mut pair = connected_with(Side::config(c.dialer), Side::config(c.listener)).await;
            let took = exchange(
                &mut pair,
                args.bulk_requests,
                args.bulk_size,
                8,
                args.in_flight,
            )
            .await;
            bulk[i].push(
                (args.bulk_requests * args.bulk_size) as f64
                    / (1 << 20) as f64
                    / took.as_secs_f64(),
            );
            let took = exchange(&mut pair, args.churn_requests, 64, 64, args.in_flight).await;
            churn[i].push(args.churn_requests as f64 / took.as_secs_f64());
        }
    }
    let base_bulk = median(bulk[0].clone());
    let base_churn = median(churn[0].clone());
    println!(
        "{} run(s) per figure (median), {} × {} KiB requests and {} × 64 B requests, {} in flight, 2-worker runtime, TCP + noise on 127.0.0.1.\n",
        args.runs,
        args.bulk_requests,
        args.bulk_size / 1024,
        args.churn_requests,
        args.in_flight
    );
    println!("| muxer (dialer ↔ listener) | bulk (MiB/s) ↑ | ÷ libp2p-yamux | churn (requests/s) ↑ | ÷ libp2p-yamux |");
    println!("|---|---:|---:|---:|---:|");
    for (i, c) in CONTENDERS.iter().enumerate() {
        let (b, ch) = (median(bulk[i].clone()), median(churn[i].clone()));
        println!(
            "| {} | {b:.0} | {:.2}× | {ch:.0} | {:.2}× |",
            c.name,
            b / base_bulk,
            ch / base_churn
        );
    }
}
