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
    match PRETOKENIZE_CLASSES.binary_search_by(|&(lo, hi, _)| {
        if hi < u {
            std::cmp::Ordering::Less
        } else if lo > u {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) => PRETOKENIZE_CLASSES.get(i).map_or(0, |&(_, _, f)| f),
        Err(_) => 0,
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
fn run_len(s: &str, flag: u8) -> usize {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if class(c) & flag == 0 {
            return i;
        }
        end = i + c.len_utf8();
    }
    end
}

#[cfg(test)]
mod tests {
    use super::pretokenize;

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
