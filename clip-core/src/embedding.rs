//! Embedding arithmetic: L2 normalisation and cosine similarity.
//!
//! Embeddings are plain `ndarray` arrays: one row per image or text, `[N, D]`.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis, Zip};

/// Scales `v` to unit L2 norm in place, as the reference's `x / x.norm(dim=-1, keepdim=True)`.
///
/// The norm is accumulated in `f64` (the reference accumulates in float32; the difference
/// is far below the tolerance of anything downstream). A zero vector is left as is instead
/// of becoming NaN.
pub fn normalize_in_place(mut v: ArrayViewMut1<'_, f32>) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        let norm = norm as f32;
        v.mapv_inplace(|x| x / norm);
    }
}

/// Returns a copy of `embeddings` with every row scaled to unit L2 norm.
pub fn normalized(embeddings: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = embeddings.to_owned();
    normalize_rows(&mut out);
    out
}

/// Scales every row of `embeddings` to unit L2 norm in place.
pub fn normalize_rows(embeddings: &mut Array2<f32>) {
    for row in embeddings.axis_iter_mut(Axis(0)) {
        normalize_in_place(row);
    }
}

/// Cosine similarity of two vectors: 0 when either is the zero vector, NaN when their
/// lengths differ (there is no meaningful answer, and comparing a prefix would hide the bug).
pub fn cosine(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f32 {
    if a.len() != b.len() {
        return f32::NAN;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    Zip::from(&a).and(&b).for_each(|&x, &y| {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    });
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn normalizes_rows_and_keeps_zero_rows() {
        let mut m = array![[3.0f32, 4.0], [0.0, 0.0]];
        normalize_rows(&mut m);
        assert_eq!(m, array![[0.6f32, 0.8], [0.0, 0.0]]);
    }

    #[test]
    fn cosine_of_known_vectors() {
        let a = array![1.0f32, 0.0];
        let b = array![1.0f32, 1.0];
        assert!((cosine(a.view(), b.view()) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
        assert_eq!(cosine(a.view(), array![0.0f32, 0.0].view()), 0.0);
        assert!(cosine(a.view(), array![1.0f32].view()).is_nan());
    }
}
