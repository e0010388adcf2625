//! Byte-level BPE, as `SimpleTokenizer.bpe`: repeatedly take the adjacent pair with the
//! lowest merge rank and merge all its occurrences, left to right, in one pass.
//!
//! This is a dedicated implementation rather than the `tokenizers` crate: the reference
//! path needs ftfy/HTML cleaning and CLIP's pre-tokenizer, which `tokenizers` does not
//! provide, and its BPE model would bring a large dependency tree (rayon, onig or
//! fancy-regex, serde models) for the one loop below. Symbols are vocabulary ids and
//! merges are keyed by id pairs, so no strings are built while merging; words are
//! short, so the simple scan is used up to [`LONG_WORD`] symbols and a heap-based
//! O(n log n) version beyond (same result, bounded time on pathological input).
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// Words with more symbols than this use the heap-based merge.
pub(crate) const LONG_WORD: usize = 64;

/// Appends the BPE ids of one pre-tokenized `piece` (already UTF-8 bytes) to `out`.
pub(crate) fn bpe_piece(vocab: &Vocab, piece: &[u8], out: &mut Vec<u32>) {
    let Some((&last, init)) = piece.split_last() else {
        return;
    };
    let mut word: Vec<u32> = Vec::with_capacity(piece.len());
    word.extend(init.iter().map(|&b| vocab.byte_ids[usize::from(b)]));
    word.push(vocab.byte_ids_eow[usize::from(last)]);
    if word.len() > LONG_WORD {
        merge_heap(vocab, &mut word);
    } else {
        merge_simple(vocab, &mut word);
    }
    out.extend_from_slice(&word);
}

/// The reference's loop, on ids.
pub(crate) fn merge_simple(vocab: &Vocab, word: &mut Vec<u32>) {
    while word.len() > 1 {
        let mut best: Option<(u32, u32, u32, u32)> = None; // rank, first, second, merged
        for w in word.windows(2) {
            if let Some(&(rank, merged)) = vocab.merges.get(&(w[0], w[1])) {
                if best.is_none_or(|b| rank < b.0) {
                    best = Some((rank, w[0], w[1], merged));
                }
            }
        }
        let Some((_, first, second, merged)) = best else {
            break;
        };
        let mut i = 0;
        let mut j = 0;
        let n = word.len();
        while i < n {
            if i + 1 < n && word[i] == first && word[i + 1] == second {
                word[j] = merged;
                i += 2;
            } else {
                word[j] = word[i];
                i += 1;
            }
            j += 1;
        }
        word.truncate(j);
    }
}

/// The same merges with a priority queue of (rank, position): all occurrences of the
/// lowest rank are applied left to right as one pass, as the reference does.
pub(crate) fn merge_heap(vocab: &Vocab, word: &mut Vec<u32>) {
    const NONE: usize = usize::MAX;
    let n = word.len();
    let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
    let mut alive = vec![true; n];
    let mut heap: BinaryHeap<Reverse<(u32, usize)>> = BinaryHeap::with_capacity(n);
    for i in 0..n.saturating_sub(1) {
        if let Some(&(rank, _)) = vocab.merges.get(&(word[i], word[i + 1])) {
            heap.push(Reverse((rank, i)));
        }
    }
    let mut batch = Vec::new();
    while let Some(Reverse((rank, pos))) = heap.pop() {
        batch.clear();
        batch.push(pos);
        while let Some(&Reverse((r, p))) = heap.peek() {
            if r != rank {
                break;
            }
            batch.push(p);
            heap.pop();
        }
        let Some(&(first, second, merged)) = vocab.by_rank.get(rank as usize) else {
            continue;
        };
        for &p in &batch {
            let q = next[p];
            if !alive[p] || word[p] != first || q == NONE || word[q] != second {
                continue;
            }
            word[p] = merged;
            alive[q] = false;
            let r = next[q];
            next[p] = r;
            if r != NONE {
                prev[r] = p;
                if let Some(&(rk, _)) = vocab.merges.get(&(merged, word[r])) {
                    heap.push(Reverse((rk, p)));
                }
            }
            let l = prev[p];
            if l != NONE {
                if let Some(&(rk, _)) = vocab.merges.get(&(word[l], merged)) {
                    heap.push(Reverse((rk, l)));
                }
            }
        }
    }
    let mut j = 0;
    for i in 0..n {
        if alive[i] {
            word[j] = word[i];
            j += 1;
        }
    }
    word.truncate(j);
}
