//! `ToTensor` + `Normalize` in float32, in the reference's operation order.
//!
//! torchvision computes `x.float().div(255)` then `sub_(mean).div_(std)`, all in
//! float32 (mean and std become float32 tensors first). A lookup table of the 256
//! possible results per channel, computed with exactly those operations, is
//! bit-identical and avoids the division per pixel.

use ndarray::ArrayViewMut3;

use super::convert::for_each_rgb;
use super::raster::{Mode, Raster};

/// Per-channel table: `table[c][v] = (v / 255 - mean[c]) / std[c]` in `f32`.
#[derive(Clone)]
pub(crate) struct NormalizeTable {
    pub(crate) table: Box<[[f32; 256]; 3]>,
}

impl std::fmt::Debug for NormalizeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NormalizeTable")
    }
}

impl NormalizeTable {
    pub(crate) fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        let mut table = Box::new([[0.0f32; 256]; 3]);
        for (c, row) in table.iter_mut().enumerate() {
            for (v, slot) in row.iter_mut().enumerate() {
                // Subtract, then divide (not a multiply by 1/std): that is what
                // torchvision's Normalize does, and the results differ in the last bit.
                *slot = (v as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        NormalizeTable { table }
    }
}

/// Converts `src` (the cropped image, in its Pillow mode, `n × n`) to RGB and writes the
/// normalised `[3, n, n]` tensor `out`: [`write_planes`] when `out` is contiguous (a
/// tensor or a batch row), element by element otherwise.
pub(crate) fn write_tensor(src: &Raster, table: &[[f32; 256]; 3], mut out: ArrayViewMut3<f32>) {
    let n = out.shape()[2];
    let plane = out.shape()[1] * n;
    if let Some(buf) = out.as_slice_mut() {
        let (r, rest) = buf.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        write_planes(src, table, [r, g, b]);
    } else {
        for_each_rgb(src, |i, px| {
            for (c, &v) in px.iter().enumerate() {
                out[[c, i / n, i % n]] = table[c][usize::from(v)];
            }
        });
    }
}

/// The three output planes `[r, g, b]`.
pub(crate) type Planes<'a> = [&'a mut [f32]; 3];

/// Converts `src` (the cropped image, in its Pillow mode) to RGB and writes the
/// normalised planes `[r, g, b]`, each `width * height` long.
///
/// `RGB` and `L` (nearly every photo) take loops over whole rows without a call per
/// pixel, so the compiler drops the bounds checks; the other modes go through
/// [`for_each_rgb`], which defines the conversion. Both give the same values (tested).
fn write_planes(src: &Raster, table: &[[f32; 256]; 3], planes: Planes<'_>) {
    let [r, g, b] = planes;
    match src.mode {
        Mode::Rgb => {
            for (((p, r), g), b) in src.data.chunks_exact(3).zip(r).zip(g).zip(b) {
                *r = table[0][usize::from(p[0])];
                *g = table[1][usize::from(p[1])];
                *b = table[2][usize::from(p[2])];
            }
        }
        Mode::L => {
            for (((&v, r), g), b) in src.data.iter().zip(r).zip(g).zip(b) {
                *r = table[0][usize::from(v)];
                *g = table[1][usize::from(v)];
                *b = table[2][usize::from(v)];
            }
        }
        _ => write_planes_per_pixel(src, table, [r, g, b]),
    }
}

/// [`write_planes`] one pixel at a time through [`for_each_rgb`] (the other modes, and
/// the oracle of the row loops).
fn write_planes_per_pixel(src: &Raster, table: &[[f32; 256]; 3], planes: Planes<'_>) {
    let [r, g, b] = planes;
    for_each_rgb(src, |i, [pr, pg, pb]| {
        r[i] = table[0][usize::from(pr)];
        g[i] = table[1][usize::from(pg)];
        b[i] = table[2][usize::from(pb)];
    });
}

#[cfg(test)]
mod tests {
    use super::{write_planes, write_planes_per_pixel, write_tensor, NormalizeTable, Planes};
    use crate::image::raster::{Mode, Raster};
    use crate::image::{CLIP_MEAN, CLIP_STD};

    /// The row loops of `RGB` and `L` give what the per-pixel conversion gives, for
    /// every byte value in every channel.
    #[test]
    fn row_loops_match_the_per_pixel_conversion() {
        let table = NormalizeTable::new(CLIP_MEAN, CLIP_STD);
        let n = 16 * 16; // 256 pixels
        for (mode, data) in [
            (Mode::L, (0..=255u8).collect::<Vec<_>>()),
            (
                Mode::Rgb,
                (0..n * 3).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>(),
            ),
        ] {
            let src = Raster::new_u8(mode, 16, 16, data);
            let run = |f: fn(&Raster, &[[f32; 256]; 3], Planes<'_>)| {
                let mut out = vec![f32::NAN; 3 * n];
                let (r, rest) = out.split_at_mut(n);
                let (g, b) = rest.split_at_mut(n);
                f(&src, &table.table, [r, g, b]);
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(run(write_planes), run(write_planes_per_pixel), "{mode:?}");
        }
    }

    /// A strided output (here column-major) gets the same values as a contiguous one.
    #[test]
    fn strided_outputs_equal_contiguous_ones() {
        use ndarray::{Array3, ShapeBuilder};
        let table = NormalizeTable::new(CLIP_MEAN, CLIP_STD);
        let data: Vec<u8> = (0..5 * 5 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let src = Raster::new_u8(Mode::Rgb, 5, 5, data);
        let mut contiguous = Array3::<f32>::zeros((3, 5, 5));
        let mut strided = Array3::<f32>::zeros((3, 5, 5).f());
        assert!(strided.as_slice_mut().is_none());
        write_tensor(&src, &table.table, contiguous.view_mut());
        write_tensor(&src, &table.table, strided.view_mut());
        assert_eq!(contiguous, strided);
    }
}
