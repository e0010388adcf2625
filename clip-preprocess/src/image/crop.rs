//! Output size and center-crop arithmetic (torchvision), and the crop itself.
//!
//! * `Resize(n)`: the short side becomes `n`, the long side is
//!   `int(n * long / short)`, evaluated as `(n * long) / short` in `f64` and
//!   truncated (`n * (long / short)` gives another size in hundreds of cases,
//!   e.g. 2013×231 → 1952, not 1951).
//! * `CenterCrop(n)`: `top = int(round((h - n) / 2.0))` with Python's
//!   round-half-to-even, `left` likewise; this differs from flooring when
//!   `(h - n) % 4 == 3`.

use super::raster::{Mode, Raster};

/// Which part of the resized image to compute.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) left: usize,
    pub(crate) top: usize,
    pub(crate) width: usize,
    pub(crate) height: usize,
}

/// Crops `win` out of `src` without resampling.
pub(crate) fn crop(src: &Raster, win: Window) -> Raster {
    if src.mode == Mode::I16 {
        let mut wide = Vec::with_capacity(win.width * win.height);
        for y in win.top..win.top + win.height {
            let row = y * src.width;
            wide.extend_from_slice(&src.wide[row + win.left..row + win.left + win.width]);
        }
        return Raster {
            mode: Mode::I16,
            width: win.width,
            height: win.height,
            data: Vec::new(),
            wide,
            palette: Vec::new(),
        };
    }
    let c = src.mode.channels();
    let mut data = super::scratch::take(win.width * win.height * c);
    for y in win.top..win.top + win.height {
        let row = (y * src.width + win.left) * c;
        data.extend_from_slice(&src.data[row..row + win.width * c]);
    }
    Raster {
        data,
        width: win.width,
        height: win.height,
        ..Raster::new_u8(src.mode, 0, 0, Vec::new())
    }
    .with_palette(&src.palette)
}

impl Raster {
    fn with_palette(mut self, palette: &[[u8; 3]]) -> Self {
        self.palette = palette.to_vec();
        self
    }
}

/// torchvision's `Resize(n)` output size: the short side becomes `n`, the long
/// side `int(n * long / short)` evaluated as `(n * long) / short` in `f64`.
pub(crate) fn resized_size(w: usize, h: usize, n: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((n as f64 * long as f64) / short as f64) as usize;
    if w <= h {
        (n, new_long)
    } else {
        (new_long, n)
    }
}

/// torchvision's `CenterCrop` offset: `int(round((size - n) / 2.0))` with
/// Python's round-half-to-even.
pub(crate) fn center_offset(size: usize, n: usize) -> usize {
    let d = size.saturating_sub(n);
    let half = d / 2;
    if d.is_multiple_of(2) || half.is_multiple_of(2) {
        half
    } else {
        half + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_matches_torchvision() {
        assert_eq!(resized_size(2013, 231, 224), (1952, 224));
        assert_eq!(resized_size(231, 2013, 224), (224, 1952));
        assert_eq!(resized_size(640, 480, 224), (298, 224));
        assert_eq!(resized_size(224, 224, 224), (224, 224));
    }

    #[test]
    fn center_offset_rounds_half_to_even() {
        assert_eq!(center_offset(224, 224), 0);
        assert_eq!(center_offset(225, 224), 0); // round(0.5) = 0
        assert_eq!(center_offset(227, 224), 2); // round(1.5) = 2
        assert_eq!(center_offset(229, 224), 2); // round(2.5) = 2
        assert_eq!(center_offset(231, 224), 4); // round(3.5) = 4
        assert_eq!(center_offset(298, 224), 37);
    }
}
