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
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use super::vocab::Vocab;

/// Words with more symbols than this use the heap-based merge.
pub(crate) const LONG_WORD: usize = 64;

/// Runs `f` with a BPE encoder for `vocab` that uses this thread's cache. Taken once
/// per text rather than per piece: the thread-local access, the `RefCell` borrow and
/// the search for the vocabulary's cache cost ~2 % of `clip tokenize` per piece.
pub(crate) fn with_encoder<R>(vocab: &Vocab, mut f: impl FnMut(&mut Encoder<'_>) -> R) -> R {
    // `try_with` fails only during thread teardown and `try_borrow_mut` only on
    // re-entrancy (nothing run by `f` tokenizes); then `f` has not run yet, and runs
    // uncached rather than panic.
    let cached = CACHES.try_with(|caches| {
        let mut caches = caches.try_borrow_mut().ok()?;
        let cache = caches.for_vocab(vocab.id);
        Some(f(&mut Encoder {
            vocab,
            cache: Some(cache),
        }))
    });
    match cached {
        Ok(Some(r)) => r,
        _ => f(&mut Encoder { vocab, cache: None }),
    }
}

/// BPE of pieces with one vocabulary and (normally) this thread's cache.
pub(crate) struct Encoder<'a> {
    vocab: &'a Vocab,
    cache: Option<&'a mut BpeCache>,
}

impl Encoder<'_> {
    /// Appends the BPE ids of one pre-tokenized `piece` (already UTF-8 bytes) to `out`.
    pub(crate) fn piece(&mut self, piece: &[u8], out: &mut Vec<u32>) {
        let Some((&last, init)) = piece.split_last() else {
            return;
        };
        let cache = match &mut self.cache {
            Some(cache) if piece.len() <= CACHE_MAX_PIECE => cache,
            _ => {
                out.extend_from_slice(&merge_piece(self.vocab, init, last));
                return;
            }
        };
        if let Some(ids) = cache.get(piece) {
            // Mostly 1–3 ids: pushed one by one, a `memcpy` call per piece cost more.
            for &id in ids {
                out.push(id);
            }
            return;
        }
        let word = merge_piece(self.vocab, init, last);
        out.extend_from_slice(&word);
        cache.insert(piece, &word);
    }
}

/// BPE of one piece: byte symbols (the last with `</w>`), then the merges.
fn merge_piece(vocab: &Vocab, init: &[u8], last: u8) -> Vec<u32> {
    let mut word: Vec<u32> = Vec::with_capacity(init.len() + 1);
    word.extend(init.iter().map(|&b| vocab.byte_ids[usize::from(b)]));
    word.push(vocab.byte_ids_eow[usize::from(last)]);
    merge_simple(vocab, &mut word);
    word
}

/// Pieces longer than this (bytes) are not cached.
const CACHE_MAX_PIECE: usize = 48;
/// Pieces up to this many bytes are cached under an inline `u128` key (15 bytes and the
/// length): no allocation per entry, and a lookup compares two integers instead of
/// hashing and `memcmp`-ing a boxed slice (both showed up in profiles of `clip
/// tokenize`). Nearly every word of real text is this short.
const INLINE_KEY_BYTES: usize = 15;
/// BPE results of up to this many ids are stored in the cache entry itself.
const INLINE_IDS: usize = 3;
/// A cache is emptied when it reaches this many entries (bounds its memory to a few MB
/// per thread).
const CACHE_MAX_ENTRIES: usize = 1 << 16;
/// Caches of this many vocabularies are kept per thread; more, and all are dropped.
const CACHE_MAX_VOCABS: usize = 4;

/// The BPE ids of one cached piece, packed into 16 bytes so that a short-key entry
/// (with its `u128` key) is 32 bytes, two per cache line: the random read of the entry
/// was the cache's main cost (a 48-byte enum entry straddled lines). `[3]` is the number
/// of ids; up to [`INLINE_IDS`] are in `[0..3]`, more are `arena[[0] .. [0] + [3]]`.
#[derive(Clone, Copy)]
struct PackedIds([u32; 4]);

/// The inline key of a piece of at most [`INLINE_KEY_BYTES`] bytes: its bytes, zero
/// padded, and its length in the last byte (so `"a"` and `"a\0"` differ).
///
/// Built from (possibly overlapping) whole-word loads rather than a byte copy into a
/// buffer: the variable-length copy was a `memcpy` call, and reading the buffer back as
/// a `u128` stalled on store forwarding (a quarter of the cache lookup's samples).
#[inline]
fn inline_key(piece: &[u8]) -> Option<u128> {
    let n = piece.len();
    if n > INLINE_KEY_BYTES {
        return None;
    }
    let le64 = |at: usize| {
        piece
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let le32 = |at: usize| {
        piece
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
    };
    let byte = |at: usize| piece.get(at).map_or(0, |&b| u64::from(b));
    let (lo, hi) = match n {
        0 => (0, 0),
        // Bytes 0, n/2 and n-1 cover every byte of a 1..=3-byte piece.
        1..=3 => (
            byte(0) | byte(n / 2) << (8 * (n / 2)) | byte(n - 1) << (8 * (n - 1)),
            0,
        ),
        // Two 4-byte loads overlapping in the middle: shared bytes are ORed onto
        // themselves.
        4..=7 => (le32(0) | le32(n - 4) << (8 * (n - 4)), 0),
        8 => (le64(0), 0),
        // Bytes 8..n are the top n-8 bytes of the last 8.
        _ => (le64(0), le64(n - 8) >> (8 * (16 - n))),
    };
    // n <= 15: the length fits in the top byte, above every piece byte.
    Some(u128::from(lo) | u128::from(hi) << 64 | (n as u128) << 120)
}

/// Piece bytes → BPE ids: short pieces under an inline key, the others by their bytes.
#[derive(Default)]
struct BpeCache {
    short: FxHashMap<u128, PackedIds>,
    long: FxHashMap<Box<[u8]>, PackedIds>,
    /// The ids of results longer than [`INLINE_IDS`], back to back.
    arena: Vec<u32>,
}

impl BpeCache {
    fn with_capacity(n: usize) -> Self {
        Self {
            short: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            long: FxHashMap::default(),
            arena: Vec::with_capacity(n),
        }
    }

    fn get(&self, piece: &[u8]) -> Option<&[u32]> {
        let packed = match inline_key(piece) {
            Some(key) => self.short.get(&key),
            None => self.long.get(piece),
        }?;
        let [a, _, _, len] = &packed.0;
        let len = *len as usize;
        if len <= INLINE_IDS {
            packed.0.get(..len)
        } else {
            self.arena.get(*a as usize..*a as usize + len)
        }
    }

    fn insert(&mut self, piece: &[u8], ids: &[u32]) {
        let entries = self.short.len() + self.long.len();
        // The arena is bounded too (its offsets are u32): a few ids per entry.
        if entries >= CACHE_MAX_ENTRIES || self.arena.len() + ids.len() > 16 * CACHE_MAX_ENTRIES {
            self.short.clear();
            self.long.clear();
            self.arena.clear();
        }
        let (Ok(len), Ok(offset)) = (u32::try_from(ids.len()), u32::try_from(self.arena.len()))
        else {
            return; // not cacheable (cannot happen below the bounds above)
        };
        let packed = if ids.len() <= INLINE_IDS {
            let mut inline = [0, 0, 0, len];
            inline[..ids.len()].copy_from_slice(ids);
            PackedIds(inline)
        } else {
            self.arena.extend_from_slice(ids);
            PackedIds([offset, 0, 0, len])
        };
        match inline_key(piece) {
            Some(key) => self.short.insert(key, packed),
            None => self.long.insert(piece.into(), packed),
        };
    }
}

/// BPE results of short pieces, per thread and per vocabulary (the reference caches
/// every piece too). Per thread rather than one shared map behind a lock: a shared
/// lock's counter is written by every lookup, and with several threads tokenizing the
/// cache line bouncing between cores cost more than the BPE it saved.
#[derive(Default)]
struct ThreadCaches {
    by_vocab: Vec<(u64, BpeCache)>,
}

impl ThreadCaches {
    fn for_vocab(&mut self, id: u64) -> &mut BpeCache {
        let i = match self.by_vocab.iter().position(|(v, _)| *v == id) {
            Some(i) => i,
            None => {
                if self.by_vocab.len() >= CACHE_MAX_VOCABS {
                    self.by_vocab.clear();
                }
                // Sized for a typical run up front: rehashing showed up in profiles.
                self.by_vocab.push((id, BpeCache::with_capacity(1 << 13)));
                self.by_vocab.len() - 1
            }
        };
        &mut self.by_vocab[i].1
    }
}

thread_local! {
    static CACHES: RefCell<ThreadCaches> = RefCell::new(ThreadCaches::default());
}

/// The reference's loop, on ids (words longer than [`LONG_WORD`] symbols go to
/// [`merge_heap`]): repeatedly merge every occurrence of the adjacent pair with the
/// lowest rank, left to right. The rank of each adjacent pair is kept in `ranks`, and a
/// merge only looks up the two pairs it creates, so a word of n symbols costs O(n) hash
/// lookups instead of O(n²). Each occurrence is merged in place: the symbols and ranks
/// right of it shift down one slot (a block copy), which was cheaper than rewriting the
/// whole word element by element in every pass (most passes merge one occurrence).
pub(crate) fn merge_simple(vocab: &Vocab, word: &mut Vec<u32>) {
    const NO_MERGE: u32 = u32::MAX;
    if word.len() > LONG_WORD {
        merge_heap(vocab, word);
        return;
    }
    let rank_of = |a: u32, b: u32| vocab.rank(a, b).unwrap_or(NO_MERGE);
    // Scratch on the stack: this runs once per distinct word, allocations showed up.
    // ranks[i]: rank of (word[i], word[i + 1]), for i < word.len() - 1.
    let mut rank_buf = [NO_MERGE; LONG_WORD];
    for (r, w) in rank_buf.iter_mut().zip(word.windows(2)) {
        *r = rank_of(w[0], w[1]);
    }
    while word.len() > 1 {
        let ranks = &mut rank_buf[..word.len() - 1];
        let Some(best) = ranks.iter().copied().min().filter(|&r| r != NO_MERGE) else {
            break;
        };
        // Every occurrence of the pair has this rank, and no other pair has it (ranks
        // come from one dict lookup per pair).
        let Some(merged_id) = vocab.merged_id(best) else {
            break;
        };
        let mut at = ranks.iter().position(|&r| r == best);
        while let Some(i) = at {
            // Merge word[i], word[i + 1]; pair i disappears, pairs i - 1 and i (now
            // (word[i - 1], merged) and (merged, word[i + 1])) are new. A new pair is
            // never the best one (the merged symbol differs from the pair's first), so
            // the next occurrence is searched from i + 1, as the reference continues
            // after the merged pair.
            let n = word.len();
            word[i] = merged_id;
            word.copy_within(i + 2..n, i + 1);
            word.truncate(n - 1);
            rank_buf.copy_within(i + 1..n - 1, i);
            let n = n - 1;
            if i > 0 {
                rank_buf[i - 1] = rank_of(word[i - 1], merged_id);
            }
            if i + 1 < n {
                rank_buf[i] = rank_of(merged_id, word[i + 1]);
            }
            at = rank_buf
                .get(i + 1..n.saturating_sub(1))
                .and_then(|rest| rest.iter().position(|&r| r == best))
                .map(|k| i + 1 + k);
        }
    }
}

/// The reference's loop, literally: one lookup per adjacent pair per pass. The oracle
/// of the tests of [`merge_simple`] and [`merge_heap`].
#[cfg(test)]
pub(crate) fn merge_reference(vocab: &Vocab, word: &mut Vec<u32>) {
    while word.len() > 1 {
        let mut best: Option<(u32, u32, u32, u32)> = None; // rank, first, second, merged
        for w in word.windows(2) {
            if let Some((rank, merged)) = vocab.merge(w[0], w[1]) {
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
        if let Some(rank) = vocab.rank(a, b) {
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
        let Some((first, second, merged)) = vocab.merge_at(rank) else {
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
                if let Some(rk) = vocab.rank(merged, word[r as usize]) {
                    heap.push(Reverse((rk, p)));
                }
            }
            let l = prev[p as usize];
            if l != NONE {
                if let Some(rk) = vocab.rank(word[l as usize], merged) {
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
    use super::{
        inline_key, merge_heap, merge_reference, merge_simple, BpeCache, CACHE_MAX_ENTRIES,
    };
    use crate::tokenizer::vocab::Vocab;

    /// Both fast versions must reproduce the reference loop exactly, on words short and
    /// long, repetitive enough to exercise equal ranks, overlaps (`aaa`) and re-formed
    /// pairs.
    #[test]
    fn inline_keys_distinguish_every_short_piece() {
        // Trailing NULs and lengths must not collide; 16 bytes and more are not inline.
        let pieces: [&[u8]; 6] = [b"", b"a", b"a\0", b"a\0\0", b"abcdefghijklmno", b"\x0f"];
        let keys: Vec<u128> = pieces.iter().map(|p| inline_key(p).unwrap()).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(inline_key(b"abcdefghijklmnop"), None);
    }

    /// The word-load construction of [`inline_key`] against the obvious byte copy, for
    /// every length and many byte patterns.
    #[test]
    fn inline_keys_equal_the_padded_bytes_and_length() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..20_000 {
            crate::tokenizer::xorshift64(&mut x);
            let n = round % 17;
            let piece: Vec<u8> = (0..n)
                .map(|i| match round % 3 {
                    0 => (x >> (i * 4 % 64)) as u8,
                    1 => [0, 0xff][(x >> i) as usize & 1],
                    _ => i as u8 + 1,
                })
                .collect();
            let expected = (n <= 15).then(|| {
                let mut buf = [0u8; 16];
                buf[..n].copy_from_slice(&piece);
                buf[15] = n as u8;
                u128::from_le_bytes(buf)
            });
            assert_eq!(inline_key(&piece), expected, "piece {piece:?}");
        }
    }

    #[test]
    fn cache_returns_what_was_inserted_for_short_and_long_pieces() {
        let mut cache = BpeCache::with_capacity(4);
        let cases: [(&[u8], Vec<u32>); 4] = [
            (b"cat", vec![7]),
            (b"cats", vec![1, 2, 3]),
            (b"catalogue", vec![1, 2, 3, 4, 5]),
            (b"a-piece-longer-than-fifteen-bytes", vec![9, 8]),
        ];
        for (piece, ids) in &cases {
            assert_eq!(cache.get(piece), None);
            cache.insert(piece, ids);
        }
        for (piece, ids) in &cases {
            assert_eq!(cache.get(piece), Some(ids.as_slice()));
        }
        assert_eq!(cache.get(b"ca"), None);
    }

    #[test]
    fn a_full_cache_starts_over_and_keeps_answering_right() {
        let mut cache = BpeCache::with_capacity(4);
        let ids = |i: u32| vec![i, i + 1, i + 2, i + 3, i + 4];
        for i in 0..CACHE_MAX_ENTRIES as u32 + 10 {
            cache.insert(format!("w{i}").as_bytes(), &ids(i));
            assert!(cache.short.len() <= CACHE_MAX_ENTRIES);
        }
        let last = CACHE_MAX_ENTRIES as u32 + 9;
        assert_eq!(
            cache.get(format!("w{last}").as_bytes()),
            Some(ids(last).as_slice())
        );
        assert_eq!(cache.get(b"w0"), None);
        assert_eq!(cache.short.len(), 10);
    }

    #[test]
    fn fast_merges_equal_the_reference_loop() {
        let vocab = Vocab::openai().unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let alphabets: [&[u8]; 4] = [
            b"ab",
            b"aeinrst ",
            b"abcdefghijklmnopqrstuvwxyz",
            b"0123.,!?",
        ];
        for case in 0..2000 {
            let alpha = alphabets[case % alphabets.len()];
            crate::tokenizer::xorshift64(&mut seed);
            let len = 1 + (seed % if case % 2 == 0 { 300 } else { 20 }) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alpha[((seed >> (i % 57)) as usize + i * 7) % alpha.len()])
                .collect();
            let (init, last) = bytes.split_at(bytes.len() - 1);
            let mut word: Vec<u32> = init.iter().map(|&b| vocab.byte_ids[b as usize]).collect();
            word.push(vocab.byte_ids_eow[last[0] as usize]);
            let mut expected = word.clone();
            merge_reference(&vocab, &mut expected);
            let mut a = word.clone();
            merge_simple(&vocab, &mut a);
            assert_eq!(
                a,
                expected,
                "simple, word {:?}",
                String::from_utf8_lossy(&bytes)
            );
            let mut b = word;
            merge_heap(&vocab, &mut b);
            assert_eq!(
                b,
                expected,
                "heap, word {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
