//! The error type of clip-core and of the [`Clip`](crate::Clip) facade.

use std::path::PathBuf;

use clip_preprocess::image::ImageError;
use clip_preprocess::tokenizer::TokenizerError;

/// Errors from clip-core: configuration, input validation, preprocessing, tokenizing and the backend.
///
/// The enum is `#[non_exhaustive]` so new failure kinds can be added without breaking callers;
/// match the variants you handle and keep a catch-all arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model configuration file could not be read.
    #[error("cannot read model config {path}")]
    ConfigIo {
        /// The file that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A model configuration file is not valid JSON of the expected shape.
    #[error("model config {path} is malformed")]
    ConfigParse {
        /// The file that failed.
        path: PathBuf,
        /// The JSON error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A model configuration holds values that cannot describe a CLIP model.
    #[error("invalid model config: {reason}")]
    InvalidConfig {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// An input tensor or batch has the wrong shape or size for this model.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong and what was expected.
        reason: String,
    },
    /// An image could not be decoded or preprocessed.
    #[error("image {input}")]
    Image {
        /// Which image (its path or position in the batch).
        input: String,
        /// What went wrong.
        #[source]
        source: ImageError,
    },
    /// A text could not be tokenized (for example: too long without truncation).
    #[error("text could not be tokenized")]
    Tokenize(#[from] TokenizerError),
    /// An [`Encoder`](crate::Encoder) returned embeddings of the wrong shape (a backend bug,
    /// or a model whose output does not match its configuration).
    #[error("the encoder returned {reason}")]
    EncoderOutput {
        /// What came back and what was expected.
        reason: String,
    },
    /// The inference backend failed; the source is the backend's own typed error.
    #[error("inference backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// `Result` with clip-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line, `outer: cause: root cause` — for messages on a
/// terminal or in a log, where `Display` alone would drop the reason.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// assert_eq!(clip_core::error_chain(&io), "no such file");
/// ```
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
