//! # clip-rs: OpenAI's CLIP in Rust
//!
//! Images and texts in one embedding space — zero-shot classification, image–text
//! similarity, semantic search — with results that match OpenAI's PyTorch reference and
//! run faster than it.
//!
//! * Preprocessing ([`preprocess::image`]) is **bit-exact** with the reference's
//!   `preprocess(Image.open(f))` (Pillow 13 + torchvision), and the tokenizer
//!   ([`preprocess::tokenizer`]) with `clip.tokenize` (ftfy and HTML unescaping included).
//! * Models run on ONNX Runtime ([`OrtEncoder`]) on the CPU, CUDA or TensorRT; the model
//!   files come from `tools/export_onnx.py` (OpenAI, open_clip or Hugging Face checkpoints)
//!   or a transformers.js-style repository.
//! * [`Clip`] ties it together; [`similarity`] gives the reference's `model(image, text)`.
//!
//! ```no_run
//! use clip_rs::{Clip, OrtOptions};
//!
//! let clip: Clip = clip_rs::load("models/vit-b-32", &OrtOptions::new())?;
//! let image = clip.encode_images(&["photo.jpg"])?;                  // [1, 512]
//! let texts = clip.encode_texts(&["a photo of a dog", "a photo of a cat"])?;
//! let probs = clip.probabilities(image.view(), texts.view())?;        // [1, 2]
//! println!("dog: {:.3}, cat: {:.3}", probs[[0, 0]], probs[[0, 1]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Crates
//! `clip-rs` re-exports three crates: `clip-core` (the [`Encoder`] trait, [`ModelConfig`],
//! [`Clip`], similarity), `clip-preprocess` (exact preprocessing and tokenizer) and
//! `clip-ort` (the ONNX Runtime backend).
//!
//! ## ONNX Runtime
//! ONNX Runtime is loaded at run time: pass its path with [`OrtOptions::with_library_path`]
//! or set `ORT_DYLIB_PATH`; `pip install onnxruntime==1.32.0` provides
//! `site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0`. The `download-binaries`
//! feature lets ort fetch one at build time instead (needs internet).
//!
//! ## Crate features
//! * `cli` (default): the `clip` command-line tool.
//! * `download-binaries`: ort downloads ONNX Runtime at build time.
//! * `cuda`, `tensorrt`: forwarded to `clip-ort`.
//! * `chroma`: `store::chroma`, a [`VectorStore`](store::VectorStore) on a Chroma server.
//! * `hub`: `hub::FromPretrained` (`Clip::from_pretrained("owner/repo")`): models from the
//!   Hugging Face Hub, cached locally, with an offline mode.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::Path;

#[cfg(feature = "hub")]
pub mod hub;
pub mod store;

#[cfg(feature = "hub")]
pub use crate::hub::FromPretrained;

pub use clip_core::zero_shot::{ZeroShotClassifier, ZeroShotError};
pub use clip_core::{
    batching, embedding, error_chain, search, similarity, zero_shot, AsImageInput, Clip, Encoder,
    Error, Failures, ImageInput, ModelConfig, Result, DEFAULT_BATCH_SIZE,
};
pub use clip_ort::{
    default_model_cache_dir, Device, GraphOptimization, Layout, OrtEncoder, OrtError, OrtOptions,
    Provider,
};
pub use clip_preprocess as preprocess;
pub use clip_preprocess::image::Preprocessor;
pub use clip_preprocess::tokenizer::Tokenizer;

/// Loads the model in `dir` on ONNX Runtime and wraps it in a [`Clip`].
///
/// `dir` is either a directory written by `tools/export_onnx.py` (`clip_config.json`,
/// `visual.onnx`, `textual.onnx`) or a transformers.js-style one (`config.json`,
/// `preprocessor_config.json`, `onnx/vision_model.onnx`, `onnx/text_model.onnx`).
pub fn load(dir: impl AsRef<Path>, options: &OrtOptions) -> std::result::Result<Clip, OrtError> {
    Ok(Clip::new(OrtEncoder::load(dir, options)?))
}

/// The names most programs use: `use clip_rs::prelude::*;`.
///
/// Brings in [`Clip`] and its options, the [`Encoder`] and [`VectorStore`](store::VectorStore)
/// traits, and with the `hub` feature `hub::FromPretrained` (so `Clip::from_pretrained` resolves).
pub mod prelude {
    #[cfg(feature = "hub")]
    pub use crate::hub::{FromPretrained, HubOptions};
    pub use crate::store::VectorStore;
    pub use crate::{Clip, Device, Encoder, OrtOptions, ZeroShotClassifier};
}

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
