//! Criterion: bulk (1 stream × 64 MiB) and concurrent (100 streams ×
//! 1 MiB) throughput over duplex and TCP, for every contender.
//!
//! `cargo bench -p mux-benches --bench throughput`. A contender whose
//! trial run stalls or fails is skipped with a message (tokio-yamux 0.3
//! stalls on bulk transfers).

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
use mux_benches::{Contender, Transport, MIB};

fn throughput(c: &mut Criterion) {
    // Every contender starts from the same allocator state (see its doc).
    mux_benches::measure::warm_allocator();
    let cases = [("bulk", 1, 64 * MIB), ("concurrent", 100, MIB)];
    for transport in [Transport::Duplex, Transport::Tcp] {
        for (name, streams, per_stream) in cases {
            let work = Work::Transfer {
                streams,
                per_stream,
            };
            let mut group = c.benchmark_group(format!("{name}/{}", transport.name()));
            group.throughput(Throughput::Bytes((streams * per_stream) as u64));
            for contender in Contender::ALL {
                if !common::usable(work, contender, transport) {
                    continue;
                }
                group.bench_function(contender.id(), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| common::timed_or_bound(work, contender, transport))
                            .sum()
                    });
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = throughput
}
criterion_main!(benches);
