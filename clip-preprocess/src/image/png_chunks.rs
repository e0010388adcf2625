//! Pillow's verdicts on a PNG's compressed ancillary chunks (`iCCP`, `zTXt`, `iTXt`) and
//! its text-memory limit, without the `png` crate's unbounded inflation.
//!
//! The `png` crate inflates an `iCCP` profile up to its byte limit, which has to stay
//! unlimited for large photos (see `decode_png`): a few-KB file whose profile inflates
//! to gigabytes would be held in memory. It is told to skip `iCCP` and text chunks
//! instead, and this module reproduces what Pillow 13's `PngImagePlugin` decides about
//! them, inflating at most `MAX_TEXT_CHUNK` per chunk into a small scratch buffer (nothing
//! is kept: CLIP never uses profiles or text):
//! * `iCCP`: a compression method other than 0 fails the file (`SyntaxError`); a
//!   profile that inflates to more than `MAX_TEXT_CHUNK` (1 MiB) fails it (`ValueError`);
//!   a corrupt zlib stream is ignored (Pillow: `icc_profile = None`).
//! * `zTXt`: a method other than 0 fails the file; more than 1 MiB inflated fails it;
//!   a corrupt zlib stream is ignored (Pillow: the text becomes empty).
//! * `iTXt`: only a compressed text (flag ≠ 0) with method 0 is inflated, and more than
//!   1 MiB fails the file; a corrupt stream, another method, a missing separator or text
//!   that is not UTF-8 is ignored (Pillow returns early).
//! * `tEXt` and `zTXt` values with a non-empty keyword, and every `iTXt` text that
//!   decodes (in characters, not bytes: Pillow counts `len(str)`), count towards
//!   `MAX_TEXT_MEMORY` (64 MiB per file); more fails the file (`ValueError`).
//!
//! Pillow runs these handlers on the chunks before `IDAT` when opening and on those after
//! it in `load_end`, so the walk covers both. Before the image data, a chunk type that is
//! not four word characters fails the file (Pillow's "broken PNG file"; the png crate
//! would skip it as an ancillary chunk); other structure, CRCs and truncation are the
//! `png` crate's verdicts (the walk just stops at a chunk it cannot frame). After it, the walk stops where `load_end` does — `IEND`, a short chunk header,
//! a chunk type that is not four word characters, the next `fcTL` of an animated PNG —
//! and a chunk whose data runs past the end of the file fails it (Pillow: "Truncated File
//! Read"; the png crate never reads that far).

use super::error::ImageError;

/// Pillow's `PngImagePlugin.MAX_TEXT_CHUNK` (`ImageFile.SAFEBLOCK`).
const MAX_TEXT_CHUNK: usize = 1024 * 1024;
/// Pillow's `PngImagePlugin.MAX_TEXT_MEMORY`.
const MAX_TEXT_MEMORY: usize = 64 * MAX_TEXT_CHUNK;

/// What inflating a chunk's zlib stream gave, as Python's
/// `zlib.decompressobj().decompress(data, MAX_TEXT_CHUNK)` sees it.
#[derive(Debug, PartialEq, Eq)]
enum Inflated {
    /// This many bytes (at most `MAX_TEXT_CHUNK`): the stream ended, its input ran out
    /// (Python does not complain about an unfinished stream), or the output reached the
    /// bound with no input left over.
    Len(usize),
    /// The output reached `MAX_TEXT_CHUNK` with input left over (Python: a non-empty
    /// `unconsumed_tail`, which Pillow refuses).
    TooLarge,
    /// Not a valid zlib stream (bad header, bad block, bad Adler-32) before the bound.
    Corrupt,
}

/// Inflates `data` as Python's `decompress(data, MAX_TEXT_CHUNK)` does: zlib (here
/// zlib-rs, a port of it that reads its input the same way) with `Z_SYNC_FLUSH`, output
/// capped at the bound, into a small scratch buffer. `sink` sees each piece of the output
/// (at most `MAX_TEXT_CHUNK` bytes in all), in order; nothing else is kept.
///
/// Pillow refuses the chunk when input is left where zlib stopped at the bound. zlib stops
/// reading where it stops writing (after decoding the symbol it has no room for), so
/// `total_in` there is Python's position; a stream that ends exactly at the bound is read
/// to its end in the same call, as in zlib.
fn inflate_bounded(data: &[u8], mut sink: impl FnMut(&[u8])) -> Inflated {
    let mut inflater = zlib_rs::Inflate::new(true, 15);
    let mut scratch = vec![0u8; 32 * 1024];
    // `total_in` counts bytes taken from `data`, so it never exceeds `data.len()`.
    let consumed = |inflater: &zlib_rs::Inflate| {
        usize::try_from(inflater.total_in()).map_or(data.len(), |n| n.min(data.len()))
    };
    let produced =
        |inflater: &zlib_rs::Inflate| usize::try_from(inflater.total_out()).unwrap_or(usize::MAX);
    loop {
        let room = MAX_TEXT_CHUNK
            .saturating_sub(produced(&inflater))
            .min(scratch.len());
        if room == 0 {
            // At the bound: Python stops calling inflate here.
            return if consumed(&inflater) < data.len() {
                Inflated::TooLarge
            } else {
                Inflated::Len(MAX_TEXT_CHUNK)
            };
        }
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater.decompress(
            &data[consumed(&inflater)..],
            &mut scratch[..room],
            zlib_rs::InflateFlush::SyncFlush,
        );
        // What this call wrote, at most `room` bytes (total_out only grows).
        let written = usize::try_from(inflater.total_out() - before.1).unwrap_or(room);
        match status {
            Ok(zlib_rs::Status::StreamEnd) => {
                sink(&scratch[..written.min(room)]);
                return Inflated::Len(produced(&inflater));
            }
            Ok(_) => sink(&scratch[..written.min(room)]),
            Err(_) => return Inflated::Corrupt,
        }
        if (inflater.total_in(), inflater.total_out()) == before {
            return Inflated::Len(produced(&inflater)); // input ran out: no complaint
        }
    }
}

fn chunk_error(chunk: &str, reason: String) -> ImageError {
    ImageError::Decode {
        format: "PNG",
        source: format!("{chunk} chunk: {reason}").into(),
    }
}

/// Pillow's `s[i + 1]` after `s.find(b"\0")` (-1 when absent): the compression-method
/// byte, and the compressed data after it. `None` where Pillow's indexing fails.
fn method_and_data(s: &[u8]) -> Option<(u8, &[u8])> {
    match s.iter().position(|&b| b == 0) {
        Some(i) => Some((*s.get(i + 1)?, s.get(i + 2..).unwrap_or(&[]))),
        // i = -1: s[0] is read as the method, s[1:] as the data.
        None => Some((*s.first()?, s.get(1..).unwrap_or(&[]))),
    }
}

/// Pillow's `check_text_memory`: `len` more of text, refused past `MAX_TEXT_MEMORY`.
fn count_text(text_memory: &mut usize, len: usize) -> Result<(), ImageError> {
    *text_memory = text_memory.saturating_add(len);
    if *text_memory > MAX_TEXT_MEMORY {
        return Err(chunk_error(
            "text",
            format!("more than {MAX_TEXT_MEMORY} bytes of text in the file"),
        ));
    }
    Ok(())
}

/// `head`, then `extra`, then an empty `IEND` chunk.
fn with_iend(head: &[u8], extra: &[u8]) -> Vec<u8> {
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    [head, extra, &IEND[..]].concat()
}

/// `s.split(b"\0", 1)` when `s` holds a NUL.
fn split_at_nul(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == 0)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Pillow's `chunk_iTXt` on an `iTXt` chunk's data: the length in characters of the text
/// it keeps (and counts towards `MAX_TEXT_MEMORY`), `None` where it returns early, an
/// error where it fails the file (a compressed text over `MAX_TEXT_CHUNK`).
fn itxt_chars(body: &[u8]) -> Result<Option<usize>, ImageError> {
    // `k, r = r.split(b"\0", 1)`; `cf, cm = r[0], r[1]`; `lang, tk, v = r.split(b"\0", 2)`.
    let Some((_keyword, r)) = split_at_nul(body) else {
        return Ok(None);
    };
    let [flag, method, r @ ..] = r else {
        return Ok(None);
    };
    let Some((lang, r)) = split_at_nul(r) else {
        return Ok(None);
    };
    let Some((translated, value)) = split_at_nul(r) else {
        return Ok(None);
    };
    let inflated;
    let text = if *flag == 0 {
        value
    } else if *method == 0 {
        let mut out = Vec::new();
        match inflate_bounded(value, |piece| out.extend_from_slice(piece)) {
            Inflated::Len(_) => {}
            Inflated::TooLarge => {
                return Err(chunk_error(
                    "iTXt",
                    format!("the text inflates to more than {MAX_TEXT_CHUNK} bytes"),
                ))
            }
            Inflated::Corrupt => return Ok(None),
        }
        inflated = out;
        &inflated
    } else {
        return Ok(None);
    };
    // The keyword decodes as Latin-1 (always); the rest must be UTF-8.
    if std::str::from_utf8(lang).is_err() || std::str::from_utf8(translated).is_err() {
        return Ok(None);
    }
    Ok(std::str::from_utf8(text).ok().map(|t| t.chars().count()))
}

/// Checks the chunks of a PNG (`bytes` starts with the signature) as Pillow does: the
/// CRC of every chunk before the image data, and every `iCCP`, `zTXt`, `tEXt` and `iTXt`
/// chunk; see the module docs.
///
/// `Some(bytes)` when Pillow reads the file although its chunks after the image data end
/// without an `IEND`: the file ends (at a chunk boundary, inside a chunk header or CRC, or
/// inside the last `IDAT`'s data, which Pillow reads as far as it goes), or a chunk type
/// there is not four word characters. The png crate wants an `IEND`: the returned copy is
/// the file up to there, the cut `IDAT` given its real length, and an `IEND` (CRCs from
/// there on are placeholders: they are not checked, as in Pillow). Whether the image data
/// that is there suffices stays the decoder's verdict, as in Pillow.
pub(crate) fn check(bytes: &[u8]) -> Result<Option<Vec<u8>>, ImageError> {
    let mut at = 8usize;
    let mut text_memory = 0usize;
    // From the first IDAT on, Pillow walks the chunks in `load_end`, with its own stops.
    let mut after_idat = false;
    // An APNG with more than one frame (`acTL`): `load_end` stops at its next `fcTL`.
    let mut animated = false;
    // Where the previous chunk's data ended (its CRC may be cut short).
    let mut data_end = at;
    loop {
        let Some(header) = bytes.get(at..at.saturating_add(8)) else {
            // Pillow: struct.error on the short read, the walk ends.
            if !after_idat {
                return Ok(None);
            }
            return Ok(Some(if at <= bytes.len() {
                with_iend(&bytes[..at], &[])
            } else {
                with_iend(&bytes[..data_end], &[0; 4])
            }));
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = &header[4..8];
        // Pillow's `is_cid` (`\w\w\w\w`): anything else fails the file before the image
        // data ("broken PNG file"; the png crate would skip such a chunk as ancillary) and
        // ends the walk after it.
        if !kind.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') {
            if after_idat {
                return Ok(Some(with_iend(&bytes[..at], &[])));
            }
            return Err(chunk_error(
                &String::from_utf8_lossy(kind),
                "not a chunk type (four letters, digits or '_'): broken PNG file".into(),
            ));
        }
        after_idat |= kind == b"IDAT";
        if kind == b"IEND" || (after_idat && animated && kind == b"fcTL") {
            return Ok(None);
        }
        let Some(body) = at
            .checked_add(8)
            .and_then(|start| bytes.get(start..start.checked_add(len)?))
        else {
            // Before the image data a cut chunk is the png crate's verdict. An IDAT is
            // read as far as it goes (`load_read`); any other chunk after the image data
            // fails in Pillow's `_safe_read` ("Truncated File Read").
            if kind == b"IDAT" {
                let data = bytes.get(at + 8..).unwrap_or(&[]);
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes();
                let chunk = [&len[..], b"IDAT", data, &[0; 4]].concat();
                return Ok(Some(with_iend(&bytes[..at], &chunk)));
            }
            if after_idat {
                return Err(chunk_error(
                    &String::from_utf8_lossy(kind),
                    format!("{len} bytes announced, the file ends first"),
                ));
            }
            return Ok(None);
        };
        // Pillow's `PngStream.crc` after each chunk before the image data (the png crate
        // skips an ancillary chunk whose CRC fails, and is told not to check the others:
        // Pillow never checks those of the image data and after it).
        if !after_idat {
            let Some(stored) = bytes.get(at + 8 + len..at + 12 + len) else {
                return Err(chunk_error(
                    &String::from_utf8_lossy(kind),
                    "the file ends inside the checksum: broken PNG file".into(),
                ));
            };
            let crc = zlib_rs::crc32::crc32(zlib_rs::crc32::crc32(0, kind), body);
            if crc.to_be_bytes() != stored {
                return Err(chunk_error(
                    &String::from_utf8_lossy(kind),
                    "bad checksum: broken PNG file".into(),
                ));
            }
        }
        match kind {
            b"acTL" if !after_idat => {
                animated = body
                    .get(..4)
                    .is_some_and(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) > 1);
            }
            b"iCCP" => {
                let (method, data) = method_and_data(body)
                    .ok_or_else(|| chunk_error("iCCP", "no compression method byte".into()))?;
                if method != 0 {
                    return Err(chunk_error(
                        "iCCP",
                        format!("unknown compression method {method}"),
                    ));
                }
                if inflate_bounded(data, |_| {}) == Inflated::TooLarge {
                    return Err(chunk_error(
                        "iCCP",
                        format!("the profile inflates to more than {MAX_TEXT_CHUNK} bytes"),
                    ));
                }
            }
            b"zTXt" | b"tEXt" => {
                // Pillow: `k, v = s.split(b"\0", 1)`, else `k = s, v = b""`.
                let (key, value) = split_at_nul(body).unwrap_or((body, &[]));
                let value_len = if kind == b"tEXt" {
                    value.len()
                } else {
                    let method = value.first().copied().unwrap_or(0);
                    if method != 0 {
                        return Err(chunk_error(
                            "zTXt",
                            format!("unknown compression method {method}"),
                        ));
                    }
                    match inflate_bounded(value.get(1..).unwrap_or(&[]), |_| {}) {
                        Inflated::Len(n) => n,
                        Inflated::TooLarge => {
                            return Err(chunk_error(
                                "zTXt",
                                format!("the text inflates to more than {MAX_TEXT_CHUNK} bytes"),
                            ))
                        }
                        // Pillow: `except zlib.error: v = b""`.
                        Inflated::Corrupt => 0,
                    }
                };
                if !key.is_empty() {
                    count_text(&mut text_memory, value_len)?;
                }
            }
            b"iTXt" => {
                if let Some(chars) = itxt_chars(body)? {
                    count_text(&mut text_memory, chars)?;
                }
            }
            _ => {}
        }
        // Length, type, data, CRC.
        data_end = at + 8 + len;
        at = match at.checked_add(12 + len) {
            Some(next) => next,
            None => return Ok(None),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A PNG chunk list (signature, the given chunks, IEND), with their CRCs.
    fn png(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, body) in chunks.iter().chain([(b"IEND", Vec::new())].iter()) {
            out.extend((body.len() as u32).to_be_bytes());
            out.extend(*kind);
            out.extend(body);
            let mut crc = flate2::Crc::new();
            crc.update(*kind);
            crc.update(body);
            out.extend(crc.sum().to_be_bytes());
        }
        out
    }

    fn iccp(method: u8, data: &[u8]) -> Vec<u8> {
        [b"ICC profile\0".as_slice(), &[method], data].concat()
    }

    fn inflate_bounded_len(data: &[u8]) -> Inflated {
        let mut seen = Vec::new();
        let verdict = inflate_bounded(data, |piece| seen.extend_from_slice(piece));
        if let Inflated::Len(n) = verdict {
            assert_eq!(seen.len(), n, "the sink sees exactly Python's output");
        }
        assert!(seen.len() <= MAX_TEXT_CHUNK);
        verdict
    }

    #[test]
    fn inflation_is_bounded_and_corrupt_streams_are_told_apart() {
        assert_eq!(inflate_bounded_len(&zlib(b"hello")), Inflated::Len(5));
        assert_eq!(
            inflate_bounded_len(&zlib(&vec![0; MAX_TEXT_CHUNK])),
            Inflated::Len(MAX_TEXT_CHUNK)
        );
        assert_eq!(
            inflate_bounded_len(&zlib(&vec![0; MAX_TEXT_CHUNK + 1])),
            Inflated::TooLarge
        );
        // 100 MiB of zeros (~100 KB compressed) stops at the bound.
        assert_eq!(
            inflate_bounded_len(&zlib(&vec![0; 100 << 20])),
            Inflated::TooLarge
        );
        assert_eq!(inflate_bounded_len(b"not zlib at all"), Inflated::Corrupt);
        let mut bad_sum = zlib(b"hello");
        let n = bad_sum.len();
        bad_sum[n - 1] ^= 1;
        assert_eq!(inflate_bounded_len(&bad_sum), Inflated::Corrupt);
        // An unfinished stream is not an error (Python's decompressobj).
        let whole = zlib(&vec![7; 5000]);
        assert!(matches!(
            inflate_bounded_len(&whole[..whole.len() / 2]),
            Inflated::Len(_)
        ));
    }

    #[test]
    fn pillow_verdicts_on_iccp_and_text_chunks() {
        let ok = |chunks: &[(&[u8; 4], Vec<u8>)]| check(&png(chunks)).is_ok();
        assert!(ok(&[(b"iCCP", iccp(0, &zlib(b"profile")))]));
        // A corrupt profile is ignored, an unknown method or a huge profile is not.
        assert!(ok(&[(b"iCCP", iccp(0, b"garbage"))]));
        assert!(!ok(&[(b"iCCP", iccp(1, &zlib(b"profile")))]));
        assert!(!ok(&[(b"iCCP", iccp(0, &zlib(&vec![0; 2 << 20])))]));
        assert!(!ok(&[(b"iCCP", Vec::new())]));
        // zTXt: a corrupt stream is ignored too, an unknown method or a huge text is not.
        let ztxt = |data: &[u8]| [b"Comment\0\0".as_slice(), data].concat();
        assert!(ok(&[(b"zTXt", ztxt(&zlib(b"text")))]));
        assert!(ok(&[(b"zTXt", ztxt(b"garbage"))]));
        assert!(!ok(&[(
            b"zTXt",
            [b"Comment\0\x01".as_slice(), &zlib(b"t")].concat()
        )]));
        assert!(!ok(&[(b"zTXt", ztxt(&zlib(&vec![b'a'; 2 << 20])))]));
        // No separator: k = s, v = b"" (method 0, nothing to inflate).
        assert!(ok(&[(b"zTXt", b"keyword only".to_vec())]));
        // 64 MiB of text in total, counted over tEXt and zTXt with a keyword.
        let mib = ztxt(&zlib(&vec![b'a'; MAX_TEXT_CHUNK]));
        let at_limit: Vec<_> = (0..64).map(|_| (b"zTXt", mib.clone())).collect();
        assert!(ok(&at_limit));
        let mut over = at_limit.clone();
        over.push((b"tEXt", b"k\0v".to_vec()));
        assert!(!ok(&over));
        let mut keyless = at_limit;
        keyless.push((b"tEXt", b"\0v".to_vec()));
        assert!(ok(&keyless));
    }

    #[test]
    fn pillow_verdicts_on_itxt_chunks() {
        let ok = |chunks: &[(&[u8; 4], Vec<u8>)]| check(&png(chunks)).is_ok();
        // keyword \0 flag method lang \0 translated keyword \0 text
        let itxt = |flag: u8, method: u8, text: &[u8]| {
            [
                b"Comment\0".as_slice(),
                &[flag, method],
                b"en\0Kommentar\0",
                text,
            ]
            .concat()
        };
        let big = zlib(&vec![b'a'; 2 << 20]);
        assert!(ok(&[(b"iTXt", itxt(0, 0, b"plain"))]));
        assert!(ok(&[(b"iTXt", itxt(1, 0, &zlib(b"packed")))]));
        assert!(!ok(&[(b"iTXt", itxt(1, 0, &big))]));
        // Ignored: a corrupt stream, another method, uncompressed (never inflated), a
        // missing separator.
        assert!(ok(&[(b"iTXt", itxt(1, 0, b"garbage"))]));
        assert!(ok(&[(b"iTXt", itxt(1, 1, &big))]));
        assert!(ok(&[(b"iTXt", itxt(0, 0, &big))]));
        assert!(ok(&[(
            b"iTXt",
            [b"Comment\0\x01\0en\0".as_slice(), &big].concat()
        )]));
        assert!(ok(&[(b"iTXt", b"Comment\0\x01".to_vec())]));
        assert_eq!(
            itxt_chars(&itxt(1, 0, &zlib("é".as_bytes()))).ok(),
            Some(Some(1))
        );
        assert_eq!(itxt_chars(&itxt(0, 0, b"\xff")).ok(), Some(None));
        // Text memory counts characters: 65 MiB of two-byte characters is 32.5 Mi of them.
        let mib_ascii = itxt(1, 0, &zlib(&vec![b'a'; MAX_TEXT_CHUNK]));
        let mib_latin = itxt(1, 0, &zlib(&"é".repeat(MAX_TEXT_CHUNK / 2).into_bytes()));
        let mib_invalid = itxt(1, 0, &zlib(&vec![0xff; MAX_TEXT_CHUNK]));
        assert!(!ok(&vec![(b"iTXt", mib_ascii.clone()); 65]));
        assert!(ok(&vec![(b"iTXt", mib_ascii); 64]));
        assert!(ok(&vec![(b"iTXt", mib_latin); 65]));
        assert!(ok(&vec![(b"iTXt", mib_invalid); 65]));
        // With an empty keyword it still counts (unlike tEXt / zTXt).
        let keyless = [
            b"\0\x01\0\0\0".as_slice(),
            &zlib(&vec![b'a'; MAX_TEXT_CHUNK]),
        ]
        .concat();
        assert!(!ok(&vec![(b"iTXt", keyless); 65]));
    }

    #[test]
    fn checksums_before_the_image_data_are_pillows() {
        let good = png(&[(b"tEXt", b"k\0v".to_vec())]);
        assert_eq!(check(&good).ok(), Some(None));
        // A bad CRC on an ancillary chunk before IDAT fails (the png crate skips it).
        let mut bad = good.clone();
        let crc_at = 8 + 8 + 3;
        bad[crc_at] ^= 1;
        assert!(check(&bad).is_err());
        // After IDAT, CRCs are not looked at; a missing IEND is reported with its offset.
        let mut after = png(&[(b"IDAT", vec![1, 2, 3]), (b"tEXt", b"k\0v".to_vec())]);
        let idat_crc = 8 + 8 + 3;
        after[idat_crc] ^= 1;
        assert_eq!(check(&after).ok(), Some(None));
        let cut = after.len() - 12;
        let patched = |b: &[u8]| check(b).ok().flatten();
        assert_eq!(patched(&after[..cut]), Some(after.clone()));
        assert_eq!(patched(&after[..cut + 5]), Some(after.clone()));
        // Cut inside the tEXt's CRC after the image data: a placeholder CRC, then IEND.
        let mut expected = after[..cut - 4].to_vec();
        expected.extend([0; 4]);
        expected.extend(&after[cut..]);
        assert_eq!(patched(&after[..cut - 2]), Some(expected));
        // Cut inside the IDAT's data: the IDAT as far as it goes.
        let idat = png(&[(b"IDAT", vec![1, 2, 3, 4])]);
        let mut expected = idat[..8].to_vec();
        expected.extend([0, 0, 0, 2]);
        expected.extend(b"IDAT\x01\x02");
        expected.extend([0; 4]);
        expected.extend(&idat[idat.len() - 12..]);
        assert_eq!(patched(&idat[..8 + 8 + 2]), Some(expected));
        // A cut tEXt after the image data fails (Pillow's _safe_read).
        assert!(check(&after[..cut - 6]).is_err());
        // The file ending inside a checksum before the image data fails.
        assert!(check(&good[..good.len() - 14]).is_err());
    }

    #[test]
    fn the_walk_stops_where_pillow_stops() {
        // At IEND and at a chunk running past the data.
        let mut after_iend = png(&[]);
        after_iend.extend(png(&[(b"iCCP", iccp(1, b""))]).split_off(8));
        assert!(check(&after_iend).is_ok());
        let mut cut = png(&[(b"iCCP", iccp(1, b""))]);
        cut.truncate(20);
        assert!(check(&cut).is_ok());
    }
}
