//! Criterion: one 64-byte request/response on an open stream, over duplex
//! and TCP, for every contender, on a current-thread runtime. One iteration
//! is one round trip; connection setup and warm-up are not timed.
//!
//! `cargo bench -p mux-benches --bench round_trip`.

// A measurement harness: panics on a broken setup, reports on stderr.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use mux_benches::scenario::Work;
use mux_benches::{Contender, Transport};

fn round_trip(c: &mut Criterion) {
    for transport in [Transport::Duplex, Transport::Tcp] {
        let mut group = c.benchmark_group(format!("round-trip/{}", transport.name()));
        for contender in Contender::ALL {
            let trial = Work::RoundTrip {
                warmup: 100,
                iterations: 100,
            };
            if !common::usable(trial, contender, transport) {
                continue;
            }
            group.bench_function(contender.id(), |b| {
                b.iter_custom(|iters| {
                    let work = Work::RoundTrip {
                        warmup: 100,
                        iterations: iters as usize,
                    };
                    common::timed_or_bound(work, contender, transport)
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = round_trip
}
criterion_main!(benches);
