//! Pillow's verdict on a JPEG's header segments, before any decoder runs.
//!
//! Pillow's `JpegImageFile._open` walks the markers from the SOI to the first SOS in
//! Python and refuses some files that libjpeg would decode: a marker it does not know
//! (`FF01`, `FF02`–`FFBF`: "no marker found"), a segment cut short ("Truncated File
//! Read"), a frame whose sample precision is not 8 bits (libjpeg-turbo decodes lossless
//! JPEGs of 2–8 bits through its 8-bit API) or whose component count is not 1, 3 or 4, a
//! quantization segment that is not whole tables, and a few application segments too
//! short for the fields it reads (JFIF and Adobe versions, ICC profile chunk numbers, the
//! name lengths of Photoshop resources). This module walks the same way and fails where
//! it raises. What it reads only for metadata is not checked (nothing here keeps it).

use super::error::ImageError;

/// Pillow's `MARKER` table: the markers `_open` knows, and whether a segment (length +
/// data) follows them.
fn known(marker: u16) -> Option<bool> {
    match marker {
        // SOFn, DHT, DAC, SOS, DQT, DNL, DRI, DHP, EXP, APPn, COM: a segment follows.
        0xFFC0..=0xFFC7 | 0xFFC9..=0xFFCF | 0xFFDA..=0xFFDF | 0xFFE0..=0xFFEF | 0xFFFE => {
            Some(true)
        }
        // JPG, RSTn, SOI, EOI, JPGn: no handler, nothing follows.
        0xFFC8 | 0xFFD0..=0xFFD9 | 0xFFF0..=0xFFFD => Some(false),
        _ => None,
    }
}

fn fail(reason: String) -> ImageError {
    ImageError::Decode {
        format: "JPEG",
        source: reason.into(),
    }
}

fn be16(s: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *s.get(at)?,
        *s.get(at + 1)?,
    ])))
}

/// Walks the markers of `bytes` (which start with `FF D8 FF`) as `_open` does.
pub(crate) fn check(bytes: &[u8]) -> Result<(), ImageError> {
    // `_open` has read 3 bytes and restarts from the `FF` it saw; `current` is the first
    // byte of its `s` (None: the file has ended).
    let mut at = 3usize;
    let mut current = Some(0xFF);
    let mut icc_chunks: Vec<&[u8]> = Vec::new();
    let read = |n: usize, at: &mut usize| -> &[u8] {
        let start = (*at).min(bytes.len());
        let end = start.saturating_add(n).min(bytes.len());
        *at = end;
        &bytes[start..end]
    };
    let next = |at: &mut usize| read(1, at).first().copied();
    while let Some(first) = current {
        if first != 0xFF {
            current = next(&mut at); // non-0xFF junk is skipped
            continue;
        }
        let Some(second) = next(&mut at) else {
            break;
        };
        let marker = u16::from_be_bytes([first, second]);
        match known(marker) {
            Some(has_segment) => {
                if has_segment {
                    let len_bytes = read(2, &mut at);
                    let n = be16(len_bytes, 0)
                        .ok_or_else(|| fail(format!("marker {marker:04X}: no segment length")))?
                        .saturating_sub(2);
                    let seg = read(n, &mut at);
                    if seg.len() < n {
                        return Err(fail(format!(
                            "marker {marker:04X}: {n} bytes announced, the file ends first"
                        )));
                    }
                    segment(marker, seg, &mut icc_chunks)?;
                }
                if marker == 0xFFDA {
                    break; // start of scan: the decoder takes over
                }
                current = next(&mut at);
            }
            // A padded marker or junk, or an escaped 0xFF: move on.
            None if marker == 0xFFFF => current = Some(0xFF),
            None if marker == 0xFF00 => current = next(&mut at),
            None => return Err(fail(format!("no marker found (FF{second:02X})"))),
        }
    }
    Ok(())
}

/// The checks of `_open`'s segment handlers that can raise.
fn segment<'a>(marker: u16, s: &'a [u8], icc_chunks: &mut Vec<&'a [u8]>) -> Result<(), ImageError> {
    match marker {
        // SOFn and DHP (the SOF handler).
        0xFFC0..=0xFFC3 | 0xFFC5..=0xFFC7 | 0xFFC9..=0xFFCB | 0xFFCD..=0xFFCF | 0xFFDE => {
            if be16(s, 3).is_none() || s.len() < 6 {
                return Err(fail("frame header too short".into()));
            }
            if s[0] != 8 {
                return Err(fail(format!("cannot handle {}-bit layers", s[0])));
            }
            if !matches!(s[5], 1 | 3 | 4) {
                return Err(fail(format!("cannot handle {}-layer images", s[5])));
            }
            // `icclist.sort()`, then `icclist[0][13]`.
            if let Some(first) = icc_chunks.iter().min() {
                if first.len() < 14 {
                    return Err(fail("ICC profile chunk too short".into()));
                }
            }
        }
        0xFFDB => {
            let mut rest = s;
            while let Some(&v) = rest.first() {
                let table = 1 + if v / 16 == 0 { 64 } else { 128 };
                if rest.len() < table {
                    return Err(fail("bad quantization table marker".into()));
                }
                rest = &rest[table..];
            }
        }
        0xFFE0 if s.starts_with(b"JFIF") && s.len() < 7 => {
            return Err(fail("JFIF segment too short".into()));
        }
        0xFFEE if s.starts_with(b"Adobe") && s.len() < 7 => {
            return Err(fail("Adobe segment too short".into()));
        }
        0xFFE2 if s.starts_with(b"ICC_PROFILE\0") => icc_chunks.push(s),
        0xFFED if s.starts_with(b"Photoshop 3.0\0") => photoshop(s)?,
        _ => {}
    }
    Ok(())
}

/// The Photoshop resource walk: a name length past the end raises `IndexError`; a size
/// or code past it (`struct.error`) ends the walk quietly.
fn photoshop(s: &[u8]) -> Result<(), ImageError> {
    let mut offset = 14usize;
    while s.get(offset..offset + 4) == Some(b"8BIM") {
        offset += 4;
        if be16(s, offset).is_none() {
            return Ok(());
        }
        offset += 2;
        let name_len = *s
            .get(offset)
            .ok_or_else(|| fail("Photoshop resource cut short".into()))?;
        offset += 1 + usize::from(name_len);
        offset += offset & 1;
        let Some(size) = s
            .get(offset..offset + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return Ok(());
        };
        offset += 4;
        // ResolutionInfo (0x03ED) reads 14 bytes of its data; too few is struct.error,
        // which ends the walk quietly too.
        offset = offset.saturating_add(size);
        offset += offset & 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, marker];
        v.extend(((body.len() + 2) as u16).to_be_bytes());
        v.extend(body);
        v
    }

    fn jpeg(segments: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        for s in segments {
            v.extend(s);
        }
        v.extend(seg(0xDA, &[1, 1, 0, 0, 63, 0]));
        v
    }

    const SOF8: [u8; 15] = [8, 0, 16, 0, 16, 3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0];

    #[test]
    fn pillow_open_verdicts() {
        let ok = |segments: &[Vec<u8>]| check(&jpeg(segments)).is_ok();
        assert!(ok(&[seg(0xC0, &SOF8)]));
        // Precision other than 8, component counts other than 1, 3, 4.
        let mut sof12 = SOF8;
        sof12[0] = 12;
        assert!(!ok(&[seg(0xC3, &sof12)]));
        let mut two = SOF8;
        two[5] = 2;
        assert!(!ok(&[seg(0xC0, &two)]));
        // Unknown markers fail; junk and padding do not.
        let mut tem = jpeg(&[seg(0xC0, &SOF8)]);
        tem.splice(2..2, [0xFF, 0x01]);
        assert!(check(&tem).is_err());
        let junk = vec![0x00, 0x11, 0xFF, 0xFF, 0xFF, 0x00];
        assert!(ok(&[seg(0xC0, &SOF8), junk]));
        assert!(!ok(&[seg(0xC0, &SOF8), vec![0x00, 0x11, 0xFF, 0x01]]));
        // Quantization segments must hold whole tables.
        assert!(ok(&[seg(0xDB, &[0; 65]), seg(0xC0, &SOF8)]));
        assert!(!ok(&[seg(0xDB, &[0; 64]), seg(0xC0, &SOF8)]));
        assert!(!ok(&[seg(0xDB, &[0x10; 65]), seg(0xC0, &SOF8)]));
        // Short JFIF / Adobe / ICC / Photoshop segments.
        assert!(!ok(&[seg(0xE0, b"JFIF\0\x01"), seg(0xC0, &SOF8)]));
        assert!(ok(&[seg(0xE0, b"JFIF\0\x01\x01"), seg(0xC0, &SOF8)]));
        assert!(!ok(&[seg(0xEE, b"Adobe\0"), seg(0xC0, &SOF8)]));
        assert!(!ok(&[seg(0xE2, b"ICC_PROFILE\0\x01"), seg(0xC0, &SOF8)]));
        assert!(ok(&[seg(0xE2, b"ICC_PROFILE\0\x01\x01"), seg(0xC0, &SOF8)]));
        assert!(!ok(&[
            seg(0xED, b"Photoshop 3.0\08BIM\x03\xed"),
            seg(0xC0, &SOF8)
        ]));
        assert!(ok(&[
            seg(0xED, b"Photoshop 3.0\08BIM\x03\xed\0"),
            seg(0xC0, &SOF8)
        ]));
        // A segment cut short.
        let whole = jpeg(&[seg(0xC0, &SOF8)]);
        assert!(check(&whole[..10]).is_err());
        assert!(check(&whole[..3]).is_ok()); // nothing more to read: the walk just ends
    }
}
