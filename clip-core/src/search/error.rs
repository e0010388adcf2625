//! The error type of [`crate::search`].

use std::path::PathBuf;

use super::ModelId;

/// What went wrong with a search index: reading or writing its file, a damaged or foreign
/// file, or an embedding or model that does not fit it.
///
/// Damaged files are always detected (checksums over every byte), never read into an index
/// that would give silently wrong results; [`IndexError::is_damaged`] groups those cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The file could not be read, written, synced or renamed.
    #[error("cannot {action} index file {path}")]
    Io {
        /// What was being done (`"read"`, `"write"`, `"rename into place"`, ...).
        action: &'static str,
        /// The file (or, for a directory sync, the directory).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the index magic bytes: it is some other kind of file.
    /// Check the `--db` path; clip-rs never overwrites a foreign file when loading fails.
    #[error("{path} is not a clip-rs search index (wrong magic bytes)")]
    NotAnIndex {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a version of clip-rs with another index format.
    /// Rebuild the index with this version (`clip index`), or use the version that wrote it.
    #[error("{path} is a version {found} index; this clip-rs reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The file is shorter than its header says: a copy or download was cut off.
    /// Restore it from a backup or rebuild it.
    #[error("{path} is truncated: {actual} bytes where the header promises {expected}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The size the header implies.
        expected: u64,
        /// The size on disk.
        actual: u64,
    },
    /// A section's CRC-32 does not match its bytes: the file was damaged after it was written.
    /// Restore it from a backup or rebuild it.
    #[error("{path} is damaged: the {section} checksum is {computed:#010x}, the file says {stored:#010x}")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// `"header"` or `"body"`.
        section: &'static str,
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The file's structure is inconsistent (impossible sizes, duplicate ids, non-finite
    /// values) although nothing matched a more specific case.
    #[error("{path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// The index was built with another model: its embeddings are not comparable with this
    /// model's. Search with the model that built it, or build a new index.
    #[error("the index was built with model {found}, not {expected}")]
    ModelMismatch {
        /// The model used now.
        expected: ModelId,
        /// The model recorded in the index.
        found: ModelId,
    },
    /// An embedding or query has another length than the index's dimension.
    #[error("embedding has {actual} values; the index holds embeddings of dimension {expected}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// An embedding or query cannot be normalised: it has a NaN or infinite value or is zero.
    #[error("invalid embedding: {reason}")]
    InvalidEmbedding {
        /// What is wrong.
        reason: &'static str,
    },
    /// An id is empty or longer than [`MAX_ID_BYTES`](super::MAX_ID_BYTES).
    #[error("invalid id ({len} bytes): ids must have 1 to {max} bytes")]
    InvalidId {
        /// The id's length in bytes.
        len: usize,
        /// The longest id allowed.
        max: usize,
    },
}

impl IndexError {
    /// Whether the file exists but its content cannot be trusted: truncated, failing its
    /// checksum, or inconsistent. (A foreign file or another version is not "damaged".)
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            Self::Truncated { .. } | Self::ChecksumMismatch { .. } | Self::Corrupt { .. }
        )
    }

    /// Whether the error is "this file does not exist" (e.g. to start a new index).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
