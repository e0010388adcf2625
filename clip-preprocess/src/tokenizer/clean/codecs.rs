//! The single-byte codecs ftfy tries (`chardata.CHARMAP_ENCODINGS`) and its
//! `utf-8-variants` decoder (`ftfy/bad_codecs/utf8_variants.py`).
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use crate::tokenizer::data::ftfy_tables::CHARMAPS;

/// One single-byte codec: its decoding table and the inverse.
pub(super) struct Charmap {
    pub(super) name: &'static str,
    pub(super) decode: &'static [u32; 256],
    encode: FxHashMap<char, u8>,
}

impl Charmap {
    /// `possible_encoding(text, name)` and `text.encode(name)` together: `None` when a
    /// character of `text` has no byte in this codec.
    ///
    /// ftfy's `possible_encoding` accepts exactly the characters the codec's decoding
    /// table produces (ASCII minus `\x1a` plus the decoded bytes 0x80–0xFF and 0x1A),
    /// which is the set the inverse table covers.
    pub(super) fn encode(&self, text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            out.push(*self.encode.get(&c)?);
        }
        Some(out)
    }

    /// `byte` decoded.
    pub(super) fn decode_byte(&self, byte: u8) -> char {
        char::from_u32(self.decode[usize::from(byte)]).unwrap_or('\u{FFFD}')
    }
}

/// The codecs, in ftfy's order of trial.
pub(super) fn charmaps() -> &'static [Charmap] {
    static MAPS: OnceLock<Vec<Charmap>> = OnceLock::new();
    MAPS.get_or_init(|| {
        CHARMAPS
            .iter()
            .map(|(name, table)| {
                let mut encode = FxHashMap::default();
                for (b, &c) in table.iter().enumerate() {
                    // A sloppy codec decodes 0x1A to U+FFFD; U+001A then has no byte,
                    // exactly as in `codecs.charmap_build`.
                    if let (Some(c), Ok(b)) = (char::from_u32(c), u8::try_from(b)) {
                        encode.insert(c, b);
                    }
                }
                Charmap {
                    name,
                    decode: table,
                    encode,
                }
            })
            .collect()
    })
}

/// The codec named `name`.
pub(super) fn charmap(name: &str) -> Option<&'static Charmap> {
    charmaps().iter().find(|m| m.name == name)
}

/// `bytes.decode("utf-8")` (strict) when `variants` is false, else
/// `bytes.decode("utf-8-variants")`: strict UTF-8 plus `C0 80` → U+0000 and CESU-8
/// surrogate pairs (`ED A0-AF xx ED B0-BF xx`) → one supplementary character; any other
/// surrogate encoding or invalid byte is an error (`None`), as in ftfy.
pub(super) fn decode_utf8(bytes: &[u8], variants: bool) -> Option<String> {
    if !variants {
        return std::str::from_utf8(bytes).ok().map(str::to_owned);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut start = 0;
    let mut i = 0;
    let n = bytes.len();
    while i < n {
        match bytes[i] {
            0xC0 => {
                out.push_str(std::str::from_utf8(&bytes[start..i]).ok()?);
                if bytes.get(i + 1) != Some(&0x80) {
                    return None;
                }
                out.push('\0');
                i += 2;
                start = i;
            }
            0xED if bytes.get(i + 1).is_some_and(|b| (0xA0..=0xBF).contains(b)) => {
                out.push_str(std::str::from_utf8(&bytes[start..i]).ok()?);
                let s = bytes.get(i..i + 6)?;
                let ok = (0xA0..=0xAF).contains(&s[1])
                    && (0x80..=0xBF).contains(&s[2])
                    && s[3] == 0xED
                    && (0xB0..=0xBF).contains(&s[4])
                    && (0x80..=0xBF).contains(&s[5]);
                if !ok {
                    return None;
                }
                let cp = ((u32::from(s[1]) & 0x0F) << 16)
                    + ((u32::from(s[2]) & 0x3F) << 10)
                    + ((u32::from(s[4]) & 0x0F) << 6)
                    + (u32::from(s[5]) & 0x3F)
                    + 0x10000;
                out.push(char::from_u32(cp)?);
                i += 6;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(std::str::from_utf8(&bytes[start..]).ok()?);
    Some(out)
}
