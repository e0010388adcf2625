//! Tables measured from the reference runtime by `tools/gen_tokenizer_goldens.py tables`.
//!
//! They are generated, not hand-written, so that the port follows the Unicode versions
//! of the reference (CPython 3.11's `unicodedata` 14.0 for `str.lower()`/`str.isspace()`,
//! the `regex` module's own tables for `\p{L}`, `\p{N}`, `\s`), not Rust's.
#![allow(clippy::unreadable_literal)]

pub(crate) mod ftfy_tables;
pub(crate) mod html_entities;
pub(crate) mod unicode;

/// Whether `c` falls in one of the sorted, disjoint inclusive `ranges`.
pub(crate) fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The value attached to `c` in a sorted `(code point, value)` table.
pub(crate) fn lookup<T: Copy>(table: &[(u32, T)], c: char) -> Option<T> {
    table
        .binary_search_by_key(&(c as u32), |&(k, _)| k)
        .ok()
        .and_then(|i| table.get(i).map(|&(_, v)| v))
}
