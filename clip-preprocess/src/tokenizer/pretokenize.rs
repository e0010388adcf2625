//! CLIP's pre-tokenizer: `regex.findall` of
//! `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
//! with IGNORECASE (the `regex` module, simple case folding), as a hand-written scanner.
//!
//! The character classes are measured per code point from the `regex` module under
//! IGNORECASE (see `data/unicode.rs`), so they follow its Unicode version and its
//! case-insensitive class semantics rather than Rust's.
use super::data::unicode::PRETOKENIZE_CLASSES;

const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const OTHER: u8 = 4;

/// Classes of the ASCII range, precomputed.
static ASCII_CLASSES: [u8; 128] = ascii_classes();

const fn ascii_classes() -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < PRETOKENIZE_CLASSES.len() {
        let (lo, hi, f) = PRETOKENIZE_CLASSES[i];
        let mut c = lo;
        while c <= hi && c < 128 {
            t[c as usize] = f;
            c += 1;
        }
        i += 1;
    }
    t
}

fn class(c: char) -> u8 {
    let u = c as u32;
    if u < 128 {
        return ASCII_CLASSES[u as usize];
    }
    class_range(u).2
}

/// The run of code points around `u` (`u >= 128`) that share its class: `(first, last,
/// class)`, an entry of the table or the gap between two entries (class 0).
fn class_range(u: u32) -> (u32, u32, u8) {
    match PRETOKENIZE_CLASSES.binary_search_by(|&(lo, hi, _)| {
        if hi < u {
            std::cmp::Ordering::Less
        } else if lo > u {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) => PRETOKENIZE_CLASSES.get(i).copied().unwrap_or((u, u, 0)),
        Err(i) => {
            let lo = i
                .checked_sub(1)
                .and_then(|j| PRETOKENIZE_CLASSES.get(j))
                .map_or(0, |&(_, hi, _)| hi + 1);
            let hi = PRETOKENIZE_CLASSES
                .get(i)
                .map_or(u32::MAX, |&(lo, _, _)| lo - 1);
            (lo, hi, 0)
        }
    }
}

/// Whether `c` matches the lowercase ASCII letter `lit` under the `regex` module's
/// IGNORECASE (measured: only `S`/`ſ` for `s`, and ASCII case for the others).
fn fold_eq(c: char, lit: u8) -> bool {
    let l = char::from(lit);
    c == l || c == l.to_ascii_uppercase() || (lit == b's' && c == '\u{017F}')
}

/// Length in bytes of the literal `lit` (ASCII) matched case-insensitively at the
/// start of `s`, if it matches.
fn match_literal(s: &str, lit: &[u8]) -> Option<usize> {
    let mut chars = s.char_indices();
    for &l in lit {
        let (_, c) = chars.next()?;
        if !fold_eq(c, l) {
            return None;
        }
    }
    Some(chars.next().map_or(s.len(), |(i, _)| i))
}

/// Calls `f` with every piece `regex.findall` returns, in order.
pub(crate) fn pretokenize<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let Some(c) = rest.chars().next() else { break };
        // `<|startoftext|>|<|endoftext|>`
        if c == '<' {
            if let Some(n) = match_literal(rest, b"<|startoftext|>")
                .or_else(|| match_literal(rest, b"<|endoftext|>"))
            {
                f(&rest[..n]);
                pos += n;
                continue;
            }
        }
        // `'s|'t|'re|'ve|'m|'ll|'d`
        if c == '\'' {
            let m = [&b"'s"[..], b"'t", b"'re", b"'ve", b"'m", b"'ll", b"'d"]
                .iter()
                .find_map(|lit| match_literal(rest, lit));
            if let Some(n) = m {
                f(&rest[..n]);
                pos += n;
                continue;
            }
        }
        let cls = class(c);
        let n = if cls & LETTER != 0 {
            run_len(rest, LETTER)
        } else if cls & NUMBER != 0 {
            c.len_utf8()
        } else if cls & OTHER != 0 {
            run_len(rest, OTHER)
        } else {
            pos += c.len_utf8();
            continue;
        };
        f(&rest[..n]);
        pos += n;
    }
}

/// Length in bytes of the longest prefix of `s` whose characters all have `flag`.
///
/// Letters of one script come in runs of the same table entry, so the last entry found
/// is tried before a new binary search; ASCII bytes are classified without decoding.
fn run_len(s: &str, flag: u8) -> usize {
    let bytes = s.as_bytes();
    let mut last = (1, 0, 0); // an empty range: the first non-ASCII character searches
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b < 0x80 {
            if ASCII_CLASSES[usize::from(b)] & flag == 0 {
                return i;
            }
            i += 1;
            continue;
        }
        // `i` is on a character boundary: it only ever advances by whole characters.
        let Some(c) = s.get(i..).and_then(|rest| rest.chars().next()) else {
            return i;
        };
        let u = c as u32;
        if !(last.0..=last.1).contains(&u) {
            last = class_range(u);
        }
        if last.2 & flag == 0 {
            return i;
        }
        i += c.len_utf8();
    }
    i
}

#[cfg(test)]
mod tests {
    use super::{class, class_range, pretokenize, run_len, PRETOKENIZE_CLASSES};

    /// The range lookup agrees with a per-character search at, around and between the
    /// table's entries, and the run scanner with a per-character loop.
    #[test]
    fn class_ranges_and_runs_agree_with_per_character_lookup() {
        let slow = |u: u32| {
            PRETOKENIZE_CLASSES
                .iter()
                .find(|&&(lo, hi, _)| lo <= u && u <= hi)
                .map_or(0, |&(_, _, f)| f)
        };
        let mut probes = vec![128, 0x10FFFF];
        for &(lo, hi, _) in PRETOKENIZE_CLASSES {
            probes.extend([lo.saturating_sub(1), lo, hi, hi + 1]);
        }
        for u in probes.into_iter().filter(|u| (128..=0x10FFFF).contains(u)) {
            let (lo, hi, f) = class_range(u);
            assert!(lo <= u && u <= hi, "{u:#x}");
            assert_eq!(f, slow(u), "{u:#x}");
            assert_eq!(slow(lo), f, "{u:#x}: start of its run");
            assert_eq!(slow(hi), f, "{u:#x}: end of its run");
        }
        for text in [
            "abc déf",
            "Привет, мир",
            "日本語テキスト!!",
            "a١٢b",
            "ſs's",
            "€€€ x",
        ] {
            for (start, _) in text.char_indices() {
                let rest = &text[start..];
                for flag in [1, 2, 4] {
                    let want = rest
                        .char_indices()
                        .find(|&(_, c)| class(c) & flag == 0)
                        .map_or(rest.len(), |(i, _)| i);
                    assert_eq!(run_len(rest, flag), want, "{rest:?} {flag}");
                }
            }
        }
    }

    fn pieces(s: &str) -> Vec<&str> {
        let mut v = Vec::new();
        pretokenize(s, |p| v.push(p));
        v
    }

    #[test]
    fn basic() {
        // Expected values from `regex.findall(pat, text)` of simple_tokenizer.py.
        assert_eq!(
            pieces("it's a <|endoftext|>dog's 12 ..!"),
            [
                "it",
                "'s",
                "a",
                "<|endoftext|>",
                "dog",
                "'s",
                "1",
                "2",
                "..!"
            ]
        );
        assert_eq!(pieces("'ſ we'll"), ["'ſ", "we", "'ll"]);
    }
}
