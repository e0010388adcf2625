//! Pillow-exact resize: a port of Pillow 13.0.0's `src/libImaging/Resample.c`
//! (bicubic, `a = -0.5`) and of the NEAREST path (`ImagingScaleAffine` in
//! `Geometry.c`) that Pillow uses for modes `1` and `P`.
//!
//! The arithmetic is Pillow's, step by step:
//! * coefficients in `f64` (`precompute_coeffs`), normalised by their sum, then
//!   turned into `i32` with 22 fractional bits rounded half away from zero
//!   (`normalize_coeffs_8bpc`);
//! * 8-bit samples are accumulated in `i32` starting at `1 << 21` (the rounding
//!   half), shifted right by 22 and clamped to `0..=255`; the first pass is stored
//!   as clamped `u8` before the second pass reads it;
//! * the pass order is Pillow 13's: the vertical pass runs first exactly when the
//!   height shrinks by more than twice as many pixels as the width
//!   (`ImagingResampleInner`); older Pillows always went horizontal first;
//! * `I;16` uses `f64` weights and sums rounded with `ROUND_UP` and clamped to
//!   16 bits (`_ImagingResample*_16bpc`).
//!
//! Because every output pixel of a pass depends only on its own coefficients,
//! we compute just the window that the center crop keeps: the values are the
//! same as resizing everything and cropping afterwards, with less work.
//!
//! Integer sums are exact and order-independent, which is what lets the SIMD
//! kernels in [`simd`] match this scalar code byte for byte.

pub(crate) mod simd;

use super::crop::{crop, Window};
use super::raster::{Decoded, Mode, Raster};
use super::scratch;

/// Fractional bits of the fixed-point weights: `32 - 8 - 2` in Pillow (8 bits of
/// sample, 2 bits of headroom for the negative lobes and overshoot of bicubic).
pub(crate) const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Bicubic support (Pillow's `BICUBIC.support`).
const BICUBIC_SUPPORT: f64 = 2.0;

/// Pillow's `bicubic_filter` with `a = -0.5`, operation order preserved.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = if x < 0.0 { -x } else { x };
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Resampling coefficients of one axis (Pillow's `precompute_coeffs`).
#[derive(Clone, Debug)]
pub(crate) struct Coeffs {
    /// Maximum number of taps per output sample (row stride of `weights`).
    pub(crate) ksize: usize,
    /// Per output sample: first input index and number of taps.
    pub(crate) bounds: Vec<(usize, usize)>,
    /// `f64` weights (used by the 16-bit path), `ksize` per output sample.
    pub(crate) weights: Vec<f64>,
    /// Fixed-point weights (used by the 8-bit path), `ksize` per output sample.
    pub(crate) fixed: Vec<i32>,
}

impl Coeffs {
    /// Coefficients of the output samples `window` (a range of `0..out_size`) for resizing
    /// `in_size` samples to `out_size` (both ≥ 1), stored from index 0: entry `j` is output
    /// sample `window.start + j`. Only the crop window's samples are computed, so the
    /// memory is bounded by the window, not by `out_size` (a 1 × 100,000 image resized to
    /// 224 × 22,400,000 needs 224 rows of coefficients, not 22 million).
    pub(crate) fn window(in_size: usize, out_size: usize, window: std::ops::Range<usize>) -> Self {
        // Pillow passes the box as floats: in0 = 0.0f, in1 = (float)in_size.
        let in0 = 0.0f32;
        let in1 = in_size as f32;
        let scale = f64::from(in1 - in0) / out_size as f64;
        let filterscale = if scale < 1.0 { 1.0 } else { scale };
        let support = BICUBIC_SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;
        let mut bounds = Vec::with_capacity(window.len());
        let mut weights = vec![0.0f64; window.len() * ksize];
        for (xx, k) in window.zip(weights.chunks_exact_mut(ksize)) {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero; clamps as in Pillow.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let count = (xmax - xmin).max(0) as usize;
            let xmin = xmin as usize;
            let mut ww = 0.0f64;
            for (x, kx) in k.iter_mut().enumerate().take(count) {
                let w = bicubic((((x + xmin) as f64) - center + 0.5) * inv_filterscale);
                *kx = w;
                ww += w;
            }
            if ww != 0.0 {
                for kx in k.iter_mut().take(count) {
                    *kx /= ww;
                }
            }
            bounds.push((xmin, count));
        }
        let scale_fp = f64::from(1u32 << PRECISION_BITS);
        let fixed = weights
            .iter()
            .map(|&k| {
                if k < 0.0 {
                    (-0.5 + k * scale_fp) as i32
                } else {
                    (0.5 + k * scale_fp) as i32
                }
            })
            .collect();
        Coeffs {
            ksize,
            bounds,
            weights,
            fixed,
        }
    }

    /// Input index range `[first, last)` read by output samples `out`.
    fn input_span(&self, out: std::ops::Range<usize>) -> (usize, usize) {
        let mut lo = usize::MAX;
        let mut hi = 0;
        for &(min, n) in &self.bounds[out] {
            lo = lo.min(min);
            hi = hi.max(min + n);
        }
        if lo > hi {
            (0, 0)
        } else {
            (lo, hi)
        }
    }
}

/// Input samples read by output samples `window` when resizing `in_size` samples to
/// `out_size` (both ≥ 1; `window` non-empty and within `0..out_size`): the union of
/// their Pillow bounds. Each sample's bounds move right with its index, so the two end
/// samples give the union. The JPEG decoder uses it to decode only these columns.
pub(crate) fn input_span(
    in_size: usize,
    out_size: usize,
    window: std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    if window.is_empty() {
        return 0..0;
    }
    let first = Coeffs::window(in_size, out_size, window.start..window.start + 1);
    let last = Coeffs::window(in_size, out_size, window.end - 1..window.end);
    let (lo_a, hi_a) = first.input_span(0..1);
    let (lo_b, hi_b) = last.input_span(0..1);
    lo_a.min(lo_b)..hi_a.max(hi_b)
}

/// Pillow's `clip8`: `ss >> 22` clamped to a byte.
#[inline(always)]
pub(crate) fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The accumulator's starting value: one half in fixed point.
pub(crate) const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Kernel choice: the scalar oracle or the fastest the CPU supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernels {
    Scalar,
    Auto,
}

/// Resizes the image `decoded` to `out_w × out_h` with Pillow's `BICUBIC` (NEAREST for
/// `1`/`P`) and returns the `win` part of the result, in its mode.
///
/// A column window (`decoded.col0 > 0` or fewer columns than `full_width`) must hold
/// every column the output reads (`input_span`); only the 8-bit `L`/`RGB`/`CMYK` modes
/// that JPEG decodes to come windowed.
pub(crate) fn resize_window(
    decoded: &Decoded,
    out_w: usize,
    out_h: usize,
    win: Window,
    kernels: Kernels,
) -> Raster {
    let src = &decoded.raster;
    debug_assert!(
        (decoded.col0 == 0 && decoded.full_width == src.width)
            || matches!(src.mode, Mode::L | Mode::Rgb | Mode::Cmyk)
    );
    match src.mode {
        Mode::One | Mode::P => nearest_window(src, out_w, out_h, win),
        Mode::I16 => {
            let wide = resample_u16(src, out_w, out_h, win);
            Raster {
                mode: Mode::I16,
                width: win.width,
                height: win.height,
                data: Vec::new(),
                wide,
                palette: Vec::new(),
            }
        }
        Mode::La | Mode::Rgba => {
            // Image.resize: LA/RGBA go through La/RGBa (premultiplied) and back.
            let pre = premultiply(src);
            let mut out = resample_u8(
                &pre,
                src.mode.channels(),
                Columns::whole(src.width),
                src.height,
                out_w,
                out_h,
                win,
                kernels,
            );
            unpremultiply(&mut out, src.mode.channels());
            Raster::new_u8(src.mode, win.width, win.height, out)
        }
        Mode::L | Mode::Rgb | Mode::Cmyk => {
            let out = resample_u8(
                &src.data,
                src.mode.channels(),
                Columns {
                    first: decoded.col0,
                    held: src.width,
                    image: decoded.full_width,
                },
                src.height,
                out_w,
                out_h,
                win,
                kernels,
            );
            Raster::new_u8(src.mode, win.width, win.height, out)
        }
    }
}

/// `RGBA → RGBa` / `LA → La` (Pillow's `rgbA2rgba` / `lA2la`): colour times alpha
/// with `MULDIV255`.
fn premultiply(src: &Raster) -> Vec<u8> {
    let c = src.mode.channels();
    let mut out = src.data.clone();
    for px in out.chunks_exact_mut(c) {
        let a = u32::from(px[c - 1]);
        for v in &mut px[..c - 1] {
            *v = muldiv255(u32::from(*v), a) as u8;
        }
    }
    out
}

/// `RGBa → RGBA` / `La → LA` (Pillow's `rgba2rgbA` / `la2lA`): integer division,
/// clamped, untouched when alpha is 0 or 255.
fn unpremultiply(data: &mut [u8], c: usize) {
    for px in data.chunks_exact_mut(c) {
        let a = u32::from(px[c - 1]);
        if a != 0 && a != 255 {
            for v in &mut px[..c - 1] {
                *v = ((255 * u32::from(*v)) / a).min(255) as u8;
            }
        }
    }
}

/// Pillow's `MULDIV255(a, b)`: `(t + (t >> 8)) >> 8` with `t = a*b + 128`.
#[inline(always)]
pub(crate) fn muldiv255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// Which columns of an image a source buffer holds: `first..first + held` of `image`.
#[derive(Clone, Copy, Debug)]
struct Columns {
    first: usize,
    held: usize,
    image: usize,
}

impl Columns {
    fn whole(width: usize) -> Self {
        Columns {
            first: 0,
            held: width,
            image: width,
        }
    }
}

/// Two-pass 8-bit resample of an interleaved buffer with `c` channels, whose rows hold
/// the columns `cols` of an `cols.image`-wide image (all of them unless the JPEG decoder
/// skipped some: then they still include every column the output reads).
#[allow(clippy::too_many_arguments)]
fn resample_u8(
    src: &[u8],
    c: usize,
    columns: Columns,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    win: Window,
    kernels: Kernels,
) -> Vec<u8> {
    let in_w = columns.image;
    // Bytes per source row, and the first source column they hold.
    let stride = columns.held * c;
    let col0 = columns.first;
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let horizontal_first =
        !(in_h > out_h && (in_h - out_h) as i64 > (in_w as i64 - out_w as i64) * 2);
    // Output columns and rows of the crop window; the coefficients are computed for these
    // only and indexed from 0 (`out_cols`, `out_rows`).
    let cols = win.left..win.left + win.width;
    let rows = win.top..win.top + win.height;
    let (out_cols, out_rows) = (0..win.width, 0..win.height);
    let k = simd::select(kernels);

    match (need_h, need_v) {
        (false, false) => {
            let r = Raster::new_u8(Mode::L, stride, in_h, src.to_vec());
            crop(
                &r,
                Window {
                    left: (win.left - col0) * c,
                    top: win.top,
                    width: win.width * c,
                    height: win.height,
                },
            )
            .data
        }
        (true, false) => {
            let h = Coeffs::window(in_w, out_w, cols);
            let mut out = scratch::take_for_overwrite(win.width * win.height * c);
            k.horizontal(
                src, stride, c, win.top, win.height, &h, out_cols, col0, &mut out,
            );
            out
        }
        (false, true) => {
            let v = Coeffs::window(in_h, out_h, rows);
            let mut out = scratch::take_for_overwrite(win.width * win.height * c);
            k.vertical(
                src,
                stride,
                (win.left - col0) * c,
                win.width * c,
                0,
                &v,
                out_rows,
                &mut out,
            );
            out
        }
        (true, true) => {
            let h = Coeffs::window(in_w, out_w, cols);
            let v = Coeffs::window(in_h, out_h, rows);
            if horizontal_first {
                let (y0, y1) = v.input_span(out_rows.clone());
                let mut tmp = scratch::take_for_overwrite(win.width * (y1 - y0) * c);
                k.horizontal(
                    src,
                    stride,
                    c,
                    y0,
                    y1 - y0,
                    &h,
                    out_cols.clone(),
                    col0,
                    &mut tmp,
                );
                let mut out = scratch::take_for_overwrite(win.width * win.height * c);
                k.vertical(
                    &tmp,
                    win.width * c,
                    0,
                    win.width * c,
                    y0,
                    &v,
                    out_rows,
                    &mut out,
                );
                scratch::recycle(tmp);
                out
            } else {
                let (x0, x1) = h.input_span(out_cols.clone());
                let mut tmp = scratch::take_for_overwrite((x1 - x0) * win.height * c);
                k.vertical(
                    src,
                    stride,
                    (x0 - col0) * c,
                    (x1 - x0) * c,
                    0,
                    &v,
                    out_rows,
                    &mut tmp,
                );
                let mut out = scratch::take_for_overwrite(win.width * win.height * c);
                k.horizontal(
                    &tmp,
                    (x1 - x0) * c,
                    c,
                    0,
                    win.height,
                    &h,
                    out_cols,
                    x0,
                    &mut out,
                );
                scratch::recycle(tmp);
                out
            }
        }
    }
}

/// Scalar horizontal pass (the oracle): output columns `cols` of source rows
/// `row0..row0+nrows`; `col0` is the source column stored at index 0 of each row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn horizontal_scalar(
    src: &[u8],
    stride: usize,
    c: usize,
    row0: usize,
    nrows: usize,
    coeffs: &Coeffs,
    cols: std::ops::Range<usize>,
    col0: usize,
    out: &mut [u8],
) {
    let ncols = cols.len();
    for r in 0..nrows {
        let line = &src[(row0 + r) * stride..];
        let out_line = &mut out[r * ncols * c..(r + 1) * ncols * c];
        for (j, xx) in cols.clone().enumerate() {
            let (xmin, n) = coeffs.bounds[xx];
            let k = &coeffs.fixed[xx * coeffs.ksize..xx * coeffs.ksize + n];
            let base = (xmin - col0) * c;
            for ch in 0..c {
                let mut ss = HALF;
                for (i, &w) in k.iter().enumerate() {
                    ss = ss.wrapping_add(i32::from(line[base + i * c + ch]).wrapping_mul(w));
                }
                out_line[j * c + ch] = clip8(ss);
            }
        }
    }
}

/// Scalar vertical pass (the oracle): output rows `rows`, reading `width` bytes
/// starting at byte `x0` of each source row; `row0` is the source row stored at
/// index 0 of `src`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn vertical_scalar(
    src: &[u8],
    stride: usize,
    x0: usize,
    width: usize,
    row0: usize,
    coeffs: &Coeffs,
    rows: std::ops::Range<usize>,
    out: &mut [u8],
) {
    let mut acc = vec![0i32; width];
    for (r, yy) in rows.enumerate() {
        let (ymin, n) = coeffs.bounds[yy];
        let k = &coeffs.fixed[yy * coeffs.ksize..yy * coeffs.ksize + n];
        acc.fill(HALF);
        for (i, &w) in k.iter().enumerate() {
            let start = (ymin + i - row0) * stride + x0;
            let line = &src[start..start + width];
            for (a, &s) in acc.iter_mut().zip(line) {
                *a = a.wrapping_add(i32::from(s).wrapping_mul(w));
            }
        }
        for (o, &a) in out[r * width..(r + 1) * width].iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

/// Pillow's `ROUND_UP` then `CLIP16`.
fn round_clip16(ss: f64) -> u16 {
    // ROUND_UP(f) = (int)(f >= 0 ? f + 0.5F : f - 0.5F)
    let v = if ss >= 0.0 {
        (ss + 0.5) as i64
    } else {
        (ss - 0.5) as i64
    };
    v.clamp(0, 65535) as u16
}

/// 16-bit (`I;16`) resample: `f64` weights, same pass order as the 8-bit path.
fn resample_u16(src: &Raster, out_w: usize, out_h: usize, win: Window) -> Vec<u16> {
    let (in_w, in_h) = (src.width, src.height);
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let horizontal_first =
        !(in_h > out_h && (in_h - out_h) as i64 > (in_w as i64 - out_w as i64) * 2);
    let cols = win.left..win.left + win.width;
    let rows = win.top..win.top + win.height;
    // Coefficients of the crop window only, indexed from 0 (see `Coeffs::window`).
    let h = Coeffs::window(in_w, out_w, cols.clone());
    let v = Coeffs::window(in_h, out_h, rows.clone());
    let (out_cols, out_rows) = (0..win.width, 0..win.height);
    // Generic pass helpers over a (width × height) u16 grid.
    let hpass = |grid: &[u16],
                 gw: usize,
                 rows: std::ops::Range<usize>,
                 col0: usize,
                 cols: std::ops::Range<usize>| {
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for y in rows {
            for xx in cols.clone() {
                let (xmin, n) = h.bounds[xx];
                let k = &h.weights[xx * h.ksize..xx * h.ksize + n];
                let mut ss = 0.0f64;
                for (i, &w) in k.iter().enumerate() {
                    ss += f64::from(grid[y * gw + xmin + i - col0]) * w;
                }
                out.push(round_clip16(ss));
            }
        }
        out
    };
    let vpass = |grid: &[u16],
                 gw: usize,
                 row0: usize,
                 rows: std::ops::Range<usize>,
                 cols: std::ops::Range<usize>| {
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for yy in rows {
            let (ymin, n) = v.bounds[yy];
            let k = &v.weights[yy * v.ksize..yy * v.ksize + n];
            for x in cols.clone() {
                let mut ss = 0.0f64;
                for (i, &w) in k.iter().enumerate() {
                    ss += f64::from(grid[(ymin + i - row0) * gw + x]) * w;
                }
                out.push(round_clip16(ss));
            }
        }
        out
    };
    match (need_h, need_v) {
        (false, false) => crop(src, win).wide,
        (true, false) => hpass(&src.wide, in_w, rows, 0, out_cols),
        (false, true) => vpass(&src.wide, in_w, 0, out_rows, cols),
        (true, true) if horizontal_first => {
            let (y0, y1) = v.input_span(out_rows.clone());
            let tmp = hpass(&src.wide, in_w, y0..y1, 0, out_cols.clone());
            vpass(&tmp, win.width, y0, out_rows, out_cols)
        }
        (true, true) => {
            let (x0, x1) = h.input_span(out_cols.clone());
            let tmp = vpass(&src.wide, in_w, 0, out_rows, x0..x1);
            hpass(&tmp, x1 - x0, 0..win.height, x0, out_cols)
        }
    }
}

/// NEAREST as Pillow's `ImagingScaleAffine`: positions accumulate in `f64`
/// (`xo += a[0]`) from `a[0] * 0.5`, truncated (`COORD`).
///
/// Only the window's positions are kept, but the sum must be walked from the first
/// output position to reproduce its rounding, so the time grows with the window's far
/// edge (bounded by the caller's refusal of resized sides beyond `i32::MAX`).
fn nearest_window(src: &Raster, out_w: usize, out_h: usize, win: Window) -> Raster {
    let tab = |in_size: usize, out_size: usize, wanted: std::ops::Range<usize>| {
        let a = f64::from(in_size as f32) / out_size as f64;
        let mut o = a * 0.5;
        let mut t = Vec::with_capacity(wanted.len());
        for k in 0..wanted.end {
            if k >= wanted.start {
                let i = if o < 0.0 { -1 } else { o as i64 };
                t.push(if i >= 0 && (i as usize) < in_size {
                    Some(i as usize)
                } else {
                    None
                });
            }
            o += a;
        }
        t
    };
    if out_w == src.width && out_h == src.height {
        return crop(src, win);
    }
    let xt = tab(src.width, out_w, win.left..win.left + win.width);
    let yt = tab(src.height, out_h, win.top..win.top + win.height);
    let c = src.mode.channels();
    let mut data = scratch::take_zeroed(win.width * win.height * c);
    for (r, y) in yt.iter().enumerate() {
        let Some(y) = *y else { continue };
        for (j, x) in xt.iter().enumerate() {
            if let Some(x) = *x {
                let s = (y * src.width + x) * c;
                let d = (r * win.width + j) * c;
                data[d..d + c].copy_from_slice(&src.data[s..s + c]);
            }
        }
    }
    Raster {
        palette: src.palette.clone(),
        ..Raster::new_u8(src.mode, win.width, win.height, data)
    }
}

#[cfg(test)]
mod tests {
    use super::{input_span, Coeffs};

    /// `input_span` (the two end samples) equals the union of every sample's bounds.
    #[test]
    fn input_span_is_the_union_of_the_window_bounds() {
        let sizes = [1, 2, 3, 7, 224, 225, 231, 298, 336, 640, 900, 2013, 4032];
        for &in_size in &sizes {
            for &out_size in &sizes {
                for window in [
                    0..out_size,
                    out_size / 3..out_size - out_size / 3,
                    out_size - 1..out_size,
                ] {
                    if window.is_empty() {
                        continue;
                    }
                    let c = Coeffs::window(in_size, out_size, window.clone());
                    let (lo, hi) = c.input_span(0..window.len());
                    assert_eq!(
                        input_span(in_size, out_size, window.clone()),
                        lo..hi,
                        "{in_size} -> {out_size}, {window:?}"
                    );
                }
            }
        }
    }
}
