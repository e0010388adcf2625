//! CPython's `str.lower()`: full (one-to-many) lowercase mappings such as
//! `İ` → `i̇`, and the Final_Sigma rule for `Σ` (`ς` at the end of a word).
//!
//! The per-code-point mappings and the cased / case-ignorable properties come from
//! CPython 3.11 itself (Unicode 14.0), so characters added to Unicode later stay
//! unchanged, as they do in the reference. Rust's `str::to_lowercase` follows a newer
//! Unicode and is therefore not used.
use super::data::in_ranges;
#[cfg(test)]
use super::data::lookup;
use super::data::unicode::{CASED, CASE_IGNORABLE, LOWER};

const CAPITAL_SIGMA: char = '\u{03A3}';

/// `text.lower()` as CPython computes it.
///
/// Unchanged stretches are copied as byte runs, and the gap of unmapped code points
/// around the last non-ASCII lookup is remembered, so text in one script (lowercase
/// Cyrillic, CJK, ...) costs one table search per run instead of one per character (the
/// per-character search was most of this function's time in `clip tokenize`).
pub(crate) fn py_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
        return out;
    }
    // text[run..i] is copied unchanged when a changed character (or the end) comes.
    let mut run = 0;
    // Non-ASCII code points in gap.0..gap.1 have no entry in LOWER (empty at first).
    let mut gap = (0u32, 0u32);
    for (i, c) in text.char_indices() {
        let u = c as u32;
        if c.is_ascii() {
            if c.is_ascii_uppercase() {
                out.push_str(&text[run..i]);
                out.push(c.to_ascii_lowercase());
                run = i + 1;
            }
            continue;
        }
        let lower: &str = if c == CAPITAL_SIGMA {
            if final_sigma(text, i) {
                "\u{03C2}"
            } else {
                "\u{03C3}"
            }
        } else if (gap.0..gap.1).contains(&u) {
            continue;
        } else {
            match LOWER.binary_search_by_key(&u, |&(k, _)| k) {
                Ok(k) => LOWER.get(k).map_or("", |&(_, lower)| lower),
                Err(k) => {
                    let lo = k
                        .checked_sub(1)
                        .and_then(|j| LOWER.get(j))
                        .map_or(0, |&(p, _)| p + 1);
                    let hi = LOWER.get(k).map_or(u32::MAX, |&(n, _)| n);
                    gap = (lo, hi);
                    continue;
                }
            }
        };
        out.push_str(&text[run..i]);
        out.push_str(lower);
        run = i + c.len_utf8();
    }
    out.push_str(&text[run..]);
    out
}

/// The obvious per-character version: the oracle of [`py_lower`]'s runs and gaps.
#[cfg(test)]
fn py_lower_per_char(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if c == CAPITAL_SIGMA {
            out.push(if final_sigma(text, i) {
                '\u{03C2}'
            } else {
                '\u{03C3}'
            });
        } else if let Some(lower) = lookup(LOWER, c) {
            out.push_str(lower);
        } else {
            out.push(c);
        }
    }
    out
}

/// CPython's `handle_capital_sigma`: `\p{cased}\p{case-ignorable}* Σ
/// !(\p{case-ignorable}* \p{cased})`.
fn final_sigma(text: &str, at: usize) -> bool {
    let before = text[..at]
        .chars()
        .rev()
        .find(|&c| !in_ranges(CASE_IGNORABLE, c));
    if !before.is_some_and(|c| in_ranges(CASED, c)) {
        return false;
    }
    let after = text[at + CAPITAL_SIGMA.len_utf8()..]
        .chars()
        .find(|&c| !in_ranges(CASE_IGNORABLE, c));
    !after.is_some_and(|c| in_ranges(CASED, c))
}

#[cfg(test)]
mod tests {
    use super::{py_lower, py_lower_per_char};

    #[test]
    fn special_cases() {
        // Expected values from CPython 3.11 `str.lower()`.
        assert_eq!(py_lower("İSTANBUL"), "i\u{307}stanbul");
        assert_eq!(py_lower("ΟΔΥΣΣΕΥΣ"), "οδυσσευς");
        assert_eq!(py_lower("Σ"), "σ");
        assert_eq!(py_lower("ΑΣ."), "ας.");
        assert_eq!(py_lower("ΑΣ'Α"), "ασ'α");
        assert_eq!(py_lower("STRASSE ẞ"), "strasse ß");
    }

    /// Every code point, alone and between neighbours of other scripts, against the
    /// per-character oracle (the gap cache must never skip a mapped character).
    #[test]
    fn runs_and_gaps_equal_the_per_character_version() {
        let chars: Vec<char> = (0..=0x10FFFFu32).filter_map(char::from_u32).collect();
        for &c in &chars {
            let s = c.to_string();
            assert_eq!(py_lower(&s), py_lower_per_char(&s), "U+{:04X}", c as u32);
        }
        // Windows of consecutive code points (gaps reused across neighbours), with
        // ASCII, sigma and far-away characters mixed in.
        for (n, w) in chars.windows(7).enumerate().step_by(3) {
            let mut s: String = w.iter().collect();
            match n % 5 {
                0 => s.push_str("Ab"),
                1 => s.insert(0, 'Σ'),
                2 => s.push('Σ'),
                3 => s.insert_str(0, "ÀΣ İ"),
                _ => s.push('д'),
            }
            assert_eq!(py_lower(&s), py_lower_per_char(&s), "{s:?}");
        }
    }
}
