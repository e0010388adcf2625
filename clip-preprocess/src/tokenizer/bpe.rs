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
    let cacheable = piece.len() <= CACHE_MAX_PIECE;
    if cacheable {
        // A poisoned lock only means another thread panicked mid-insert; skip the cache.
        if let Ok(cache) = vocab.cache.read() {
            if let Some(ids) = cache.get(piece) {
                out.extend_from_slice(ids);
                return;
            }
        }
    }
    let mut word: Vec<u32> = Vec::with_capacity(piece.len());
    word.extend(init.iter().map(|&b| vocab.byte_ids[usize::from(b)]));
    word.push(vocab.byte_ids_eow[usize::from(last)]);
    if word.len() > LONG_WORD {
        merge_heap(vocab, &mut word);
    } else {
        merge_simple(vocab, &mut word);
    }
    out.extend_from_slice(&word);
    if cacheable {
        if let Ok(mut cache) = vocab.cache.write() {
            if cache.len() >= CACHE_MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(piece.into(), word.into_boxed_slice());
        }
    }
}

/// Pieces longer than this (bytes) are not cached.
const CACHE_MAX_PIECE: usize = 48;
/// The cache is emptied when it reaches this many entries (bounds its memory to a few MB).
const CACHE_MAX_ENTRIES: usize = 1 << 17;

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
    // Links are u32 (half the memory of usize on a multi-megabyte word); a word of 4 G
    // symbols cannot come from one line in practice, but stay correct: fall back.
    const NONE: u32 = u32::MAX;
    let Ok(n) = u32::try_from(word.len()) else {
        merge_simple(vocab, word);
        return;
    };
    let mut next: Vec<u32> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
    let mut prev: Vec<u32> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
    let mut alive = vec![true; n as usize];
    let mut heap: BinaryHeap<Reverse<(u32, u32)>> = BinaryHeap::with_capacity(n as usize);
    for i in 0..n.saturating_sub(1) {
        let (a, b) = (word[i as usize], word[i as usize + 1]);
        if let Some(&(rank, _)) = vocab.merges.get(&(a, b)) {
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
            let q = next[p as usize];
            if !alive[p as usize]
                || word[p as usize] != first
                || q == NONE
                || word[q as usize] != second
            {
                continue;
            }
            word[p as usize] = merged;
            alive[q as usize] = false;
            let r = next[q as usize];
            next[p as usize] = r;
            if r != NONE {
                prev[r as usize] = p;
                if let Some(&(rk, _)) = vocab.merges.get(&(merged, word[r as usize])) {
                    heap.push(Reverse((rk, p)));
                }
            }
            let l = prev[p as usize];
            if l != NONE {
                if let Some(&(rk, _)) = vocab.merges.get(&(word[l as usize], merged)) {
                    heap.push(Reverse((rk, l)));
                }
            }
        }
    }
    let mut j = 0;
    for i in 0..word.len() {
        if alive[i] {
            word[j] = word[i];
            j += 1;
        }
    }
    word.truncate(j);
}

#[cfg(test)]
mod tests {
    use super::{merge_heap, merge_simple};
    use crate::tokenizer::vocab::Vocab;

    /// The heap version must reproduce the reference loop exactly, on words long and
    /// repetitive enough to exercise equal ranks, overlaps (`aaa`) and re-formed pairs.
    #[test]
    fn heap_equals_simple() {
        let vocab = Vocab::openai().unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let alphabets: [&[u8]; 4] = [
            b"ab",
            b"aeinrst ",
            b"abcdefghijklmnopqrstuvwxyz",
            b"0123.,!?",
        ];
        for case in 0..400 {
            let alpha = alphabets[case % alphabets.len()];
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 2 + (seed % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alpha[((seed >> (i % 57)) as usize + i * 7) % alpha.len()])
                .collect();
            let (init, last) = bytes.split_at(bytes.len() - 1);
            let mut word: Vec<u32> = init.iter().map(|&b| vocab.byte_ids[b as usize]).collect();
            word.push(vocab.byte_ids_eow[last[0] as usize]);
            let mut a = word.clone();
            let mut b = word;
            merge_simple(&vocab, &mut a);
            merge_heap(&vocab, &mut b);
            assert_eq!(a, b, "word {:?}", String::from_utf8_lossy(&bytes));
        }
    }
}
