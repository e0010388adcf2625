//! The reference's text cleaning, `simple_tokenizer.py`:
//! `whitespace_clean(basic_clean(text)).lower()`, that is
//!
//! 1. `ftfy.fix_text(text)` (`ftfy.rs`, a port of ftfy 6.3.1 with its default settings),
//! 2. `html.unescape(html.unescape(text))`, then `strip()`,
//! 3. every run of `regex`'s `\s` replaced by one space, then `strip()`,
//! 4. CPython's `str.lower()`.
mod codecs;
mod ftfy;

use std::borrow::Cow;

use super::data::in_ranges;
use super::data::unicode::{PY_ISSPACE, REGEX_WHITESPACE};
use super::html;
use super::lower::py_lower;

/// Cleans `text` exactly as CLIP's reference tokenizer does before pre-tokenizing:
/// ftfy's `fix_text`, HTML unescaping (twice), whitespace collapsing and Python's
/// `str.lower()`.
///
/// ```
/// use clip_preprocess::tokenizer::clean::clean;
///
/// assert_eq!(clean("  The “Café”&amp;amp;\tﬁsh  "), "the \"café\"& fish");
/// assert_eq!(clean("ＬＯＵＤ　ＮＯＩＳＥＳ"), "loud noises");
/// ```
pub fn clean(text: &str) -> String {
    let fixed = ftfy::fix_text(text);
    let once = html::unescape(&fixed);
    let twice = html::unescape(&once);
    let collapsed = collapse_whitespace(py_strip(&twice));
    py_lower(py_strip(&collapsed))
}

fn is_py_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, ' ' | '\t'..='\r' | '\x1c'..='\x1f')
    } else {
        in_ranges(PY_ISSPACE, c)
    }
}

fn is_regex_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, ' ' | '\t'..='\r')
    } else {
        in_ranges(REGEX_WHITESPACE, c)
    }
}

/// `str.strip()`: removes leading and trailing characters with `str.isspace()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `regex.sub(r"\s+", " ", text)`.
fn collapse_whitespace(s: &str) -> Cow<'_, str> {
    // Fast path: no whitespace other than single spaces.
    let b = s.as_bytes();
    let simple = b.iter().enumerate().all(|(i, &c)| {
        if c == b' ' {
            b.get(i + 1) != Some(&b' ')
        } else {
            // Lead bytes of the non-ASCII `\s` characters (checked by a test below).
            (c > b' ' && c < 0x80) || (c >= 0x80 && !matches!(c, 0xC2 | 0xE1 | 0xE2 | 0xE3))
        }
    });
    if simple {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    let mut changed = false;
    for c in s.chars() {
        if is_regex_space(c) {
            if !in_run {
                out.push(' ');
                changed |= c != ' ';
            } else {
                changed = true;
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn reference_examples() {
        // Expected values from `whitespace_clean(basic_clean(t)).lower()`.
        assert_eq!(clean("Hello,   World!\n"), "hello, world!");
        assert_eq!(clean("&amp;lt;b&amp;gt;"), "<b>");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn whitespace_fast_path_lead_bytes() {
        use crate::tokenizer::data::unicode::REGEX_WHITESPACE;
        for &(lo, hi) in REGEX_WHITESPACE {
            for c in (lo..=hi)
                .filter_map(char::from_u32)
                .filter(|c| !c.is_ascii())
            {
                let mut buf = [0u8; 4];
                let lead = c.encode_utf8(&mut buf).as_bytes()[0];
                assert!(matches!(lead, 0xC2 | 0xE1 | 0xE2 | 0xE3), "{c:?}");
            }
        }
    }
}
