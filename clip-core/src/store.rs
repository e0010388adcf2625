//! A backend-agnostic interface to vector databases: [`VectorStore`].
//!
//! [`search::Index`](crate::search::Index) keeps embeddings in one process and one file.
//! Users who want a database server (shared between processes or machines, with metadata
//! filters, replication, ...) write the same embeddings to one through this trait. clip-rs
//! implements it for [Chroma](https://www.trychroma.com/) (`clip_rs::store::chroma`, cargo
//! feature `chroma`); other stores (Qdrant, pgvector, ...) fit the same three operations:
//! upsert records, query by an embedding, delete by id.
//!
//! Every store compares embeddings by **cosine similarity**, the measure CLIP is trained with,
//! and reports it as [`Hit::score`] (higher is closer, 1 for the same direction) whatever
//! distance the database speaks internally, so hits from different stores and from
//! [`embedding::cosine`](crate::embedding::cosine) can be compared directly.
//!
//! ```
//! use clip_core::store::{Hit, Metadata, Record, VectorStore};
//! use ndarray::ArrayView1;
//!
//! /// A store kept in a `Vec` (exact, for a handful of records).
//! #[derive(Default)]
//! struct VecStore(Vec<Record>);
//!
//! impl VectorStore for VecStore {
//!     type Error = std::convert::Infallible;
//!     fn upsert(&mut self, records: &[Record]) -> Result<(), Self::Error> {
//!         for record in records {
//!             self.0.retain(|r| r.id != record.id);
//!             self.0.push(record.clone());
//!         }
//!         Ok(())
//!     }
//!     fn query(&self, query: ArrayView1<'_, f32>, k: usize) -> Result<Vec<Hit>, Self::Error> {
//!         let mut hits: Vec<Hit> = self.0.iter().map(|r| {
//!             let score = clip_core::embedding::cosine(query, ArrayView1::from(&r.embedding));
//!             Hit::new(r.id.clone(), score, r.metadata.clone())
//!         }).collect();
//!         hits.sort_by(|a, b| b.score.total_cmp(&a.score));
//!         hits.truncate(k);
//!         Ok(hits)
//!     }
//!     fn delete(&mut self, ids: &[&str]) -> Result<(), Self::Error> {
//!         self.0.retain(|r| !ids.contains(&r.id.as_str()));
//!         Ok(())
//!     }
//!     fn count(&self) -> Result<usize, Self::Error> {
//!         Ok(self.0.len())
//!     }
//! }
//!
//! let mut store = VecStore::default();
//! store.upsert(&[
//!     Record::new("cat.jpg", vec![1.0, 0.0]).with_metadata("path", "photos/cat.jpg"),
//!     Record::new("dog.jpg", vec![0.0, 1.0]).with_metadata("width", 640),
//! ])?;
//! let hits = store.query(ndarray::array![0.9f32, 0.1].view(), 1)?;
//! assert_eq!(hits[0].id, "cat.jpg");
//! assert_eq!(hits[0].metadata["path"], "photos/cat.jpg".into());
//! store.delete(&["cat.jpg"])?;
//! assert_eq!(store.count()?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use ndarray::ArrayView1;

/// Metadata stored beside an embedding: string keys to scalar values (what Chroma, Qdrant and
/// most vector databases accept). Sorted by key so that equal metadata compare equal.
pub type Metadata = BTreeMap<String, MetadataValue>;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MetadataValue {
    /// A string (e.g. a file path or a caption).
    Str(String),
    /// A signed integer (e.g. a size or a timestamp).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(value) => f.write_str(value),
            Self::Int(value) => write!(f, "{value}"),
            Self::Float(value) => write!(f, "{value}"),
            Self::Bool(value) => write!(f, "{value}"),
        }
    }
}

impl MetadataValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(value) => Some(value),
            _ => None,
        }
    }
}

impl From<&str> for MetadataValue {
    fn from(value: &str) -> Self {
        Self::Str(value.to_owned())
    }
}
impl From<String> for MetadataValue {
    fn from(value: String) -> Self {
        Self::Str(value)
    }
}
impl From<i64> for MetadataValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}
impl From<i32> for MetadataValue {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}
impl From<u32> for MetadataValue {
    fn from(value: u32) -> Self {
        Self::Int(value.into())
    }
}
impl From<f64> for MetadataValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}
impl From<f32> for MetadataValue {
    fn from(value: f32) -> Self {
        Self::Float(value.into())
    }
}
impl From<bool> for MetadataValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

/// One embedding to store, under a unique id, with its metadata.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The id (unique in the store; upserting an existing id replaces its record).
    pub id: String,
    /// The embedding, e.g. a row of [`Clip::encode_images`](crate::Clip::encode_images).
    /// Stores compare by cosine, so it need not be normalised.
    pub embedding: Vec<f32>,
    /// Values to store beside it, returned with each [`Hit`].
    pub metadata: Metadata,
}

impl Record {
    /// A record without metadata.
    pub fn new(id: impl Into<String>, embedding: impl Into<Vec<f32>>) -> Self {
        Self {
            id: id.into(),
            embedding: embedding.into(),
            metadata: Metadata::new(),
        }
    }

    /// Adds (or replaces) one metadata value.
    #[must_use]
    pub fn with_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<MetadataValue>,
    ) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// One result of [`VectorStore::query`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Hit {
    /// The record's id.
    pub id: String,
    /// Cosine similarity between the query and the record's embedding, in [-1, 1]; higher is
    /// closer. Computed by the store, so equal to clip-rs's own cosine up to float rounding.
    pub score: f32,
    /// The record's metadata.
    pub metadata: Metadata,
}

impl Hit {
    /// A hit (for implementations of [`VectorStore`]).
    pub fn new(id: impl Into<String>, score: f32, metadata: Metadata) -> Self {
        Self {
            id: id.into(),
            score,
            metadata,
        }
    }
}

/// A database of embeddings compared by cosine similarity: the interface clip-rs's vector
/// database integrations implement (see the [module docs](self) for an implementation).
///
/// Writes take `&mut self` so that in-process stores need no locking; a client of a server
/// is cheap to clone when several threads should write.
pub trait VectorStore {
    /// What can go wrong (connection, server, or invalid input).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Inserts the records, replacing those whose ids already exist.
    fn upsert(&mut self, records: &[Record]) -> Result<(), Self::Error>;

    /// The `k` records most similar to `embedding`, best first, with [`Hit::score`] the cosine
    /// similarity. Fewer when the store holds fewer. Stores with approximate indexes (HNSW)
    /// may miss a true neighbour on large collections; each implementation says.
    fn query(&self, embedding: ArrayView1<'_, f32>, k: usize) -> Result<Vec<Hit>, Self::Error>;

    /// Deletes the records with these ids; ids not in the store are ignored.
    fn delete(&mut self, ids: &[&str]) -> Result<(), Self::Error>;

    /// How many records the store holds.
    fn count(&self) -> Result<usize, Self::Error>;
}
