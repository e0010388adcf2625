//! The error type of the ONNX Runtime backend.

use std::path::PathBuf;

/// Errors from loading or running a CLIP model on ONNX Runtime.
///
/// Each variant says what went wrong, with which file, and what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrtError {
    /// No ONNX Runtime shared library was found.
    #[error(
        "ONNX Runtime library not found (searched: {searched}). Install it with \
         `pip install onnxruntime==1.32.0` and point ORT_DYLIB_PATH at \
         .../site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0, or pass its path explicitly \
         (OrtOptions::with_library_path / --ort-lib)"
    )]
    RuntimeNotFound {
        /// Every place that was looked at, in order.
        searched: String,
    },
    /// The ONNX Runtime library exists but could not be loaded (wrong file, wrong
    /// architecture, too old a version).
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// The loader's explanation.
        message: String,
    },
    /// The ONNX Runtime environment could not be created.
    #[error("cannot create the ONNX Runtime environment")]
    Environment(#[source] ort::Error),
    /// The model directory does not have a recognised layout.
    #[error(
        "{dir} is not a CLIP model directory: expected clip_config.json + visual.onnx + \
         textual.onnx (tools/export_onnx.py) or config.json + onnx/vision_model.onnx + \
         onnx/text_model.onnx (transformers.js layout); missing {missing}"
    )]
    UnknownLayout {
        /// The directory given.
        dir: PathBuf,
        /// What was missing.
        missing: String,
    },
    /// A model's configuration could not be read or is invalid.
    #[error("bad model configuration")]
    Config(#[from] clip_core::Error),
    /// A configuration file of the transformers.js layout is malformed.
    #[error("cannot read {path}: {reason}")]
    ForeignConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A requested execution provider cannot run here.
    #[error(
        "execution provider {provider} is not available: {reason}. Use Device::Auto (--device auto) \
         to fall back to the CPU, or install an ONNX Runtime build with {provider} support and its \
         libraries"
    )]
    ProviderUnavailable {
        /// `CUDAExecutionProvider` or `TensorrtExecutionProvider`.
        provider: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// ONNX Runtime could not load a model file (missing, truncated, not ONNX, unsupported ops).
    #[error("cannot load ONNX model {path}")]
    Session {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's error.
        #[source]
        source: ort::Error,
    },
    /// A model's inputs or outputs are not what a CLIP tower has.
    #[error("{path} does not look like a CLIP {tower} tower: {reason}")]
    ModelSignature {
        /// The model file.
        path: PathBuf,
        /// `image` or `text`.
        tower: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// The model and its configuration disagree (e.g. embedding width, image size).
    #[error("{path} disagrees with its configuration: {reason}")]
    ConfigMismatch {
        /// The model file.
        path: PathBuf,
        /// Which value disagrees.
        reason: String,
    },
    /// ONNX Runtime failed while running a model.
    #[error("running the {tower} tower ({}) failed", path.display())]
    Run {
        /// `image` or `text`.
        tower: &'static str,
        /// The tower's model file.
        path: PathBuf,
        /// ONNX Runtime's error.
        #[source]
        source: ort::Error,
    },
    /// A model produced output of an unexpected shape or type.
    #[error("the {tower} tower returned {reason}")]
    BadOutput {
        /// `image` or `text`.
        tower: &'static str,
        /// What came back and what was expected.
        reason: String,
    },
}

impl From<OrtError> for clip_core::Error {
    fn from(err: OrtError) -> Self {
        match err {
            OrtError::Config(inner) => inner,
            other => clip_core::Error::Backend(Box::new(other)),
        }
    }
}
