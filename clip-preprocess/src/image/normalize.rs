//! `ToTensor` + `Normalize` in float32, in the reference's operation order.
//!
//! torchvision computes `x.float().div(255)` then `sub_(mean).div_(std)`, all in
//! float32 (mean and std become float32 tensors first). A lookup table of the 256
//! possible results per channel, computed with exactly those operations, is
//! bit-identical and avoids the division per pixel.

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
