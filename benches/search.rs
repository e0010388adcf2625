//! Exact top-k search latency against memory bandwidth.
//!
//! `cargo bench --bench search` first prints a table — ms per query for 100,000 and
//! 1,000,000 random unit embeddings of dimension 512 stored as f32 and f16, the bytes each
//! query scans, the rate that implies, and the machine's read bandwidth measured by summing
//! a 1 GiB buffer on the same threads — then runs the criterion benchmarks. A scan cannot
//! beat the memory bandwidth: the table shows how close it comes.
//!
//! `CLIP_SEARCH_BENCH_MAX=100000` leaves out the 1,000,000-row cases (they need 2 GiB).
//!
//! Measured 2026-11-27 on the 2-core, 24 GiB development VM (x86-64 baseline build, SSE2;
//! other builds were running), median of 21 queries, k = 10, dimension 512:
//!
//! | rows | dtype | threads | ms/query | MB scanned | GB/s | % of read bandwidth |
//! |---|---|---|---|---|---|---|
//! | 100,000 | f32 | 2 | 23.0 | 205 | 8.9 | 60% |
//! | 100,000 | f16 | 2 | 26.6 | 102 | 3.8 | 26% |
//! | 1,000,000 | f32 | 1 | 378 | 2,048 | 5.4 | 76% |
//! | 1,000,000 | f32 | 2 | 207 | 2,048 | 9.9 | 66% |
//! | 1,000,000 | f16 | 2 | 266 | 1,024 | 3.9 | 26% |
//!
//! Read bandwidth: 7.1 GB/s on 1 thread, 14.9 GB/s on 2. f32 runs near the bandwidth;
//! f16 is bound by the half-to-single conversion (no F16C in a baseline build, and
//! clip-core has no `unsafe` for run-time-dispatched kernels), so it halves memory but not
//! latency.
#![forbid(unsafe_code)]
// A bench whose setup fails cannot run: failing loudly is the point.
#![allow(clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use clip_core::search::{Dtype, Index, ModelId};
use criterion::Criterion;
use ndarray::Array1;

const DIM: usize = 512;
const K: usize = 10;

/// SplitMix64, for reproducible data without a dependency.
struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vector(&mut self) -> Array1<f32> {
        (0..DIM).map(|_| self.next_f32()).collect()
    }
}

fn build(rows: usize, dtype: Dtype) -> Index {
    let mut rng = Rng(rows as u64);
    let mut index = Index::new(ModelId::new("bench", DIM, 0), dtype);
    for i in 0..rows {
        index
            .upsert(format!("{i}"), rng.vector().view(), None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    index
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Read bandwidth in GB/s: the best of 5 passes summing a 1 GiB buffer on `threads` threads.
fn read_bandwidth(threads: usize) -> f64 {
    let words = (1usize << 30) / 8;
    let buffer: Vec<u64> = (0..words as u64).collect();
    let chunk = words.div_ceil(threads);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = buffer
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        // Eight independent sums, like the dot-product kernels' lanes.
                        let mut acc = [0u64; 8];
                        let (chunks, tail) = part.as_chunks::<8>();
                        for c in chunks {
                            for (a, &x) in acc.iter_mut().zip(c) {
                                *a = a.wrapping_add(x);
                            }
                        }
                        acc.iter().chain(tail).fold(0u64, |s, &x| s.wrapping_add(x))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0, u64::wrapping_add)
        });
        black_box(total);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (words * 8) as f64 / best / 1e9
}

fn sizes() -> Vec<usize> {
    let max: usize = std::env::var("CLIP_SEARCH_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    [100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect()
}

/// The table: median ms per query over 21 queries after a warm-up.
fn table() {
    let threads = threads();
    let bw_all = read_bandwidth(threads);
    let bw_one = read_bandwidth(1);
    println!("memory read bandwidth: {bw_one:.1} GB/s on 1 thread, {bw_all:.1} GB/s on {threads}");
    println!("| rows | dtype | threads | ms/query | MB scanned | GB/s | % of bandwidth |");
    println!("|---|---|---|---|---|---|---|");
    for rows in sizes() {
        for dtype in [Dtype::F32, Dtype::F16] {
            let index = build(rows, dtype);
            let mut rng = Rng(7);
            for t in [1, threads] {
                if let Err(e) = index.search_with_threads(rng.vector().view(), K, t) {
                    panic!("search {rows}x{DIM}/{dtype} on {t} threads: {e}");
                }
                let mut times: Vec<f64> = (0..22)
                    .map(|_| {
                        let q = rng.vector();
                        let start = Instant::now();
                        black_box(
                            index
                                .search_with_threads(q.view(), K, t)
                                .map(|h| h.len())
                                .ok(),
                        );
                        start.elapsed().as_secs_f64()
                    })
                    .skip(1)
                    .collect();
                times.sort_by(f64::total_cmp);
                let ms = times[times.len() / 2] * 1e3;
                let bytes = (rows * DIM * dtype.bytes()) as f64;
                let gbs = bytes / (ms / 1e3) / 1e9;
                let bw = if t == 1 { bw_one } else { bw_all };
                println!(
                    "| {rows} | {dtype} | {t} | {ms:.2} | {:.0} | {gbs:.1} | {:.0}% |",
                    bytes / 1e6,
                    gbs / bw * 100.0
                );
            }
        }
    }
}

fn benches(c: &mut Criterion) {
    for rows in sizes() {
        for dtype in [Dtype::F32, Dtype::F16] {
            let index = build(rows, dtype);
            let q = Rng(9).vector();
            // An error path would be timed as if it were the work: check one call first.
            if let Err(e) = index.search(q.view(), K) {
                panic!("search {rows}x{DIM}/{dtype}: {e}");
            }
            let mut group = c.benchmark_group(format!("search/{rows}x{DIM}/{dtype}"));
            group.sample_size(10);
            group.throughput(criterion::Throughput::Bytes(
                (rows * DIM * dtype.bytes()) as u64,
            ));
            group.bench_function(format!("top{K}"), |b| {
                b.iter(|| index.search(black_box(q.view()), K).map(|h| h.len()).ok())
            });
            group.finish();
        }
    }
}

fn main() {
    table();
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
