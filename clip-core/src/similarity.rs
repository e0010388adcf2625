//! Image–text similarity as the reference's `model(image, text)`.

use ndarray::{Array2, ArrayView2, Axis};

use crate::embedding::normalized;
use crate::error::{Error, Result};

/// `logit_scale.exp() * norm(images) @ norm(texts).T`, the reference's `logits_per_image`
/// (`[N_images, N_texts]`); its transpose is `logits_per_text`.
///
/// `logit_scale` is the raw parameter as stored in the weights
/// ([`ModelConfig::logit_scale`](crate::ModelConfig::logit_scale)), never a hard-coded 100.
pub fn logits(
    image_embeds: ArrayView2<'_, f32>,
    text_embeds: ArrayView2<'_, f32>,
    logit_scale: f32,
) -> Result<Array2<f32>> {
    if image_embeds.ncols() != text_embeds.ncols() {
        return Err(Error::InvalidInput {
            reason: format!(
                "image embeddings have width {} but text embeddings {}",
                image_embeds.ncols(),
                text_embeds.ncols()
            ),
        });
    }
    let images = normalized(image_embeds);
    let texts = normalized(text_embeds);
    Ok(images.dot(&texts.t()) * logit_scale.exp())
}

/// Row-wise softmax (numerically stable: the row maximum is subtracted first), as
/// `logits.softmax(dim=-1)`.
pub fn softmax_rows(logits: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = logits.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.mapv_inplace(|x| (x - max).exp());
        let sum: f32 = row.sum();
        if sum > 0.0 {
            row.mapv_inplace(|x| x / sum);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn logits_are_scaled_cosines() {
        let img = array![[2.0f32, 0.0], [0.0, 5.0]];
        let txt = array![[1.0f32, 0.0], [1.0, 1.0]];
        let l = logits(img.view(), txt.view(), 100f32.ln()).unwrap();
        assert!((l[[0, 0]] - 100.0).abs() < 1e-3);
        assert!((l[[1, 1]] - 100.0 * std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3);
        assert!(logits(img.view(), array![[1.0f32]].view(), 0.0).is_err());
    }

    #[test]
    fn softmax_sums_to_one_and_is_stable() {
        let p = softmax_rows(array![[1000.0f32, 1000.0], [0.0, f32::ln(3.0)]].view());
        assert!((p[[0, 0]] - 0.5).abs() < 1e-7);
        assert!((p[[1, 1]] - 0.75).abs() < 1e-6);
    }
}
