//! Vector databases: the backend-agnostic [`VectorStore`] trait (from `clip-core`) and, with
//! the `chroma` feature, its implementation on a Chroma server (`store::chroma`).
//!
//! [`search::Index`](crate::search::Index) is the in-process alternative: one file, exact
//! queries, no server.

pub use clip_core::store::{Hit, Metadata, MetadataValue, Record, VectorStore};

#[cfg(feature = "chroma")]
pub mod chroma;
