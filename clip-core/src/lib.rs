//! The backend-agnostic core of clip-rs.
//!
//! * [`Encoder`]: the interface a backend (e.g. `clip-ort`) implements — preprocessed
//!   pixels `[N,3,S,S]` or token ids `[N,L]` in, unnormalised embeddings `[N,D]` out.
//! * [`ModelConfig`]: what a model needs besides its weights (sizes, normalisation, logit scale).
//! * [`Clip`]: the facade — files, bytes, images and strings in, embeddings out, with
//!   preprocessing and tokenizing bit-exact with OpenAI's reference.
//! * [`embedding`] and [`similarity`]: normalisation, cosine similarity, the reference's
//!   `model(image, text)` logits and softmax.
//! * [`zero_shot`]: a [`ZeroShotClassifier`] from labels and prompt templates (with
//!   OpenAI's 80 ImageNet templates and 1,000 class names), probabilities and top-k.
//! * [`store`]: the [`VectorStore`](store::VectorStore) trait vector-database integrations
//!   implement (Chroma in `clip-rs`).
//! * [`Error`]: one typed error for all of it.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod batching;
mod clip;
pub mod config;
pub mod embedding;
mod encoder;
mod error;
pub mod search;
pub mod similarity;
pub mod store;
pub mod zero_shot;

pub use crate::clip::{AsImageInput, Clip, Failures, ImageInput, DEFAULT_BATCH_SIZE};
pub use crate::config::ModelConfig;
pub use crate::encoder::Encoder;
pub use crate::error::{error_chain, Error, Result};
pub use crate::zero_shot::{ZeroShotBuilder, ZeroShotClassifier, ZeroShotError};
