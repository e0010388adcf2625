//! The backend-agnostic encoder interface.

use ndarray::{Array2, ArrayView2, ArrayView4};

use crate::config::ModelConfig;
use crate::error::Result;

/// A CLIP model's two towers, as a backend runs them.
///
/// Implementations take `&self` and are `Send + Sync`, so one encoder can serve many threads;
/// a backend whose runtime needs exclusive access (ONNX Runtime's `Session::run` takes
/// `&mut self`) hides that behind its own synchronisation.
///
/// Both methods return the **unnormalised** projections, like the reference's
/// `model.encode_image` / `model.encode_text`.
///
/// A backend implements the four required methods; [`Clip`](crate::Clip) adds
/// preprocessing, tokenizing, batching and the decode ‖ encode pipeline on top:
///
/// ```
/// use clip_core::{Clip, Encoder, ModelConfig, Result};
/// use ndarray::{Array2, ArrayView2, ArrayView4, Axis};
///
/// /// A stand-in backend: the mean of each image, the token count of each text.
/// struct Toy(ModelConfig);
///
/// impl Encoder for Toy {
///     fn config(&self) -> &ModelConfig {
///         &self.0
///     }
///     fn encode_image_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
///         let n = pixels.len_of(Axis(0));
///         Ok(Array2::from_shape_fn((n, 2), |(i, j)| {
///             pixels.index_axis(Axis(0), i).mean().unwrap_or(0.0) + j as f32
///         }))
///     }
///     fn encode_text_batch(&self, ids: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
///         Ok(Array2::from_shape_fn((ids.nrows(), 2), |(i, _)| {
///             ids.row(i).iter().filter(|&&t| t != 0).count() as f32
///         }))
///     }
///     fn describe(&self) -> String {
///         "toy backend".into()
///     }
/// }
///
/// let clip = Clip::new(Toy(ModelConfig::new(2, 224, 100f32.ln())));
/// let texts = clip.encode_texts(&["a cat", "a photo of a dog"])?;
/// assert_eq!(texts.column(0).to_vec(), vec![4.0, 7.0]); // SOT + BPE tokens + EOT
/// # Ok::<(), clip_core::Error>(())
/// ```
pub trait Encoder: Send + Sync {
    /// The model's configuration.
    fn config(&self) -> &ModelConfig;

    /// Encodes preprocessed images `[N, 3, S, S]` (S = `config().image_size`) into `[N, D]`.
    fn encode_image_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>>;

    /// Encodes token ids `[N, L]` (as `clip.tokenize` returns them: start token, BPE ids,
    /// end token, zero padding; L ≤ `config().context_length`) into `[N, D]`.
    fn encode_text_batch(&self, token_ids: ArrayView2<'_, i32>) -> Result<Array2<f32>>;

    /// A short human-readable description of what runs the model, e.g.
    /// `"onnxruntime 1.32.0 on CPUExecutionProvider"`.
    fn describe(&self) -> String;

    /// Makes the image tower ready for [`Encoder::encode_image_batch`] now, for backends
    /// that create it on first use (the default does nothing). [`Clip`](crate::Clip) calls
    /// it while a second thread decodes the first batch of images, so that creating the
    /// tower (a second or so for ONNX Runtime) and decoding overlap instead of one waiting
    /// for the other. An error is the one the first `encode_image_batch` would give.
    fn prepare_image(&self) -> Result<()> {
        Ok(())
    }
}

impl<E: Encoder + ?Sized> Encoder for std::sync::Arc<E> {
    fn config(&self) -> &ModelConfig {
        (**self).config()
    }
    fn encode_image_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        (**self).encode_image_batch(pixels)
    }
    fn encode_text_batch(&self, token_ids: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
        (**self).encode_text_batch(token_ids)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn prepare_image(&self) -> Result<()> {
        (**self).prepare_image()
    }
}

impl<E: Encoder + ?Sized> Encoder for Box<E> {
    fn config(&self) -> &ModelConfig {
        (**self).config()
    }
    fn encode_image_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        (**self).encode_image_batch(pixels)
    }
    fn encode_text_batch(&self, token_ids: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
        (**self).encode_text_batch(token_ids)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn prepare_image(&self) -> Result<()> {
        (**self).prepare_image()
    }
}
