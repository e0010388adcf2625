//! Python's `html.unescape` (CPython 3.11 `Lib/html/__init__.py`), exactly.
//!
//! The reference regex is
//! `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`; a named reference
//! that is not an HTML5 entity is resolved to its longest known prefix (`&ampx` → `&x`),
//! numeric references follow `_invalid_charrefs` / `_invalid_codepoints`.
use std::borrow::Cow;

use super::data::html_entities::{HTML5, INVALID_CHARREFS, INVALID_CODEPOINTS};

/// `html.entities.html5[name]` (name without the `&`, with or without `;`).
fn html5(name: &str) -> Option<&'static str> {
    HTML5
        .binary_search_by(|&(k, _)| k.cmp(name))
        .ok()
        .and_then(|i| HTML5.get(i).map(|&(_, v)| v))
}

/// The text a numeric character reference `num` stands for.
fn numeric(num: u64, out: &mut String) {
    let fixed = u32::try_from(num).ok().and_then(|n| {
        INVALID_CHARREFS
            .binary_search_by_key(&n, |&(k, _)| k)
            .ok()
            .and_then(|i| INVALID_CHARREFS.get(i))
    });
    if let Some(&(_, s)) = fixed {
        out.push_str(s);
        return;
    }
    if (0xD800..=0xDFFF).contains(&num) || num > 0x10FFFF {
        out.push('\u{FFFD}');
        return;
    }
    // In range and not a surrogate: a valid scalar value.
    let n = num as u32;
    if INVALID_CODEPOINTS.binary_search(&n).is_ok() {
        return;
    }
    if let Some(c) = char::from_u32(n) {
        out.push(c);
    }
}

/// Parses a run of digits in `radix`, saturating (CPython has arbitrary precision; any
/// value past U+10FFFF gives U+FFFD either way).
///
/// DIFFERENCE: CPython refuses to convert more than 4300 decimal digits (`ValueError`,
/// which makes `clip.tokenize` raise); here such a reference gives U+FFFD.
fn parse_saturating(digits: &str, radix: u32) -> u64 {
    let mut v: u64 = 0;
    for d in digits.chars() {
        let d = u64::from(d.to_digit(radix).unwrap_or(0));
        v = v.saturating_mul(u64::from(radix)).saturating_add(d);
    }
    v
}

/// `html.unescape(s)`.
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let consumed = replace_charref(after, &mut out);
        match consumed {
            Some(n) => rest = &after[n..],
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Tries the charref regex at `after` (the text following a `&`). On a match, appends the
/// replacement and returns the number of bytes matched after the `&`.
fn replace_charref(after: &str, out: &mut String) -> Option<usize> {
    let b = after.as_bytes();
    if b.first() == Some(&b'#') {
        // `#[0-9]+;?`
        let dec = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if dec > 0 {
            let mut end = 1 + dec;
            let num = parse_saturating(&after[1..end], 10);
            if b.get(end) == Some(&b';') {
                end += 1;
            }
            numeric(num, out);
            return Some(end);
        }
        // `#[xX][0-9a-fA-F]+;?`
        if matches!(b.get(1), Some(b'x' | b'X')) {
            let hex = b[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            if hex > 0 {
                let mut end = 2 + hex;
                let num = parse_saturating(&after[2..end], 16);
                if b.get(end) == Some(&b';') {
                    end += 1;
                }
                numeric(num, out);
                return Some(end);
            }
        }
        return None;
    }
    // `[^\t\n\f <&#;]{1,32};?`
    let mut end = 0;
    let mut nchars = 0;
    for (i, c) in after.char_indices() {
        if nchars == 32 || matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        nchars += 1;
        end = i + c.len_utf8();
    }
    if nchars == 0 {
        return None;
    }
    if b.get(end) == Some(&b';') {
        end += 1;
    }
    let name = &after[..end];
    if let Some(v) = html5(name) {
        out.push_str(v);
        return Some(end);
    }
    // Longest known prefix of at least 2 characters, shorter than the name.
    let idx: Vec<usize> = name.char_indices().map(|(i, _)| i).collect();
    for x in (2..idx.len()).rev() {
        let (head, tail) = name.split_at(idx[x]);
        if let Some(v) = html5(head) {
            out.push_str(v);
            out.push_str(tail);
            return Some(end);
        }
    }
    out.push('&');
    out.push_str(name);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn python_cases() {
        // Expected values from CPython 3.11 `html.unescape`.
        let cases = [
            ("&amp;", "&"),
            ("&amp", "&"),
            ("&ampx", "&x"),
            ("&notit;", "¬it;"),
            ("&#65;&#x41;&#X41", "AA\u{41}"),
            ("&#0;", "\u{FFFD}"),
            ("&#x80;", "\u{20AC}"),
            ("&#xD800;", "\u{FFFD}"),
            ("&#x110000;", "\u{FFFD}"),
            ("&#1;", ""),
            ("&#;&#x;&;", "&#;&#x;&;"),
            ("&unknown;", "&unknown;"),
        ];
        for (input, want) in cases {
            assert_eq!(unescape(input), want, "{input:?}");
        }
    }
}
