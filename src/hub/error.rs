//! The error type of [`crate::hub`].

use std::path::PathBuf;

use crate::OrtError;

/// What went wrong getting a model from the Hugging Face Hub, with which repository and file,
/// and what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The repository id or revision is not one the Hub could have (`owner/name`, letters,
    /// digits, `-`, `_`, `.`).
    #[error("{repo:?} is not a Hugging Face repository id ({reason})")]
    InvalidRepo {
        /// The id (or revision) given.
        repo: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No cache directory was given and none can be derived: there is no `HF_HUB_CACHE`,
    /// `HF_HOME` or home directory. Pass one with `HubOptions::with_cache_dir`.
    #[error("no Hugging Face cache directory: set HF_HOME or HF_HUB_CACHE, or pass HubOptions::with_cache_dir")]
    NoCacheDir,
    /// Offline, and the cache has no snapshot of this repository at this revision. Download
    /// it once with network access (and without `HF_HUB_OFFLINE=1`), or check the cache dir.
    #[error("{repo} (revision {revision}) is not in the Hugging Face cache {cache_dir} and offline mode is on")]
    NotCached {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The cache directory searched.
        cache_dir: PathBuf,
    },
    /// Offline, and the cached snapshot lacks a file the model needs (an interrupted or
    /// partial download). Download it again with network access.
    #[error("{repo} (revision {revision}): {file} is not in the cached snapshot {snapshot} and offline mode is on")]
    MissingFile {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The file, relative to the repository root.
        file: String,
        /// The snapshot directory.
        snapshot: PathBuf,
    },
    /// The Hub says the repository (or revision) does not exist, or it is private or gated and
    /// no valid token was sent (set `HF_TOKEN` or `HubOptions::with_token`).
    #[error(
        "{repo} (revision {revision}) does not exist on the Hub or needs a token (HTTP {status})"
    )]
    RepoNotFound {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The HTTP status (401 or 404).
        status: u16,
    },
    /// The repository holds neither model layout clip-rs reads.
    #[error(
        "{repo} is not a CLIP model clip-rs can load: it has neither clip_config.json + \
         visual.onnx + textual.onnx nor config.json + onnx/vision_model.onnx + \
         onnx/text_model.onnx{found}"
    )]
    NotAModel {
        /// The repository id.
        repo: String,
        /// A note on what it has (e.g. the ONNX files found), starting with `; `, or empty.
        found: String,
    },
    /// Talking to the Hub failed (network, TLS, server error), or the download of a file did.
    #[error("cannot {action} of {repo} from the Hub")]
    Request {
        /// The repository id.
        repo: String,
        /// What was being done (`"list the files"`, `"download visual.onnx"`, ...).
        action: String,
        /// hf-hub's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The cache could not be written (recording which commit a revision points to).
    #[error("cannot write the Hugging Face cache at {path}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The files are there but the model does not load (see the source).
    #[error("cannot load the model {repo} from {dir}")]
    Load {
        /// The repository id.
        repo: String,
        /// The snapshot directory.
        dir: PathBuf,
        /// The loader's error.
        #[source]
        source: OrtError,
    },
}
