//! Grouping token rows into batches by length, so that short texts do not pay for long ones.
//!
//! A text tower that stops at the batch's last end-of-text token (clip-ort does) runs each
//! batch at the width of its longest row: one 77-token passage among 31 prompts of 8 tokens
//! makes all 32 rows cost 77 positions. Sorting rows by their EOT position and cutting the
//! sorted list into runs keeps each run's rows of similar length. Results do not change:
//! the attention is causal and the model pools at the EOT, so each row's embedding depends
//! only on its own tokens up to its EOT, whatever else is in the batch.

use ndarray::{ArrayView1, ArrayView2};

/// Fixed cost of one encoder call, in token positions of one row.
///
/// Measured order of magnitude for ViT-B/32's text tower at 2 threads: ~1–2 ms per session
/// run against ~0.05 ms per row × token position (docs/performance.md). It only decides
/// whether splitting a run is worth one more call; the result never depends on it.
const RUN_COST: usize = 32;

/// How many token positions a row occupies: up to and including its EOT, the row's first
/// maximum (the reference pools at `text.argmax(-1)`; the EOT has the highest id).
fn row_width(row: ArrayView1<'_, i32>) -> usize {
    let mut best = 0;
    let mut best_value = i32::MIN;
    for (i, &v) in row.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best + 1
}

/// Splits the rows of `tokens` (`[N, L]` token ids) into groups of at most `max_batch` rows
/// (at least 1) that cost the text tower little padding.
///
/// Rows are sorted by EOT position (ties keep their order), then cut where it minimises
/// `Σ (rows × widest row) + RUN_COST` over the groups: an exact dynamic programme over the
/// sorted order, `O(N × max_batch)`. Every row index appears in exactly one group; groups
/// run from the shortest rows to the longest, and within a group indices follow the sort.
///
/// ```
/// use ndarray::array;
/// // Two short prompts and one long text (EOT = 49407 at positions 2, 2 and 5).
/// let tokens = array![
///     [49406, 320, 49407, 0, 0, 0],
///     [49406, 1, 2, 3, 4, 49407],
///     [49406, 530, 49407, 0, 0, 0],
/// ];
/// let groups = clip_core::batching::length_buckets(tokens.view(), 32);
/// let all: Vec<usize> = groups.concat();
/// assert_eq!(all, vec![0, 2, 1]);
/// ```
pub fn length_buckets(tokens: ArrayView2<'_, i32>, max_batch: usize) -> Vec<Vec<usize>> {
    let max_batch = max_batch.max(1);
    let mut order: Vec<(usize, usize)> = tokens
        .outer_iter()
        .enumerate()
        .map(|(i, row)| (row_width(row), i))
        .collect();
    // (width, index) pairs are distinct, so the unstable sort is deterministic and keeps
    // equal-width rows in the caller's order.
    order.sort_unstable();
    let n = order.len();
    // best[j]: least cost of the first j sorted rows; cut[j]: where its last group starts.
    let mut best = vec![usize::MAX; n + 1];
    let mut cut = vec![0; n + 1];
    best[0] = 0;
    for j in 1..=n {
        // Rows are sorted, so a group i..j is as wide as its last row.
        let width = order[j - 1].0;
        for i in j.saturating_sub(max_batch)..j {
            let cost = best[i]
                .saturating_add((j - i).saturating_mul(width))
                .saturating_add(RUN_COST);
            if cost < best[j] {
                best[j] = cost;
                cut[j] = i;
            }
        }
    }
    let mut groups = Vec::new();
    let mut j = n;
    while j > 0 {
        let i = cut[j];
        groups.push(order[i..j].iter().map(|&(_, index)| index).collect());
        j = i;
    }
    groups.reverse();
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A `[N, 77]` batch whose row i has its EOT at `eots[i]`.
    fn batch(eots: &[usize]) -> Array2<i32> {
        let mut tokens = Array2::<i32>::zeros((eots.len(), 77));
        for (i, &eot) in eots.iter().enumerate() {
            tokens[[i, 0]] = 49406;
            for col in 1..eot {
                tokens[[i, col]] = 1000 + col as i32;
            }
            tokens[[i, eot]] = 49407;
        }
        tokens
    }

    fn check_partition(groups: &[Vec<usize>], n: usize, max_batch: usize) {
        let mut all: Vec<usize> = groups.concat();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        assert!(groups.iter().all(|g| !g.is_empty() && g.len() <= max_batch));
    }

    #[test]
    fn widths_are_eot_positions() {
        let tokens = batch(&[1, 7, 76]);
        let widths: Vec<usize> = tokens.outer_iter().map(row_width).collect();
        assert_eq!(widths, vec![2, 8, 77]);
        // No EOT at all (all zeros): the first maximum is position 0.
        let zeros = Array2::<i32>::zeros((1, 5));
        assert_eq!(row_width(zeros.row(0)), 1);
    }

    #[test]
    fn empty_and_single() {
        assert!(length_buckets(batch(&[]).view(), 32).is_empty());
        assert_eq!(length_buckets(batch(&[5]).view(), 32), vec![vec![0]]);
        // max_batch 0 is taken as 1.
        assert_eq!(
            length_buckets(batch(&[5, 6]).view(), 0),
            vec![vec![0], vec![1]]
        );
    }

    #[test]
    fn one_long_row_is_split_off() {
        // 31 prompts of ~8 tokens and one 77-token passage: the passage runs alone.
        let mut eots = vec![7; 31];
        eots.insert(13, 76);
        let groups = length_buckets(batch(&eots).view(), 32);
        check_partition(&groups, 32, 32);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1], vec![13]);
    }

    #[test]
    fn similar_rows_stay_together() {
        // Splitting rows of equal width only adds run cost.
        let groups = length_buckets(batch(&[9; 20]).view(), 32);
        assert_eq!(groups, vec![(0..20).collect::<Vec<_>>()]);
    }

    #[test]
    fn groups_respect_max_batch_and_are_optimal() {
        let eots: Vec<usize> = (0..100).map(|i| 1 + (i * 37) % 76).collect();
        let tokens = batch(&eots);
        for max_batch in [1, 3, 8, 32, 200] {
            let groups = length_buckets(tokens.view(), max_batch);
            check_partition(&groups, eots.len(), max_batch);
            let cost = |groups: &[Vec<usize>]| -> usize {
                groups
                    .iter()
                    .map(|g| g.len() * g.iter().map(|&i| eots[i] + 1).max().unwrap_or(0) + RUN_COST)
                    .sum()
            };
            // Never worse than fixed chunks in the caller's order.
            let chunks: Vec<Vec<usize>> = (0..eots.len())
                .collect::<Vec<_>>()
                .chunks(max_batch)
                .map(<[usize]>::to_vec)
                .collect();
            assert!(cost(&groups) <= cost(&chunks), "max_batch {max_batch}");
        }
    }
}
