//! Pillow's `convert("RGB")` from each mode, one pixel at a time.
//!
//! From Pillow 13.0.0's `src/libImaging/Convert.c`: `L`/`LA` replicate the gray
//! value, `RGBA` drops alpha, `P` looks up the palette, `1` maps to 0/255,
//! `CMYK` uses `cmyk2rgb` and `I;16` uses `I16_RGB` (values above 255 saturate).

use super::raster::{Mode, Raster};
use super::resize::muldiv255;

/// Calls `f(index, [r, g, b])` for every pixel of `src` in row-major order.
pub(crate) fn for_each_rgb(src: &Raster, mut f: impl FnMut(usize, [u8; 3])) {
    match src.mode {
        Mode::One | Mode::L => {
            for (i, &v) in src.data.iter().enumerate() {
                f(i, [v, v, v]);
            }
        }
        Mode::La => {
            for (i, p) in src.data.chunks_exact(2).enumerate() {
                f(i, [p[0], p[0], p[0]]);
            }
        }
        Mode::P => {
            for (i, &v) in src.data.iter().enumerate() {
                f(
                    i,
                    src.palette
                        .get(usize::from(v))
                        .copied()
                        .unwrap_or([0, 0, 0]),
                );
            }
        }
        Mode::Rgb => {
            for (i, p) in src.data.chunks_exact(3).enumerate() {
                f(i, [p[0], p[1], p[2]]);
            }
        }
        Mode::Rgba => {
            for (i, p) in src.data.chunks_exact(4).enumerate() {
                f(i, [p[0], p[1], p[2]]);
            }
        }
        Mode::Cmyk => {
            for (i, p) in src.data.chunks_exact(4).enumerate() {
                f(i, cmyk_to_rgb(p[0], p[1], p[2], p[3]));
            }
        }
        Mode::I16 => {
            for (i, &v) in src.wide.iter().enumerate() {
                // I16_RGB: `in[1] == 0 ? in[0] : 255` (little-endian high byte).
                let g = if v >> 8 == 0 { v as u8 } else { 255 };
                f(i, [g, g, g]);
            }
        }
    }
}

/// Pillow's `cmyk2rgb`: `nk - MULDIV255(x, nk)` with `nk = 255 - k`.
fn cmyk_to_rgb(c: u8, m: u8, y: u8, k: u8) -> [u8; 3] {
    let nk = 255 - u32::from(k);
    let ch = |x: u8| (nk - muldiv255(u32::from(x), nk)) as u8;
    [ch(c), ch(m), ch(y)]
}
