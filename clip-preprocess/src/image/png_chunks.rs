//! Pillow's verdicts on a PNG's compressed ancillary chunks (`iCCP`, `zTXt`) and its
//! text-memory limit, without the `png` crate's unbounded inflation.
//!
//! The `png` crate inflates an `iCCP` profile up to its byte limit, which has to stay
//! unlimited for large photos (see `decode_png`): a few-KB file whose profile inflates
//! to gigabytes would be held in memory. It is told to skip `iCCP` and text chunks
//! instead, and this module reproduces what Pillow 13's `PngImagePlugin` decides about
//! them, inflating at most `MAX_TEXT_CHUNK` + 32 KiB per chunk into a small scratch
//! buffer (nothing is kept: CLIP never uses profiles or text):
//! * `iCCP`: a compression method other than 0 fails the file (`SyntaxError`); a
//!   profile that inflates to more than `MAX_TEXT_CHUNK` (1 MiB) fails it (`ValueError`);
//!   a corrupt zlib stream is ignored (Pillow: `icc_profile = None`).
//! * `zTXt`: a method other than 0 fails the file; more than 1 MiB inflated fails it;
//!   a corrupt zlib stream is ignored (Pillow: the text becomes empty).
//! * `tEXt` and `zTXt` values with a non-empty keyword count towards `MAX_TEXT_MEMORY`
//!   (64 MiB per file); more fails the file (`ValueError`).
//!
//! Pillow runs these handlers on every chunk up to `IEND` (before `IDAT` when opening,
//! after it in `load_end`), so the walk covers the whole chunk list. It stops quietly at
//! a chunk it cannot frame (length past the end of the data): structure, CRCs and
//! truncation are the `png` crate's verdicts, as before. Not mirrored: `iTXt` chunks
//! (compressed or not) are neither inflated nor counted.

use super::error::ImageError;

/// Pillow's `PngImagePlugin.MAX_TEXT_CHUNK` (`ImageFile.SAFEBLOCK`).
const MAX_TEXT_CHUNK: usize = 1024 * 1024;
/// Pillow's `PngImagePlugin.MAX_TEXT_MEMORY`.
const MAX_TEXT_MEMORY: usize = 64 * MAX_TEXT_CHUNK;

/// What inflating a chunk's zlib stream (at most `MAX_TEXT_CHUNK` bytes kept in mind)
/// gave.
#[derive(Debug, PartialEq, Eq)]
enum Inflated {
    /// The stream ended, or its input ran out (Python's `decompressobj` does not
    /// complain about an unfinished stream), after this many bytes.
    Len(usize),
    /// More than `MAX_TEXT_CHUNK` bytes.
    TooLarge,
    /// Not a valid zlib stream (bad header, bad block, bad Adler-32).
    Corrupt,
}

fn inflate_bounded(data: &[u8]) -> Inflated {
    let mut inflater = flate2::Decompress::new(true);
    let mut scratch = vec![0u8; 32 * 1024];
    loop {
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        // total_in never exceeds data.len(): it counts bytes taken from `data`.
        let consumed = usize::try_from(before_in)
            .unwrap_or(data.len())
            .min(data.len());
        let status = match inflater.decompress(
            &data[consumed..],
            &mut scratch,
            flate2::FlushDecompress::None,
        ) {
            Ok(status) => status,
            Err(_) => return Inflated::Corrupt,
        };
        let out = usize::try_from(inflater.total_out()).unwrap_or(usize::MAX);
        if out > MAX_TEXT_CHUNK {
            return Inflated::TooLarge;
        }
        let stalled = inflater.total_in() == before_in && inflater.total_out() == before_out;
        if status == flate2::Status::StreamEnd || stalled {
            return Inflated::Len(out);
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

/// Checks every `iCCP`, `zTXt` and `tEXt` chunk of a PNG (`bytes` starts with the
/// signature) as Pillow does; see the module docs.
pub(crate) fn check(bytes: &[u8]) -> Result<(), ImageError> {
    let mut at = 8usize;
    let mut text_memory = 0usize;
    loop {
        let Some(header) = bytes.get(at..at.saturating_add(8)) else {
            return Ok(());
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = &header[4..8];
        let Some(body) = at
            .checked_add(8)
            .and_then(|start| bytes.get(start..start.checked_add(len)?))
        else {
            return Ok(());
        };
        match kind {
            b"IEND" => return Ok(()),
            b"iCCP" => {
                let (method, data) = method_and_data(body)
                    .ok_or_else(|| chunk_error("iCCP", "no compression method byte".into()))?;
                if method != 0 {
                    return Err(chunk_error(
                        "iCCP",
                        format!("unknown compression method {method}"),
                    ));
                }
                if inflate_bounded(data) == Inflated::TooLarge {
                    return Err(chunk_error(
                        "iCCP",
                        format!("the profile inflates to more than {MAX_TEXT_CHUNK} bytes"),
                    ));
                }
            }
            b"zTXt" | b"tEXt" => {
                // Pillow: `k, v = s.split(b"\0", 1)`, else `k = s, v = b""`.
                let (key, value) = match body.iter().position(|&b| b == 0) {
                    Some(i) => (&body[..i], &body[i + 1..]),
                    None => (body, &[][..]),
                };
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
                    match inflate_bounded(value.get(1..).unwrap_or(&[])) {
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
                    text_memory = text_memory.saturating_add(value_len);
                    if text_memory > MAX_TEXT_MEMORY {
                        return Err(chunk_error(
                            "text",
                            format!("more than {MAX_TEXT_MEMORY} bytes of text in the file"),
                        ));
                    }
                }
            }
            _ => {}
        }
        // Length, type, data, CRC.
        at = match at.checked_add(12 + len) {
            Some(next) => next,
            None => return Ok(()),
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

    /// A PNG chunk list (signature, the given chunks, IEND); CRCs are not checked here.
    fn png(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, body) in chunks.iter().chain([(b"IEND", Vec::new())].iter()) {
            out.extend((body.len() as u32).to_be_bytes());
            out.extend(*kind);
            out.extend(body);
            out.extend([0; 4]);
        }
        out
    }

    fn iccp(method: u8, data: &[u8]) -> Vec<u8> {
        [b"ICC profile\0".as_slice(), &[method], data].concat()
    }

    #[test]
    fn inflation_is_bounded_and_corrupt_streams_are_told_apart() {
        assert_eq!(inflate_bounded(&zlib(b"hello")), Inflated::Len(5));
        assert_eq!(
            inflate_bounded(&zlib(&vec![0; MAX_TEXT_CHUNK])),
            Inflated::Len(MAX_TEXT_CHUNK)
        );
        assert_eq!(
            inflate_bounded(&zlib(&vec![0; MAX_TEXT_CHUNK + 1])),
            Inflated::TooLarge
        );
        // 100 MiB of zeros (~100 KB compressed) stops at the bound.
        assert_eq!(
            inflate_bounded(&zlib(&vec![0; 100 << 20])),
            Inflated::TooLarge
        );
        assert_eq!(inflate_bounded(b"not zlib at all"), Inflated::Corrupt);
        let mut bad_sum = zlib(b"hello");
        let n = bad_sum.len();
        bad_sum[n - 1] ^= 1;
        assert_eq!(inflate_bounded(&bad_sum), Inflated::Corrupt);
        // An unfinished stream is not an error (Python's decompressobj).
        let whole = zlib(&vec![7; 5000]);
        assert!(matches!(
            inflate_bounded(&whole[..whole.len() / 2]),
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
        // The walk stops at IEND and at a chunk running past the data.
        let mut after_iend = png(&[]);
        after_iend.extend(png(&[(b"iCCP", iccp(1, b""))]).split_off(8));
        assert!(check(&after_iend).is_ok());
        let mut cut = png(&[(b"iCCP", iccp(1, b""))]);
        cut.truncate(20);
        assert!(check(&cut).is_ok());
    }
}
