//! The ONNX Runtime backend of clip-rs.
//!
//! [`OrtEncoder`] loads a CLIP model's two ONNX towers and implements
//! [`clip_core::Encoder`]. ONNX Runtime itself is loaded at run time (ort's `load-dynamic`):
//! from [`OrtOptions::with_library_path`], else `$ORT_DYLIB_PATH`, else the places listed by
//! [`candidate_paths`]; when none has it, loading fails with [`OrtError::RuntimeNotFound`]
//! saying what to install — never a panic.
//!
//! ## Devices
//! [`Device::Auto`] tries TensorRT, then CUDA, then the CPU, and [`OrtEncoder::provider`]
//! says which one runs; [`Device::Cuda`] and [`Device::TensorRt`] fail with
//! [`OrtError::ProviderUnavailable`] instead of falling back.
//!
//! ## Concurrency
//! ONNX Runtime's `Session::run` needs exclusive access; each tower keeps a small pool of
//! sessions behind mutexes ([`OrtOptions::with_sessions`], default 1), so an `OrtEncoder`
//! is `Send + Sync` and can be shared by any number of threads.
//!
//! ## Model formats
//! fp32 and fp16 towers (inputs/outputs converted with `half`), int64 or int32 token ids,
//! and an optional `attention_mask` input (Hugging Face exports).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod device;
mod encoder;
mod error;
mod model_dir;
mod options;
mod runtime;
mod tower;

pub use crate::cache::default_model_cache_dir;
pub use crate::device::{Device, Provider};
pub use crate::encoder::OrtEncoder;
pub use crate::error::OrtError;
pub use crate::model_dir::{Layout, ModelFiles};
pub use crate::options::{GraphOptimization, OrtOptions};
pub use crate::runtime::{candidate_paths, Runtime, ORT_DYLIB_PATH};
