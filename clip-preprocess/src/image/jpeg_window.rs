//! Exact JPEG decoding of a column window: only the columns the resize reads.
//!
//! A centre crop of a landscape photo throws away the left and right parts of the
//! resized image (a quarter of a 4:3 photo's columns), and the resize's support
//! reaches only a few source columns past the crop. libjpeg-turbo can skip the inverse
//! DCT, upsampling and colour conversion of whole iMCU columns outside a window
//! (`jpeg_crop_scanline`, reached through TurboJPEG's `tj3SetCroppingRegion`, which the
//! `turbojpeg` crate does not wrap: hence the raw calls below). Measured with `djpeg
//! -crop` on 4032×3024 camera JPEGs: 48.7 → 42.7 ms per file.
//!
//! Why the pixels stay Pillow's:
//! * entropy decoding still runs over every MCU of every row (libjpeg-turbo decodes
//!   the Huffman data of skipped columns and drops their coefficients; only a *row*
//!   crop would skip data), so truncated or corrupt files fail exactly as in a full
//!   decode, warnings included;
//! * inside the window the output equals the full decode's, except that "fancy"
//!   chroma upsampling treats the window's left and right edges as image edges
//!   (libjpeg-turbo's `libjpeg.txt`, "Partial image decompression"): the window keeps
//!   one iMCU of margin beyond the needed columns on both sides, so those edge pixels
//!   are never read;
//! * any failure of the windowed decode (an alignment TurboJPEG rejects, sampling
//!   factors it cannot classify, lossless JPEG) falls back to the whole-width decode,
//!   whose verdict and pixels are the reference's.
// The raw TurboJPEG calls below are this module's only unsafe code; each has a SAFETY note.
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::ops::Range;

use turbojpeg::raw;
use turbojpeg::{PixelFormat, Subsamp};

use super::raster::{Mode, Raster};
use super::scratch;

/// The window to decode for the needed columns `needed` of a `width`-wide JPEG with
/// `subsamp` chroma subsampling, or None when a window would not save enough to be
/// worth a second header parse (or cannot be set).
pub(crate) fn window(needed: Range<usize>, width: usize, subsamp: Subsamp) -> Option<Range<usize>> {
    if matches!(subsamp, Subsamp::Unknown) || needed.is_empty() || needed.end > width {
        return None;
    }
    // TurboJPEG requires the left edge on an iMCU boundary (8, 16 or 32 columns).
    let mcu = subsamp.mcu_width();
    let start = needed.start.saturating_sub(mcu) / mcu * mcu;
    let end = needed.end.saturating_add(mcu).min(width);
    // Skip windows that keep more than 7/8 of the columns: little to gain.
    if (end - start) * 8 > width * 7 {
        return None;
    }
    Some(start..end)
}

/// A TurboJPEG decompressor handle, destroyed on drop.
struct Handle(raw::tjhandle);

impl Handle {
    fn new() -> Option<Self> {
        // SAFETY: tj3Init has no preconditions; a null result is checked.
        let ptr = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
        (!ptr.is_null()).then_some(Handle(ptr))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from tj3Init and is destroyed exactly once.
        unsafe { raw::tj3Destroy(self.0) };
    }
}

/// Decodes columns `cols` (from [`window`]) of the `width × height` JPEG `bytes` in
/// `mode` as TurboJPEG's pixel `format` (`L`/GRAY, `RGB`/RGB or `CMYK`/CMYK in libjpeg's
/// polarity: the caller's choice for the whole-width decode), or None if TurboJPEG
/// refuses or fails: the caller then decodes the whole width.
pub(crate) fn decode(
    bytes: &[u8],
    width: usize,
    height: usize,
    (mode, format): (Mode, PixelFormat),
    cols: Range<usize>,
) -> Option<Raster> {
    if format.size() != mode.channels() || cols.is_empty() || cols.end > width || height == 0 {
        return None;
    }
    let channels = mode.channels();
    let pitch = cols.len().checked_mul(channels)?;
    let len = pitch.checked_mul(height)?;
    let region = raw::tjregion {
        x: c_int::try_from(cols.start).ok()?,
        y: 0,
        w: c_int::try_from(cols.len()).ok()?,
        h: 0,
    };
    let c_pitch = c_int::try_from(pitch).ok()?;
    let size = raw::size_t::try_from(bytes.len()).ok()?;
    let handle = Handle::new()?;
    // SAFETY: `handle` is a live decompressor; `bytes` is valid for `bytes.len()` bytes.
    let header_ok = unsafe { raw::tj3DecompressHeader(handle.0, bytes.as_ptr(), size) } == 0;
    if !header_ok {
        return None;
    }
    // SAFETY: `handle` is live and its header was read (tj3Get only reads a parameter).
    let jpeg_width = unsafe { raw::tj3Get(handle.0, raw::TJPARAM_TJPARAM_JPEGWIDTH as c_int) };
    // SAFETY: as above.
    let jpeg_height = unsafe { raw::tj3Get(handle.0, raw::TJPARAM_TJPARAM_JPEGHEIGHT as c_int) };
    // The buffer below is sized from the caller's `width × height` (the header the
    // `turbojpeg` crate read from the same bytes); insist that this parse agrees.
    if usize::try_from(jpeg_width).ok() != Some(width)
        || usize::try_from(jpeg_height).ok() != Some(height)
    {
        return None;
    }
    // SAFETY: `handle` is live and its header was read; the region is validated by
    // TurboJPEG against the header (left edge on an iMCU boundary, inside the image).
    if unsafe { raw::tj3SetCroppingRegion(handle.0, region) } != 0 {
        return None;
    }
    let mut data = scratch::take_for_overwrite(len);
    // SAFETY: with the cropping region set (y = 0, full height, no scaling),
    // tj3Decompress8 writes `height` rows of `cols.len() * channels` bytes, `pitch`
    // bytes apart, into `data`, which holds `pitch * height` bytes; it reads
    // `bytes.len()` bytes of `bytes`. On failure it returns non-zero and the buffer is
    // only recycled.
    let status = unsafe {
        raw::tj3Decompress8(
            handle.0,
            bytes.as_ptr(),
            size,
            data.as_mut_ptr(),
            c_pitch,
            format as c_int,
        )
    };
    if status != 0 {
        scratch::recycle(data);
        return None;
    }
    Some(Raster::new_u8(mode, cols.len(), height, data))
}

#[cfg(test)]
mod tests {
    use super::window;
    use crate::image::decode;
    use crate::image::raster::Mode;
    use crate::image::Limits;
    use turbojpeg::Subsamp;

    /// Every JPEG of the corpus, for several column ranges (the centre crop's and
    /// arbitrary ones): the windowed decode's needed columns equal the whole-width
    /// decode's, byte for byte. Fails if the margin were too small (checked: with no
    /// margin, fancy-upsampled files differ at the window's edges).
    #[test]
    fn windowed_jpeg_decode_equals_the_whole_decode_on_the_needed_columns() {
        let files = crate::image::corpus_files(&["jpg"]);
        assert!(files.len() >= 15, "corpus JPEGs: {}", files.len());
        let limits = Limits::default();
        let mut windows_decoded = 0;
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            if decode::detect(&bytes).ok() != Some(decode::Format::Jpeg) {
                continue; // a PNG named .jpg (detection is by content)
            }
            let whole = decode::decode(&bytes, &limits, None, None).unwrap();
            assert_eq!(whole.col0, 0);
            let full = &whole.raster;
            let (w, h, c) = (full.width, full.height, full.mode.channels());
            let subsamp = turbojpeg::read_header(&bytes).unwrap().subsamp;
            let mut ranges = vec![
                w / 3..2 * w / 3,
                1..w / 2,
                w / 2..w.saturating_sub(1),
                w / 4..w / 4 + 1,
            ];
            ranges.extend(super::super::columns_read(w, h, 224));
            for needed in ranges {
                let Some(cols) = window(needed.clone(), w, subsamp) else {
                    continue;
                };
                let format = match full.mode {
                    Mode::L => turbojpeg::PixelFormat::GRAY,
                    Mode::Cmyk => turbojpeg::PixelFormat::CMYK,
                    _ => turbojpeg::PixelFormat::RGB,
                };
                let mut part = super::decode(&bytes, w, h, (full.mode, format), cols.clone())
                    .unwrap_or_else(|| panic!("{}: window {cols:?} refused", path.display()));
                if full.mode == Mode::Cmyk {
                    decode::invert(&mut part.data); // as decode_jpeg does
                }
                windows_decoded += 1;
                assert_eq!(
                    (part.width, part.height, part.mode),
                    (cols.len(), h, full.mode)
                );
                for y in 0..h {
                    let got = &part.data[(y * cols.len() + needed.start - cols.start) * c..]
                        [..needed.len() * c];
                    let want = &full.data[(y * w + needed.start) * c..][..needed.len() * c];
                    assert!(
                        got == want,
                        "{}: columns {needed:?} (window {cols:?}) differ in row {y}",
                        path.display()
                    );
                }
            }
        }
        assert!(
            windows_decoded >= 40,
            "only {windows_decoded} windows decoded"
        );
    }

    #[test]
    fn window_keeps_an_imcu_of_margin_and_aligns_the_left_edge() {
        // 4:2:0 (16-column iMCUs), needed 500..3500 of 4032.
        assert_eq!(window(500..3500, 4032, Subsamp::Sub2x2), Some(480..3516));
        // Needed columns touching the left edge: start at 0.
        assert_eq!(window(10..2000, 4032, Subsamp::Sub2x2), Some(0..2016));
        // Right edge clamped to the width.
        assert_eq!(window(2000..4030, 4032, Subsamp::None), Some(1992..4032));
        // Almost everything needed: not worth it.
        assert_eq!(window(100..3900, 4032, Subsamp::Sub2x2), None);
        // Unknown sampling, empty or out-of-range windows: none.
        assert_eq!(window(500..3500, 4032, Subsamp::Unknown), None);
        assert_eq!(window(500..500, 4032, Subsamp::Sub2x2), None);
        assert_eq!(window(500..5000, 4032, Subsamp::Sub2x2), None);
    }
}
