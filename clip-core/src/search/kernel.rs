//! The hot loop of search: dot products over stored rows and a bounded top-k selection,
//! split over threads.
//!
//! Everything here is portable Rust without `unsafe`: the dot products keep [`LANES`]
//! independent partial sums so LLVM vectorises them for whatever the target offers (SSE2
//! on baseline x86-64) without reassociating a single sum. A scan is bound by memory
//! bandwidth rather than arithmetic (one multiply-add per 4 or 2 bytes read), so hand-written
//! SIMD kernels would buy little; see `benches/search.rs` for the numbers.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Independent partial sums per dot product: 16 `f32`s fill four SSE or two AVX registers,
/// enough to hide the add latency, and each lane's order of additions is fixed, so results
/// are deterministic and identical on every run and thread count.
pub(crate) const LANES: usize = 16;

/// Rows a thread should have before another thread is worth starting (a thread costs
/// tens of microseconds; 8,192 rows of dimension 512 take about a millisecond to scan).
const MIN_ROWS_PER_THREAD: usize = 8_192;

/// `2^112 = 2^(127 - 15)`: rebiases an `f16` exponent moved into `f32` position.
const F16_REBIAS: f32 = 5.192_297e33;

/// Sums the lanes pairwise (a fixed tree, so the result does not depend on anything but
/// the inputs).
#[inline(always)]
fn sum_lanes(acc: [f32; LANES]) -> f32 {
    let mut width = LANES;
    let mut acc = acc;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

/// `Σ a[i]·b[i]` with `LANES` partial sums. `a` and `b` must have the same length
/// (the shorter one decides otherwise).
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    sum_lanes(acc) + tail
}

/// Converts the bits of a **finite** IEEE half to `f32`, exactly, without branches.
///
/// Moving the exponent and mantissa 13 bits up gives an `f32` whose exponent is off by
/// `127 - 15`; multiplying by `2^112` rebiases it exactly, and also turns half subnormals
/// (which land on `f32` subnormals) into the right normal values. Infinities and NaNs
/// would come out as large finite numbers: the index never stores them.
#[inline(always)]
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    let bits = u32::from(bits);
    let magnitude = f32::from_bits((bits & 0x7fff) << 13) * F16_REBIAS;
    f32::from_bits(magnitude.to_bits() | ((bits & 0x8000) << 16))
}

/// Whether half bits encode an infinity or a NaN (exponent all ones).
pub(crate) fn f16_is_non_finite(bits: u16) -> bool {
    bits & 0x7c00 == 0x7c00
}

/// `Σ f16(a[i])·b[i]` with the same lane structure as [`dot_f32`].
#[inline]
pub fn dot_f16(a: &[u16], b: &[f32]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += f16_bits_to_f32(x) * y;
        }
    }
    let tail: f32 = a_tail
        .iter()
        .zip(b_tail)
        .map(|(&x, y)| f16_bits_to_f32(x) * y)
        .sum();
    sum_lanes(acc) + tail
}

/// A row's score. Ordered so that the *worse* of two compares greater: a lower score, or
/// the same score at a later row. A max-heap of these keeps the worst kept row on top.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    pub score: f32,
    pub row: usize,
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.row.cmp(&other.row))
    }
}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}

/// The best `k` of the rows of `data` (rows of `dim` elements, numbered from `first_row`),
/// best first.
fn top_k_serial<T>(
    data: &[T],
    dim: usize,
    first_row: usize,
    k: usize,
    score: &impl Fn(&[T]) -> f32,
) -> Vec<Scored> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (offset, row) in data.chunks_exact(dim).enumerate() {
        let candidate = Scored {
            score: score(row),
            row: first_row + offset,
        };
        if heap.len() < k {
            heap.push(candidate);
        } else if let Some(mut worst) = heap.peek_mut() {
            if candidate < *worst {
                *worst = candidate;
            }
        }
    }
    heap.into_sorted_vec()
}

/// The best `k` rows of `data` (rows of `dim` elements; `dim > 0`), best first: highest
/// score, ties to the earlier row. Scans on up to `threads` threads.
pub(crate) fn top_k<T: Sync>(
    data: &[T],
    dim: usize,
    k: usize,
    threads: usize,
    score: impl Fn(&[T]) -> f32 + Sync,
) -> Vec<Scored> {
    let rows = data.len() / dim.max(1);
    if k == 0 || rows == 0 || dim == 0 {
        return Vec::new();
    }
    // No more than every row can be returned; a larger k (usize::MAX for "all") must not
    // size the heaps below.
    let k = k.min(rows);
    let threads = threads.clamp(1, rows.div_ceil(MIN_ROWS_PER_THREAD).max(1));
    if threads == 1 {
        return top_k_serial(data, dim, 0, k, &score);
    }
    let rows_per_thread = rows.div_ceil(threads);
    let mut all = Vec::with_capacity(threads * k);
    std::thread::scope(|scope| {
        let score = &score;
        let handles: Vec<_> = data
            .chunks(rows_per_thread * dim)
            .enumerate()
            .map(|(i, part)| {
                scope.spawn(move || top_k_serial(part, dim, i * rows_per_thread, k, score))
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(part) => all.extend(part),
                // A scan thread only does arithmetic on in-bounds slices; should one ever
                // panic, re-raise it rather than return a partial answer.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
    });
    all.sort_unstable();
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_half_for_every_finite_value() {
        for bits in 0..=u16::MAX {
            if f16_is_non_finite(bits) {
                continue;
            }
            let expected = half::f16::from_bits(bits).to_f32();
            let actual = f16_bits_to_f32(bits);
            assert_eq!(actual.to_bits(), expected.to_bits(), "bits {bits:#06x}");
        }
    }

    #[test]
    fn dot_matches_f64_reference() {
        for dim in [1usize, 15, 16, 17, 33, 512] {
            let a: Vec<f32> = (0..dim)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
                .collect();
            let b: Vec<f32> = (0..dim)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let expected: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            // These values are small multiples of powers of two: every partial sum is exact.
            assert_eq!(f64::from(dot_f32(&a, &b)), expected, "dim {dim}");
            let a16: Vec<u16> = a
                .iter()
                .map(|&x| half::f16::from_f32(x).to_bits())
                .collect();
            assert_eq!(f64::from(dot_f16(&a16, &b)), expected, "dim {dim}");
        }
    }

    #[test]
    fn threaded_top_k_equals_serial_including_ties() {
        let dim = 4;
        let rows = 50_000;
        // Many exact ties: scores take only 97 values.
        let data: Vec<f32> = (0..rows * dim).map(|i| ((i / dim) % 97) as f32).collect();
        let q = [1.0f32, 0.0, 0.0, 0.0];
        let serial = top_k_serial(&data, dim, 0, 25, &|r: &[f32]| dot_f32(r, &q));
        for threads in [1, 2, 3, 8] {
            let parallel = top_k(&data, dim, 25, threads, |r: &[f32]| dot_f32(r, &q));
            let a: Vec<_> = serial.iter().map(|s| (s.score, s.row)).collect();
            let b: Vec<_> = parallel.iter().map(|s| (s.score, s.row)).collect();
            assert_eq!(a, b, "threads {threads}");
        }
        assert_eq!(serial[0].score, 96.0);
        assert_eq!(serial[0].row, 96);
        assert_eq!(serial[1].row, 96 + 97);
    }

    /// A k beyond the row count ("all", even usize::MAX) returns every row, sorted,
    /// on one thread or several, without sizing anything by k.
    #[test]
    fn huge_k_returns_every_row() {
        let dim = 2;
        let rows = 20_000;
        let data: Vec<f32> = (0..rows * dim)
            .map(|i| ((i * 7919) % 1000) as f32)
            .collect();
        let q = [1.0f32, 1.0];
        for threads in [1, 2, 4] {
            for k in [rows, rows + 1, 1 << 40, usize::MAX] {
                let all = top_k(&data, dim, k, threads, |r: &[f32]| dot_f32(r, &q));
                assert_eq!(all.len(), rows, "threads {threads}, k {k}");
                assert!(all.windows(2).all(|w| w[0] <= w[1]), "sorted best first");
            }
        }
    }
}
