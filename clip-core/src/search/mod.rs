//! Semantic search: an index of unit-length embeddings with exact top-k queries and a
//! crash-safe, checksummed file format.
//!
//! An [`Index`] maps ids (file paths or any keys) to embeddings, stored as `f32` or, at half
//! the memory and I/O, as `f16` ([`Dtype`]). Queries are exact: every row is scored by its
//! dot product with the normalised query (the cosine similarity) on all cores, and a bounded
//! heap keeps the best `k`. Each entry may carry [`FileMeta`] (size and modification time) so
//! re-indexing a folder can skip unchanged files.
//!
//! An index remembers the model that made it ([`ModelId`]); loading it for another model is
//! an error ([`IndexError::ModelMismatch`]), never a ranking by incomparable vectors.
//!
//! ## Durability
//! [`Index::save`] writes a temporary file beside the target, syncs it, renames it over the
//! target and syncs the directory: a crash at any moment leaves either the previous index or
//! the new one, never a mix. [`Index::load`] checks the magic bytes, the version, the exact
//! size and CRC-32 checksums of the header and of the body, so a foreign, truncated or
//! damaged file is a typed error ([`IndexError`]). The format is described in [`format`](mod@format).
//!
//! ```
//! use clip_core::search::{Dtype, Index, ModelId};
//! use ndarray::array;
//!
//! let model = ModelId::new("demo", 3, 42);
//! let mut index = Index::new(model.clone(), Dtype::F32);
//! index.upsert("red", array![1.0f32, 0.0, 0.0].view(), None)?;
//! index.upsert("green", array![0.0f32, 2.0, 0.0].view(), None)?; // stored normalised
//! index.upsert("orange", array![1.0f32, 0.5, 0.0].view(), None)?;
//!
//! let hits = index.search(array![1.0f32, 0.1, 0.0].view(), 2)?;
//! assert_eq!(hits[0].id, "red");
//! assert_eq!(hits[1].id, "orange");
//!
//! let dir = std::env::temp_dir().join(format!("clip-search-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("demo.clipidx");
//! index.save(&path)?;
//! let loaded = Index::load_for(&path, &model)?;
//! assert_eq!(loaded.len(), 3);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod format;
mod kernel;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ndarray::ArrayView1;

pub use self::error::IndexError;
pub use self::kernel::{dot_f16, dot_f32, f16_bits_to_f32};
use crate::config::ModelConfig;

/// Longest id accepted, in bytes (paths are far shorter; the limit bounds file parsing).
pub const MAX_ID_BYTES: usize = 1 << 16;

/// How embeddings are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// 4 bytes per value: the model's output as is (after normalisation).
    F32,
    /// 2 bytes per value (IEEE half, rounded to nearest even): half the memory and scan time;
    /// cosine scores move by about 1e-3 at most, which rarely changes a ranking.
    F16,
}

impl Dtype {
    /// Bytes per stored value.
    pub fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        })
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" | "float32" => Ok(Self::F32),
            "f16" | "float16" => Ok(Self::F16),
            other => Err(format!("unknown storage type {other:?} (use f32 or f16)")),
        }
    }
}

/// Which model made an index's embeddings: its architecture name, embedding width and a
/// 64-bit fingerprint. Embeddings of different models are not comparable, so an index
/// refuses queries from another model ([`Index::check_model`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelId {
    architecture: String,
    embed_dim: usize,
    fingerprint: u64,
}

impl ModelId {
    /// A model identity from its parts (for embeddings that come from elsewhere).
    pub fn new(architecture: impl Into<String>, embed_dim: usize, fingerprint: u64) -> Self {
        Self {
            architecture: architecture.into(),
            embed_dim,
            fingerprint,
        }
    }

    /// The identity of the model a [`ModelConfig`] describes: the fingerprint hashes
    /// (FNV-1a, 64 bits) every field of the configuration — architecture, widths, sizes,
    /// normalisation and the logit scale from the weights.
    ///
    /// Two exports of the same architecture with identical configurations but different
    /// weights share a fingerprint; pass a distinguishing [`ModelId::new`] for those.
    ///
    /// ```
    /// use clip_core::{search::ModelId, ModelConfig};
    /// let a = ModelId::from_config(&ModelConfig::new(512, 224, 4.6052));
    /// let b = ModelId::from_config(&ModelConfig::new(512, 336, 4.6052));
    /// assert_eq!(a.embed_dim(), 512);
    /// assert_ne!(a, b);
    /// ```
    pub fn from_config(config: &ModelConfig) -> Self {
        let mut h = Fnv1a::new();
        h.write(config.architecture.as_bytes());
        h.write(&[0xff]);
        h.write(&(config.embed_dim as u64).to_le_bytes());
        h.write(&config.image_size.to_le_bytes());
        for v in config.image_mean.iter().chain(&config.image_std) {
            h.write(&v.to_bits().to_le_bytes());
        }
        h.write(&(config.context_length as u64).to_le_bytes());
        h.write(&(config.vocab_size as u64).to_le_bytes());
        h.write(&config.logit_scale.to_bits().to_le_bytes());
        Self::new(config.architecture.clone(), config.embed_dim, h.0)
    }

    /// Mixes the model's weight files into the fingerprint, so two models with the same
    /// configuration but different weights (e.g. two random initialisations, or a model and
    /// its fine-tune) get different identities.
    ///
    /// Each file contributes its size and CRC-32s of its first and last MiB (a sample, so
    /// this reads at most 2 MiB per file however large the model): enough to tell different
    /// weights apart, not a defence against a deliberately crafted collision.
    ///
    /// ```
    /// use clip_core::search::ModelId;
    /// let base = ModelId::new("demo", 4, 1);
    /// let a = base.clone().with_weight_files(["Cargo.toml"])?;
    /// let b = base.clone().with_weight_files(["src/lib.rs"])?;
    /// assert_ne!(a, b);
    /// assert_eq!(a, base.with_weight_files(["Cargo.toml"])?);
    /// # Ok::<(), clip_core::search::IndexError>(())
    /// ```
    pub fn with_weight_files<P: AsRef<Path>>(
        mut self,
        files: impl IntoIterator<Item = P>,
    ) -> Result<Self, IndexError> {
        /// Bytes sampled at each end of a weight file.
        const SAMPLE: u64 = 1 << 20;
        let mut h = Fnv1a(self.fingerprint);
        for path in files {
            let path = path.as_ref();
            let err = |source| IndexError::Io {
                action: "read model file",
                path: path.to_owned(),
                source,
            };
            let mut file = std::fs::File::open(path).map_err(err)?;
            let len = file.metadata().map_err(err)?.len();
            h.write(&len.to_le_bytes());
            let mut buf = Vec::with_capacity(SAMPLE as usize);
            std::io::Read::by_ref(&mut file)
                .take(SAMPLE)
                .read_to_end(&mut buf)
                .map_err(err)?;
            h.write(&crc32fast::hash(&buf).to_le_bytes());
            if len > SAMPLE {
                std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len - SAMPLE.min(len)))
                    .map_err(err)?;
                buf.clear();
                file.take(SAMPLE).read_to_end(&mut buf).map_err(err)?;
                h.write(&crc32fast::hash(&buf).to_le_bytes());
            }
        }
        self.fingerprint = h.0;
        Ok(self)
    }

    /// The architecture name (e.g. `"ViT-B/32"`).
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The embedding width.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The 64-bit fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (dim {}, fingerprint {:016x})",
            self.architecture, self.embed_dim, self.fingerprint
        )
    }
}

/// FNV-1a, 64 bits: tiny, stable across platforms and releases (unlike `DefaultHasher`).
struct Fnv1a(u64);
impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// What is remembered of an indexed file to tell whether it changed: its size and
/// modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileMeta {
    /// Size in bytes.
    pub size: u64,
    /// Modification time: whole seconds since the Unix epoch (negative before it).
    pub modified_secs: i64,
    /// Modification time: nanoseconds within the second.
    pub modified_nanos: u32,
}

impl FileMeta {
    /// From a size and a modification time.
    pub fn new(size: u64, modified: SystemTime) -> Self {
        let (modified_secs, modified_nanos) = match modified.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(before) => {
                let d = before.duration();
                if d.subsec_nanos() == 0 {
                    (-(d.as_secs() as i64), 0)
                } else {
                    (-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
                }
            }
        };
        Self {
            size,
            modified_secs,
            modified_nanos,
        }
    }

    /// From a file's metadata; `None` where the platform has no modification time.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let meta = std::fs::metadata("Cargo.toml")?;
    /// let file = clip_core::search::FileMeta::from_metadata(&meta);
    /// assert_eq!(file.map(|f| f.size), Some(meta.len()));
    /// # Ok(()) }
    /// ```
    pub fn from_metadata(metadata: &std::fs::Metadata) -> Option<Self> {
        metadata
            .modified()
            .ok()
            .map(|modified| Self::new(metadata.len(), modified))
    }
}

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit<'a> {
    /// The entry's id.
    pub id: &'a str,
    /// Cosine similarity with the query, in `[-1, 1]`.
    pub score: f32,
}

/// Whether [`Index::upsert`] added a new entry or replaced one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// The id was new.
    Added,
    /// The id existed; its embedding and metadata were replaced.
    Updated,
}

#[derive(Clone, Debug, PartialEq)]
enum Storage {
    F32(Vec<f32>),
    /// IEEE half bits.
    F16(Vec<u16>),
}

/// An in-memory embedding index with exact top-k search; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Index {
    model: ModelId,
    ids: Vec<String>,
    metas: Vec<Option<FileMeta>>,
    positions: HashMap<String, usize>,
    data: Storage,
}

impl PartialEq for Index {
    /// Same model, and the same entries with the same values in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.model == other.model
            && self.ids == other.ids
            && self.metas == other.metas
            && self.data == other.data
    }
}

impl Index {
    /// An empty index for embeddings of `model`, stored as `dtype`.
    pub fn new(model: ModelId, dtype: Dtype) -> Self {
        let data = match dtype {
            Dtype::F32 => Storage::F32(Vec::new()),
            Dtype::F16 => Storage::F16(Vec::new()),
        };
        Self {
            model,
            ids: Vec::new(),
            metas: Vec::new(),
            positions: HashMap::new(),
            data,
        }
    }

    /// Builds an index from parsed parts, checking their consistency.
    fn from_parts(
        model: ModelId,
        ids: Vec<String>,
        metas: Vec<Option<FileMeta>>,
        data: Storage,
    ) -> Result<Self, String> {
        let values = match &data {
            Storage::F32(d) => d.len(),
            Storage::F16(d) => d.len(),
        };
        if ids.len() != metas.len() || ids.len().checked_mul(model.embed_dim) != Some(values) {
            return Err(format!(
                "{} ids, {} metadata records and {values} values of dimension {} disagree",
                ids.len(),
                metas.len(),
                model.embed_dim
            ));
        }
        let mut positions = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if id.is_empty() || id.len() > MAX_ID_BYTES {
                return Err(format!("entry {i} has an id of {} bytes", id.len()));
            }
            if positions.insert(id.clone(), i).is_some() {
                return Err(format!("id {id:?} appears twice"));
            }
        }
        Ok(Self {
            model,
            ids,
            metas,
            positions,
            data,
        })
    }

    /// The model whose embeddings this index holds.
    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.model.embed_dim
    }

    /// How embeddings are stored.
    pub fn dtype(&self) -> Dtype {
        match self.data {
            Storage::F32(_) => Dtype::F32,
            Storage::F16(_) => Dtype::F16,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `id` is in the index.
    pub fn contains(&self, id: &str) -> bool {
        self.positions.contains_key(id)
    }

    /// The ids, in storage order (which [`Index::remove`] changes).
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.ids.iter().map(String::as_str)
    }

    /// The file metadata stored with `id` (`None` if `id` is absent or has none).
    pub fn file_meta(&self, id: &str) -> Option<FileMeta> {
        self.positions.get(id).and_then(|&i| self.metas[i])
    }

    /// The stored (unit-length, possibly `f16`-rounded) embedding of `id`.
    pub fn embedding(&self, id: &str) -> Option<Vec<f32>> {
        let &row = self.positions.get(id)?;
        let range = row * self.dim()..(row + 1) * self.dim();
        Some(match &self.data {
            Storage::F32(d) => d[range].to_vec(),
            Storage::F16(d) => d[range].iter().map(|&b| f16_bits_to_f32(b)).collect(),
        })
    }

    /// Errors unless `model` is the model this index was built with.
    pub fn check_model(&self, model: &ModelId) -> Result<(), IndexError> {
        if *model == self.model {
            Ok(())
        } else {
            Err(IndexError::ModelMismatch {
                expected: model.clone(),
                found: self.model.clone(),
            })
        }
    }

    /// `embedding` scaled to unit length, checked against the index's width.
    fn unit(&self, embedding: ArrayView1<'_, f32>) -> Result<Vec<f32>, IndexError> {
        if embedding.len() != self.dim() {
            return Err(IndexError::DimensionMismatch {
                expected: self.dim(),
                actual: embedding.len(),
            });
        }
        if embedding.iter().any(|x| !x.is_finite()) {
            return Err(IndexError::InvalidEmbedding {
                reason: "it has an infinite or NaN value",
            });
        }
        let norm = embedding
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            return Err(IndexError::InvalidEmbedding {
                reason: "it is the zero vector, which has no direction",
            });
        }
        Ok(embedding
            .iter()
            .map(|&x| (f64::from(x) / norm) as f32)
            .collect())
    }

    /// Adds `id` with `embedding` (normalised to unit length before storing), or replaces
    /// the embedding and metadata of an existing `id`.
    ///
    /// # Errors
    /// [`IndexError::DimensionMismatch`], [`IndexError::InvalidEmbedding`] (NaN, infinite or
    /// zero), [`IndexError::InvalidId`] (empty or over [`MAX_ID_BYTES`]).
    pub fn upsert(
        &mut self,
        id: impl Into<String>,
        embedding: ArrayView1<'_, f32>,
        meta: Option<FileMeta>,
    ) -> Result<Upsert, IndexError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(IndexError::InvalidId {
                len: id.len(),
                max: MAX_ID_BYTES,
            });
        }
        let unit = self.unit(embedding)?;
        let dim = self.dim();
        match self.positions.get(&id) {
            Some(&row) => {
                let range = row * dim..(row + 1) * dim;
                match &mut self.data {
                    Storage::F32(d) => d[range].copy_from_slice(&unit),
                    Storage::F16(d) => {
                        for (dst, &x) in d[range].iter_mut().zip(&unit) {
                            *dst = half::f16::from_f32(x).to_bits();
                        }
                    }
                }
                self.metas[row] = meta;
                Ok(Upsert::Updated)
            }
            None => {
                match &mut self.data {
                    Storage::F32(d) => d.extend_from_slice(&unit),
                    Storage::F16(d) => {
                        d.extend(unit.iter().map(|&x| half::f16::from_f32(x).to_bits()));
                    }
                }
                self.positions.insert(id.clone(), self.ids.len());
                self.ids.push(id);
                self.metas.push(meta);
                Ok(Upsert::Added)
            }
        }
    }

    /// Removes `id`; returns whether it was there. The last entry takes its place
    /// (constant time), so storage order changes.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(row) = self.positions.remove(id) else {
            return false;
        };
        let dim = self.dim();
        let last = self.ids.len() - 1;
        self.ids.swap_remove(row);
        self.metas.swap_remove(row);
        fn move_last<T: Copy>(d: &mut Vec<T>, row: usize, last: usize, dim: usize) {
            if row != last {
                d.copy_within(last * dim..(last + 1) * dim, row * dim);
            }
            d.truncate(last * dim);
        }
        match &mut self.data {
            Storage::F32(d) => move_last(d, row, last, dim),
            Storage::F16(d) => move_last(d, row, last, dim),
        }
        if row != last {
            if let Some(moved) = self.positions.get_mut(&self.ids[row]) {
                *moved = row;
            }
        }
        true
    }

    /// Keeps only the entries for which `keep(id)` is true; returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) -> usize {
        let doomed: Vec<String> = self
            .ids
            .iter()
            .filter(|id| !keep(id.as_str()))
            .cloned()
            .collect();
        for id in &doomed {
            self.remove(id);
        }
        doomed.len()
    }

    /// The `k` entries most similar to `query` (cosine similarity), best first; ties go to
    /// the entry stored first. Uses every core ([`std::thread::available_parallelism`]).
    ///
    /// # Errors
    /// [`IndexError::DimensionMismatch`] or [`IndexError::InvalidEmbedding`] for a bad query.
    pub fn search(&self, query: ArrayView1<'_, f32>, k: usize) -> Result<Vec<Hit<'_>>, IndexError> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        self.search_with_threads(query, k, threads)
    }

    /// [`Index::search`] on at most `threads` threads (small indexes use fewer).
    pub fn search_with_threads(
        &self,
        query: ArrayView1<'_, f32>,
        k: usize,
        threads: usize,
    ) -> Result<Vec<Hit<'_>>, IndexError> {
        let q = self.unit(query)?;
        let dim = self.dim();
        let top = match &self.data {
            Storage::F32(d) => kernel::top_k(d, dim, k, threads, |row| dot_f32(row, &q)),
            Storage::F16(d) => kernel::top_k(d, dim, k, threads, |row| dot_f16(row, &q)),
        };
        Ok(top
            .into_iter()
            .map(|s| Hit {
                id: &self.ids[s.row],
                score: s.score,
            })
            .collect())
    }

    /// Writes the index to `path` atomically: after a crash at any moment, `path` holds the
    /// previous file or the complete new one (see the [module docs](self)).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IndexError> {
        format::save(self, path.as_ref())
    }

    /// Reads an index file, verifying its checksums and structure.
    ///
    /// # Errors
    /// [`IndexError::Io`], [`IndexError::NotAnIndex`], [`IndexError::UnsupportedVersion`],
    /// and the damaged-file cases ([`IndexError::is_damaged`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IndexError> {
        format::load(path.as_ref())
    }

    /// [`Index::load`], then [`Index::check_model`] against `model`.
    pub fn load_for(path: impl AsRef<Path>, model: &ModelId) -> Result<Self, IndexError> {
        let index = Self::load(path)?;
        index.check_model(model)?;
        Ok(index)
    }
}
