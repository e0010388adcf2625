//! Layout of the embedded vocabulary's merge-rank table and of its merge records,
//! shared by `build.rs` (which writes them) and `vocab.rs` (which reads them).
//!
//! `2^BITS` little-endian `u64` slots, each `(pair key << 32) | rank` or [`EMPTY`]; the
//! pair key of merge `a b` is `(a << 16) | b` (every id of OpenAI's vocabulary is below
//! 2^16). Open addressing with linear probing from [`slot`]: at 48,894 merges in
//! 131,072 slots a hit reads 1.3 slots on average and a miss 1.8 (measured on the real
//! merges), and `build.rs` checks that no run of occupied slots is longer than
//! [`MAX_PROBES`], so every lookup ends within that many reads.

/// log2 of the number of slots.
pub(crate) const BITS: u32 = 17;
/// An unused slot (no pair key is `u32::MAX`: ids stay below 49,408).
pub(crate) const EMPTY: u64 = u64::MAX;
/// Upper bound on the reads of one lookup (the longest run of occupied slots + 1).
pub(crate) const MAX_PROBES: usize = 64;

/// The first slot to probe for `key` (Fibonacci hashing: the top bits of a 64-bit
/// multiplicative hash).
#[inline]
pub(crate) fn slot(key: u32) -> usize {
    (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS)) as usize
}

/// The pair key of the adjacent symbols `a b`, if both ids fit in 16 bits.
#[inline]
pub(crate) fn pair_key(a: u32, b: u32) -> Option<u32> {
    ((a | b) >> 16 == 0).then_some((a << 16) | b)
}

/// The `(left id, right id)` of one 4-byte record of `openai_merges.bin` (two
/// little-endian `u16`), the merge list `build.rs` writes and both tables are read from.
#[inline]
pub(crate) fn merge_record(record: &[u8]) -> Option<(u32, u32)> {
    match record {
        &[a0, a1, b0, b1] => Some((
            u32::from(u16::from_le_bytes([a0, a1])),
            u32::from(u16::from_le_bytes([b0, b1])),
        )),
        _ => None,
    }
}
