//! Criterion: one 64 KiB copy with the destination 0, 5, 64 and 2048 bytes
//! past the source modulo 4 KiB, by `copy_from_slice` (glibc's `memcpy`)
//! and by `mux_core::copy::copy`. On AMD Zen CPUs the plain copy at 5 bytes
//! (one frame header) runs about 15 times slower than at the others; the
//! helper does not. See `docs/ARCHITECTURE.md`, "Why the copies care about
//! addresses".
//!
//! `cargo bench -p mux-benches --bench copy`.

// A measurement harness: panics on a broken setup.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

const LEN: usize = 64 * 1024;
const PAGE: usize = 4096;

fn copies(c: &mut Criterion) {
    let src = vec![0x5au8; LEN];
    let mut backing = vec![0u8; LEN + 2 * PAGE];
    let mut group = c.benchmark_group("copy-64KiB");
    group.throughput(Throughput::Bytes(LEN as u64));
    for distance in [0usize, 5, 64, 2048] {
        // The offset into `backing` that puts the destination `distance`
        // bytes past the source, modulo the page.
        let at = (src.as_ptr() as usize + distance).wrapping_sub(backing.as_ptr() as usize) % PAGE;
        let dst = &mut backing[at..at + LEN];
        group.bench_function(BenchmarkId::new("copy_from_slice", distance), |b| {
            b.iter(|| black_box(&mut *dst).copy_from_slice(black_box(&src)))
        });
        group.bench_function(BenchmarkId::new("mux_core::copy", distance), |b| {
            b.iter(|| mux_core::copy::copy(black_box(&mut *dst), black_box(&src)))
        });
    }
    group.finish();
}

criterion_group!(benches, copies);
criterion_main!(benches);
