//! Criterion: stream churn over duplex (open, write 1 byte, close; the peer
//! reads to EOF and closes; 16 lifecycles at a time), for every contender.
//! One iteration is one stream lifecycle. (Not over TCP: the raw contender
//! would use up ephemeral ports with one connection per stream.)
//!
//! `cargo bench -p mux-benches --bench churn`.

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

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mux_benches::scenario::Work;
use mux_benches::{Contender, Transport};

/// Lifecycles running at a time.
const IN_FLIGHT: usize = 16;

fn churn(c: &mut Criterion) {
    let transport = Transport::Duplex;
    let mut group = c.benchmark_group(format!("churn/{}", transport.name()));
    group.throughput(Throughput::Elements(1));
    for contender in Contender::ALL {
        let trial = Work::Churn {
            total: 100,
            in_flight: IN_FLIGHT,
        };
        if !common::usable(trial, contender, transport) {
            continue;
        }
        group.bench_function(contender.id(), |b| {
            b.iter_custom(|iters| {
                let work = Work::Churn {
                    total: iters as usize,
                    in_flight: IN_FLIGHT,
                };
                common::timed_or_bound(work, contender, transport)
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = churn
}
criterion_main!(benches);
