//! A port of `ftfy.fix_text` (ftfy 6.3.1) with its default `TextFixerConfig`.
//!
//! Structure and names follow ftfy's `__init__.py` and `fixes.py`; the tables and regular
//! expressions are translated from ftfy's live objects by
//! `tools/gen_tokenizer_goldens.py tables` (`data/ftfy_tables.rs`).
//!
//! Known differences (see `tests/data/tokenizer/README.md`):
//! * NFC comes from the `unicode-normalization` crate (a newer Unicode than CPython 3.11's
//!   14.0): only characters assigned after Unicode 14 can normalize differently.
//! * `fix_surrogates` is a no-op: a Rust `&str` cannot hold surrogates, and no step here
//!   creates one (ftfy's HTML unescaping maps them to U+FFFD and `utf-8-variants`
//!   rejects lone ones).
use std::borrow::Cow;
use std::sync::OnceLock;

use regex::bytes::Regex as BytesRegex;
use regex::Regex;
use regex_automata::dfa::{dense, Automaton};
use regex_automata::Input;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use super::codecs::{charmap, charmaps, decode_utf8};
use crate::tokenizer::data::ftfy_tables as t;
use crate::tokenizer::data::{html_entities::FTFY_ENTITIES, lookup};
use crate::tokenizer::html;

/// `TextFixerConfig.max_decode_length`: segments are cut after this many characters.
const MAX_DECODE_LENGTH: usize = 1_000_000;

struct Regexes {
    utf8_detector: Regex,
    utf8_detector_lookbehind: Regex,
    altered_utf8: BytesRegex,
    lossy_utf8: BytesRegex,
    ansi: Regex,
}

/// The compiled regular expressions. They are constants translated from ftfy, checked
/// by the unit tests, so failing to compile them is a bug in this crate, not bad input.
fn regexes() -> &'static Regexes {
    static RE: OnceLock<Regexes> = OnceLock::new();
    #[allow(clippy::expect_used)] // constant patterns; compiled in every test run
    RE.get_or_init(|| Regexes {
        utf8_detector: Regex::new(t::UTF8_DETECTOR_RE).expect("UTF8_DETECTOR_RE"),
        utf8_detector_lookbehind: Regex::new(&format!(r"\A{}\z", t::UTF8_DETECTOR_RE_LOOKBEHIND))
            .expect("UTF8_DETECTOR_RE_LOOKBEHIND"),
        altered_utf8: BytesRegex::new(t::ALTERED_UTF8_RE).expect("ALTERED_UTF8_RE"),
        lossy_utf8: BytesRegex::new(t::LOSSY_UTF8_RE).expect("LOSSY_UTF8_RE"),
        ansi: Regex::new(t::ANSI_RE).expect("ANSI_RE"),
    })
}

/// `ftfy.fix_text(text)`: fixes `text` in segments that end after each `\n` (or after
/// `MAX_DECODE_LENGTH` characters). HTML unescaping is on until a segment containing `<`
/// is seen, and stays off from then on, as in ftfy.
pub(crate) fn fix_text(text: &str) -> Cow<'_, str> {
    if text.is_empty() || ascii_untouched(text) {
        return Cow::Borrowed(text);
    }
    let mut unescape = true;
    let mut out: Option<String> = None;
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        // Cut at MAX_DECODE_LENGTH characters.
        if end > MAX_DECODE_LENGTH {
            if let Some((i, _)) = rest.char_indices().nth(MAX_DECODE_LENGTH) {
                end = end.min(i);
            }
        }
        let segment = &rest[..end];
        if unescape && segment.contains('<') {
            unescape = false;
        }
        let fixed = fix_and_explain(segment, unescape);
        match (&mut out, fixed) {
            (None, Cow::Borrowed(_)) => {}
            (None, Cow::Owned(s)) => {
                let mut o = String::with_capacity(text.len() + 16);
                o.push_str(&text[..pos]);
                o.push_str(&s);
                out = Some(o);
            }
            (Some(o), f) => o.push_str(&f),
        }
        pos += end;
    }
    match out {
        Some(o) => Cow::Owned(o),
        None => Cow::Borrowed(text),
    }
}

/// Whether no fixer can change `text`: ASCII (nothing to decode, widen, uncurl,
/// un-ligature or normalize) without `&` (entities), `\r` (line breaks), ESC (terminal
/// escapes) or a control character that `remove_control_chars` deletes.
fn ascii_untouched(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b'\t' | b'\n' | 0x0C | 0x20..=0x7E) && b != b'&')
}

/// `fix_and_explain(segment)`: applies every fixer until the text stops changing.
///
/// One scan of the text says which fixers can possibly change it (see [`scan`]); the
/// others are skipped, which gives the same result faster. The scan is redone after
/// every change.
fn fix_and_explain(segment: &str, unescape_html: bool) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(segment);
    loop {
        let orig = text.clone();
        let mut mask = scan(&text);
        let mut changed = false;
        let mut step = |text: &mut Cow<'_, str>, needs: u32, fixer: fn(&str) -> Cow<'_, str>| {
            if mask & needs == 0 {
                return;
            }
            let fixed = match fixer(text) {
                Cow::Borrowed(_) => return,
                Cow::Owned(s) => s,
            };
            *text = Cow::Owned(fixed);
            mask = scan(text);
            changed = true;
        };
        if unescape_html {
            step(&mut text, AMP, self::unescape_html);
        }
        step(&mut text, NON_ASCII, fix_encoding);
        step(&mut text, C1, fix_c1_controls);
        step(&mut text, LIGATURE, fix_latin_ligatures);
        step(&mut text, WIDTH, fix_character_width);
        step(&mut text, QUOTE, uncurl_quotes);
        step(&mut text, BREAK, fix_line_breaks);
        step(&mut text, ESC, remove_terminal_escapes);
        step(&mut text, CONTROL, remove_control_chars);
        step(&mut text, NON_ASCII, normalize_nfc);
        if !changed || text == orig {
            return text;
        }
    }
}

const AMP: u32 = 1;
const NON_ASCII: u32 = 1 << 1;
const C1: u32 = 1 << 2;
const LIGATURE: u32 = 1 << 3;
const WIDTH: u32 = 1 << 4;
const QUOTE: u32 = 1 << 5;
const BREAK: u32 = 1 << 6;
const ESC: u32 = 1 << 7;
const CONTROL: u32 = 1 << 8;

/// Non-ASCII code points where [`scan`] needs no table lookup once C1 controls and
/// quotes are checked: no entry of `LIGATURES`, `WIDTH_MAP` or `CONTROL_CHARS`, and no
/// line break but U+0085 (checked first), lies in them. They hold Latin-1's accented
/// letters, Greek, Cyrillic, Hebrew, Arabic, the Indic scripts and CJK.
const SCAN_QUIET: [std::ops::Range<u32>; 3] = [0x80..0x132, 0x200..0x2000, 0x3001..0xFB00];

/// Which fixers could change `text`: a superset of the characters each one acts on.
fn scan(text: &str) -> u32 {
    let mut m = 0;
    for c in text.chars() {
        let u = c as u32;
        if u < 0x80 {
            m |= match c {
                '&' => AMP,
                '\r' => BREAK,
                '\x1b' => ESC | CONTROL,
                '\t' | '\n' | '\x0c' => 0,
                '\0'..='\x1f' | '\x7f' => CONTROL,
                _ => 0,
            };
            continue;
        }
        m |= NON_ASCII;
        if u < 0xA0 {
            m |= C1 | if u == 0x85 { BREAK } else { 0 };
        }
        if u == 0x2BC || (0x2018..=0x201F).contains(&u) {
            m |= QUOTE;
        }
        // Most letters of non-Latin scripts lie where none of the tables below has an
        // entry (a test checks it): skip their three binary searches.
        if SCAN_QUIET.iter().any(|r| r.contains(&u)) {
            continue;
        }
        if lookup(t::LIGATURES, c).is_some() {
            m |= LIGATURE;
        }
        if lookup(t::WIDTH_MAP, c).is_some() {
            m |= WIDTH;
        }
        if u == 0x2028 || u == 0x2029 {
            m |= BREAK;
        }
        if t::CONTROL_CHARS.binary_search(&u).is_ok() {
            m |= CONTROL;
        }
    }
    m
}

/// Replaces every match of `re` with `rep(match)`; `Borrowed` when nothing matched.
fn replace_with<'a>(
    text: &'a str,
    re: &Regex,
    mut rep: impl FnMut(&str) -> Cow<'_, str>,
) -> Cow<'a, str> {
    let mut out = String::new();
    let mut last = 0;
    for m in re.find_iter(text) {
        out.push_str(&text[last..m.start()]);
        out.push_str(&rep(m.as_str()));
        last = m.end();
    }
    if last == 0 && out.is_empty() {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

// ------------------------------------------------------------------ unescape_html

/// `fixes.unescape_html`: `&#?[0-9A-Za-z]{1,24};` replaced from ftfy's entity table,
/// numeric ones through `html.unescape` unless that leaves a `;`.
fn unescape_html(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] != b'&' {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 1;
        let hash = b.get(j) == Some(&b'#');
        if hash {
            j += 1;
        }
        let run = b[j..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if !(1..=24).contains(&run) || b.get(j + run) != Some(&b';') {
            i += 1;
            continue;
        }
        let end = j + run + 1;
        let m = &text[start..end];
        let rep: Option<Cow<'_, str>> =
            if let Ok(k) = FTFY_ENTITIES.binary_search_by(|&(k, _)| k.cmp(m)) {
                FTFY_ENTITIES.get(k).map(|&(_, v)| Cow::Borrowed(v))
            } else if hash {
                let u = html::unescape(m);
                if u.contains(';') {
                    None
                } else {
                    Some(u)
                }
            } else {
                None
            };
        if let Some(rep) = rep {
            out.push_str(&text[last..start]);
            out.push_str(&rep);
            last = end;
            changed = true;
        }
        i = end;
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

// ------------------------------------------------------------------ fix_encoding

/// `badness.is_bad`: whether `BADNESS_RE` matches anywhere in `text`.
fn is_bad(text: &str) -> bool {
    match badness_dfa().map(|dfa| dfa.try_search_fwd(&Input::new(text).earliest(true))) {
        Some(Ok(found)) => found.is_some(),
        // No DFA (see `badness_dfa`), or a search error, which a full DFA without quit
        // bytes cannot raise: ask the regex.
        None | Some(Err(_)) => badness_regex().is_match(text),
    }
}

/// `BADNESS_RE` compiled by `build.rs` into a dense DFA (see there for why), embedded
/// with the 4-byte alignment that `dense::DFA::from_bytes` needs.
#[repr(C)]
struct Aligned<B: ?Sized> {
    _align: [u32; 0],
    bytes: B,
}

static BADNESS_DFA: &Aligned<[u8]> = &Aligned {
    _align: [],
    bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/ftfy_badness.dfa")),
};

/// The embedded DFA, or `None` if it does not deserialize (a target of the other byte
/// order), in which case the pattern is compiled instead.
fn badness_dfa() -> Option<&'static dense::DFA<&'static [u32]>> {
    static DFA: OnceLock<Option<dense::DFA<&'static [u32]>>> = OnceLock::new();
    DFA.get_or_init(|| {
        dense::DFA::from_bytes(&BADNESS_DFA.bytes)
            .ok()
            .map(|(dfa, _)| dfa)
    })
    .as_ref()
}

/// `BADNESS_RE` as a `regex::Regex`: the fallback, and the oracle of the DFA's test.
fn badness_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    #[allow(clippy::expect_used)] // a constant pattern, compiled in every test run
    RE.get_or_init(|| Regex::new(t::BADNESS_RE.trim_end()).expect("BADNESS_RE"))
}

/// `ftfy.fix_encoding`: one-step fixes until nothing changes.
pub(crate) fn fix_encoding(text: &str) -> Cow<'_, str> {
    let mut cur = Cow::Borrowed(text);
    loop {
        let next = fix_encoding_one_step(&cur);
        match next {
            Cow::Borrowed(_) => return cur,
            Cow::Owned(s) => {
                if s == *cur {
                    return cur;
                }
                cur = Cow::Owned(s);
            }
        }
    }
}

/// `_fix_encoding_one_step_and_explain`.
fn fix_encoding_one_step(text: &str) -> Cow<'_, str> {
    if text.is_empty() || text.is_ascii() || !is_bad(text) {
        return Cow::Borrowed(text);
    }
    let re = regexes();
    let mut latin1_possible = false;
    for map in charmaps() {
        let Some(mut bytes) = map.encode(text) else {
            continue;
        };
        if map.name == "latin-1" {
            latin1_possible = true;
        }
        if map.name != "macroman" && re.altered_utf8.is_match(&bytes) {
            bytes = restore_byte_a0(&bytes);
        }
        if map.name.starts_with("sloppy") {
            bytes = re
                .lossy_utf8
                .replace_all(&bytes, "\u{FFFD}".as_bytes())
                .into_owned();
        }
        let variants = bytes.contains(&0xED) || bytes.contains(&0xC0);
        if let Some(fixed) = decode_utf8(&bytes, variants) {
            return Cow::Owned(fixed);
        }
    }
    if re.utf8_detector.is_match(text) {
        if let Cow::Owned(fixed) = decode_inconsistent_utf8(text) {
            if fixed != text {
                return Cow::Owned(fixed);
            }
        }
    }
    // ftfy checks `"windows-1252" in possible_1byte_encodings`, a name that list never
    // holds (it holds "sloppy-windows-1252"), so this branch always runs for Latin-1 text.
    if latin1_possible {
        if let Some(fixed) = latin1_to_windows1252(text) {
            if fixed != text {
                return Cow::Owned(fixed);
            }
        }
    }
    if text.chars().any(is_c1) {
        return fix_c1_controls(text);
    }
    Cow::Borrowed(text)
}

/// `text.encode("latin-1").decode("windows-1252")` with Python's strict codec: the five
/// bytes windows-1252 leaves undefined are an error.
fn latin1_to_windows1252(text: &str) -> Option<String> {
    let w1252 = charmap("sloppy-windows-1252")?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let u = c as u32;
        if (0x80..0xA0).contains(&u) {
            if matches!(u, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D) {
                return None;
            }
            out.push(w1252.decode_byte(u as u8));
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `fixes.restore_byte_a0`.
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    // A_GRAVE_WORD_RE = b"\xc3 (?! |quele|quela|quilo|s )" -> b"\xc3\xa0 "
    let mut step1 = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xC3 && bytes.get(i + 1) == Some(&b' ') {
            let after = &bytes[i + 2..];
            let blocked = [&b" "[..], b"quele", b"quela", b"quilo", b"s "]
                .iter()
                .any(|p| after.starts_with(p));
            if !blocked {
                step1.extend_from_slice(b"\xc3\xa0 ");
                i += 2;
                continue;
            }
        }
        step1.push(bytes[i]);
        i += 1;
    }
    regexes()
        .altered_utf8
        .replace_all(&step1, |caps: &regex::bytes::Captures<'_>| {
            caps.get(0)
                .map(|m| {
                    m.as_bytes()
                        .iter()
                        .map(|&b| if b == b' ' { 0xA0 } else { b })
                        .collect::<Vec<u8>>()
                })
                .unwrap_or_default()
        })
        .into_owned()
}

/// `fixes.decode_inconsistent_utf8`: fixes each `UTF8_DETECTOR_RE` match that is shorter
/// than the whole text and looks bad. The regex's leading negative look-behind is
/// checked by hand (the `regex` crate has no look-around).
fn decode_inconsistent_utf8(text: &str) -> Cow<'_, str> {
    let re = regexes();
    let total = text.chars().count();
    let mut out = String::new();
    let mut last = 0;
    let mut pos = 0;
    let mut changed = false;
    while pos <= text.len() {
        let Some(m) = re.utf8_detector.find_at(text, pos) else {
            break;
        };
        let prev = text[..m.start()].chars().next_back();
        if let Some(p) = prev {
            let mut buf = [0u8; 4];
            if re
                .utf8_detector_lookbehind
                .is_match(p.encode_utf8(&mut buf))
            {
                // Look-behind failed here; retry one character further.
                pos = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
        }
        let sub = m.as_str();
        if sub.chars().count() < total && is_bad(sub) {
            if let Cow::Owned(fixed) = fix_encoding(sub) {
                out.push_str(&text[last..m.start()]);
                out.push_str(&fixed);
                last = m.end();
                changed = true;
            }
        }
        pos = m.end().max(m.start() + 1);
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

// ------------------------------------------------------------------ character fixers

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// `fixes.fix_c1_controls`: C1 controls decoded as sloppy windows-1252.
fn fix_c1_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_c1) {
        return Cow::Borrowed(text);
    }
    let Some(w1252) = charmap("sloppy-windows-1252") else {
        return Cow::Borrowed(text);
    };
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_c1(c) {
                    w1252.decode_byte(c as u8)
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// Applies a per-character translation table (`str.translate`) to non-ASCII characters.
fn translate<'a>(text: &'a str, table: &[(u32, &str)], first: u32, last: u32) -> Cow<'a, str> {
    let hit = |c: char| (first..=last).contains(&(c as u32)) && lookup(table, c).is_some();
    if text.is_ascii() || !text.chars().any(hit) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match lookup(table, c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn table_span(table: &[(u32, &str)]) -> (u32, u32) {
    (
        table.first().map_or(0, |&(k, _)| k),
        table.last().map_or(0, |&(k, _)| k),
    )
}

/// `fixes.fix_latin_ligatures`.
fn fix_latin_ligatures(text: &str) -> Cow<'_, str> {
    let (a, b) = table_span(t::LIGATURES);
    translate(text, t::LIGATURES, a, b)
}

/// `fixes.fix_character_width`.
fn fix_character_width(text: &str) -> Cow<'_, str> {
    let (a, b) = table_span(t::WIDTH_MAP);
    translate(text, t::WIDTH_MAP, a, b)
}

/// `fixes.uncurl_quotes`.
fn uncurl_quotes(text: &str) -> Cow<'_, str> {
    let single = |c: char| c == '\u{02BC}' || ('\u{2018}'..='\u{201B}').contains(&c);
    let double = |c: char| ('\u{201C}'..='\u{201F}').contains(&c);
    if text.is_ascii() || !text.chars().any(|c| single(c) || double(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if single(c) {
                    '\''
                } else if double(c) {
                    '"'
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// `fixes.fix_line_breaks`.
fn fix_line_breaks(text: &str) -> Cow<'_, str> {
    let other = |c: char| matches!(c, '\r' | '\u{2028}' | '\u{2029}' | '\u{85}');
    if !text.chars().any(other) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace("\r\n", "\n")
            .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n"),
    )
}

/// `fixes.remove_terminal_escapes`.
fn remove_terminal_escapes(text: &str) -> Cow<'_, str> {
    if !text.contains('\x1b') {
        return Cow::Borrowed(text);
    }
    replace_with(text, &regexes().ansi, |_| Cow::Borrowed(""))
}

/// `fixes.remove_control_chars`.
fn remove_control_chars(text: &str) -> Cow<'_, str> {
    let is_ctrl = |c: char| t::CONTROL_CHARS.binary_search(&(c as u32)).is_ok();
    if !text.chars().any(is_ctrl) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().filter(|&c| !is_ctrl(c)).collect())
}

/// `unicodedata.normalize("NFC", text)`.
/// Blocks of letters whose every character is NFC-stable on its own and starts no
/// composition: NFC quick check "Yes" and combining class 0 (a test checks each
/// against `unicode-normalization`), so text made only of these and ASCII is already
/// NFC. Checking them by range is cheaper than the quick check's table lookups, which
/// were ~4 % of `clip tokenize` on real multilingual text.
const NFC_INERT: [std::ops::Range<u32>; 8] = [
    0x80..0x300,    // Latin-1, Latin Extended-A/B, IPA, spacing modifiers
    0x388..0x483,   // Greek and Cyrillic letters
    0x5D0..0x5EB,   // Hebrew letters
    0x620..0x64B,   // Arabic letters
    0x3041..0x3097, // Hiragana
    0x30A1..0x30FB, // Katakana
    0x4E00..0xA000, // CJK unified ideographs
    0xAC00..0xD7A4, // Hangul syllables
];

fn nfc_inert(c: char) -> bool {
    let u = c as u32;
    u < 0x80 || NFC_INERT.iter().any(|r| r.contains(&u))
}

fn normalize_nfc(text: &str) -> Cow<'_, str> {
    if text.chars().all(nfc_inert) || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(text);
    }
    let s: String = text.nfc().collect();
    if s == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(s)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        badness_dfa, badness_regex, fix_text, is_bad, is_nfc_quick, regexes, t, IsNormalized,
        NFC_INERT, SCAN_QUIET,
    };

    #[test]
    fn regexes_compile() {
        let _ = regexes();
        let _ = badness_regex();
    }

    #[test]
    fn nfc_inert_blocks_are_stable_and_uncombining() {
        use unicode_normalization::char::canonical_combining_class;
        for c in NFC_INERT
            .iter()
            .flat_map(|r| r.clone())
            .filter_map(char::from_u32)
        {
            assert_eq!(is_nfc_quick(std::iter::once(c)), IsNormalized::Yes, "{c:?}");
            assert_eq!(canonical_combining_class(c), 0, "{c:?}");
        }
    }

    #[test]
    fn scan_quiet_ranges_hold_no_table_entry() {
        let keys = t::LIGATURES.iter().map(|&(k, _)| k);
        let keys = keys.chain(t::WIDTH_MAP.iter().map(|&(k, _)| k));
        let keys = keys.chain(t::CONTROL_CHARS.iter().copied());
        for k in keys.chain([0x2028, 0x2029]) {
            assert!(!SCAN_QUIET.iter().any(|r| r.contains(&k)), "{k:#x}");
        }
    }

    #[test]
    fn embedded_badness_dfa_loads() {
        // Little-endian hosts (every CI machine) must use the build-time DFA.
        #[cfg(target_endian = "little")]
        assert!(badness_dfa().is_some());
    }

    /// The build-time DFA gives the same verdict as the regex on short strings made of
    /// the pattern's own characters (every code point it names, the neighbours of each
    /// range end, ASCII letters, punctuation and whitespace), where every alternative of
    /// the pattern can start, end and overlap.
    #[test]
    fn badness_dfa_equals_the_regex() {
        let pattern = t::BADNESS_RE;
        let mut pool: Vec<char> = "aZz .,?!\n\t°€ÃÂ".chars().collect();
        let mut rest = pattern;
        while let Some(i) = rest.find("\\x{") {
            rest = &rest[i + 3..];
            let Some(end) = rest.find('}') else { break };
            if let Ok(u) = u32::from_str_radix(&rest[..end], 16) {
                // Range ends and their neighbours; skip the huge `\w` ranges' interiors.
                for v in [u.saturating_sub(1), u, u + 1] {
                    pool.extend(char::from_u32(v));
                }
            }
        }
        pool.sort_unstable();
        pool.dedup();
        assert!(pool.len() > 500, "{} characters", pool.len());
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || crate::tokenizer::xorshift64(&mut state);
        let (mut bad, mut n) = (0, 0);
        for _ in 0..200_000 {
            let len = 1 + (next() % 5) as usize;
            let text: String = (0..len)
                .map(|_| pool[(next() % pool.len() as u64) as usize])
                .collect();
            let want = badness_regex().is_match(&text);
            assert_eq!(is_bad(&text), want, "{text:?}");
            bad += usize::from(want);
            n += 1;
        }
        // Both verdicts were exercised.
        assert!(bad > 1000 && bad < n - 1000, "{bad} of {n} bad");
    }

    #[test]
    fn ftfy_doc_examples() {
        // From ftfy 6.3.1's docstrings, checked against ftfy 6.3.1 itself.
        assert_eq!(fix_text("âœ” No problems"), "✔ No problems");
        assert_eq!(fix_text("&macr;\\_(ã\u{83}\u{84})_/&macr;"), "¯\\_(ツ)_/¯");
        assert_eq!(
            fix_text("Broken text&hellip; it&#x2019;s ﬂubberiﬁc!"),
            "Broken text… it's flubberific!"
        );
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(fix_text("sÃ³"), "só");
        assert_eq!(fix_text("voilÃ le travail"), "voilà le travail");
    }
}
