//! CPython's `str.lower()`: full (one-to-many) lowercase mappings such as
//! `İ` → `i̇`, and the Final_Sigma rule for `Σ` (`ς` at the end of a word).
//!
//! The per-code-point mappings and the cased / case-ignorable properties come from
//! CPython 3.11 itself (Unicode 14.0), so characters added to Unicode later stay
//! unchanged, as they do in the reference. Rust's `str::to_lowercase` follows a newer
//! Unicode and is therefore not used.
use super::data::unicode::{CASED, CASE_IGNORABLE, LOWER};
use super::data::{in_ranges, lookup};

const CAPITAL_SIGMA: char = '\u{03A3}';

/// `text.lower()` as CPython computes it.
pub(crate) fn py_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
        return out;
    }
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
    use super::py_lower;

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
}
