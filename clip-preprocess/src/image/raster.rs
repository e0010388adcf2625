//! The in-memory image: pixels in one of Pillow's modes.
//!
//! Resize and crop happen in the image's original Pillow mode (REFERENCE §1), so the
//! decoder keeps that mode instead of expanding everything to RGB.

/// A Pillow image mode (the subset that image files open as).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 1-bit, stored one byte per pixel as 0 or 255 (Pillow's layout).
    One,
    /// 8-bit grayscale.
    L,
    /// 8-bit grayscale + alpha (2 bytes per pixel).
    La,
    /// 8-bit palette indices; the palette is [`Raster::palette`].
    P,
    /// 8-bit RGB.
    Rgb,
    /// 8-bit RGBA.
    Rgba,
    /// 8-bit CMYK (already in Pillow's polarity).
    Cmyk,
    /// 16-bit grayscale (`I;16`), stored in [`Raster::wide`].
    I16,
}

impl Mode {
    /// Bytes per pixel in [`Raster::data`] (0 for `I;16`, which lives in `wide`).
    pub(crate) fn channels(self) -> usize {
        match self {
            Mode::One | Mode::L | Mode::P => 1,
            Mode::La => 2,
            Mode::Rgb => 3,
            Mode::Rgba | Mode::Cmyk => 4,
            Mode::I16 => 1,
        }
    }
}

/// Pixels in a Pillow mode, row-major, interleaved.
#[derive(Clone, Debug)]
pub(crate) struct Raster {
    pub(crate) mode: Mode,
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// 8-bit samples (`width * height * channels`), empty for `I;16`.
    pub(crate) data: Vec<u8>,
    /// 16-bit samples for `I;16`, empty otherwise.
    pub(crate) wide: Vec<u16>,
    /// RGB palette for `P` (256 entries; missing entries are black, as in Pillow).
    pub(crate) palette: Vec<[u8; 3]>,
}

impl Raster {
    pub(crate) fn new_u8(mode: Mode, width: usize, height: usize, data: Vec<u8>) -> Self {
        Raster {
            mode,
            width,
            height,
            data,
            wide: Vec::new(),
            palette: Vec::new(),
        }
    }
}

/// A decoded image that may hold only some of its columns: `raster` is columns
/// `col0..col0 + raster.width` of an image `full_width` columns wide.
///
/// The JPEG decoder in exact mode skips the inverse DCT, upsampling and colour
/// conversion of columns that the resize never reads (see `jpeg_window`); every
/// other path holds the whole width (`col0 == 0`, `full_width == raster.width`). The
/// rows are `raster.width` pixels apart, so everything that only looks at `raster`
/// still sees a consistent image.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) raster: Raster,
    pub(crate) col0: usize,
    pub(crate) full_width: usize,
}

impl Decoded {
    /// The whole image.
    pub(crate) fn whole(raster: Raster) -> Self {
        Decoded {
            col0: 0,
            full_width: raster.width,
            raster,
        }
    }
}
