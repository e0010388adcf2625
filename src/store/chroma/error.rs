//! The error type of the Chroma client.

/// What went wrong talking to a Chroma server, with which request, and what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChromaError {
    /// The server could not be reached or the connection failed (wrong URL, server not
    /// running, timeout, TLS). Check the URL and that `chroma run` is up.
    #[error("cannot reach the Chroma server for {operation} ({url})")]
    Connection {
        /// What was being done (`"create collection"`, `"query"`, ...).
        operation: &'static str,
        /// The request's URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error status; `message` is its explanation (e.g. an
    /// embedding dimension that differs from the collection's).
    #[error("Chroma refused {operation} with HTTP {status} ({kind}): {message}")]
    Server {
        /// What was being done.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// Chroma's error class (`InvalidArgumentError`, `NotFoundError`, ...), or `unknown`.
        kind: String,
        /// Chroma's message, or the response body when it is not Chroma's error JSON.
        message: String,
    },
    /// The server answered successfully with a body this client does not understand (another
    /// API version?). clip-rs speaks Chroma's `/api/v2` as served by chromadb 1.5.
    #[error("unexpected answer from Chroma to {operation}: {reason}")]
    Response {
        /// What was being done.
        operation: &'static str,
        /// What was expected and what came back.
        reason: String,
    },
    /// The collection exists with another distance than cosine, so its scores would not be
    /// CLIP's cosine similarities. Use another collection name, or delete this collection.
    #[error(
        "Chroma collection {collection:?} measures {space} distance; clip-rs needs cosine \
         (use another collection name or delete this one)"
    )]
    WrongSpace {
        /// The collection's name.
        collection: String,
        /// Its distance (`l2`, `ip`).
        space: String,
    },
    /// An embedding cannot be compared by cosine: it is empty, zero, or has a NaN or
    /// infinite value. Nothing of the batch was written.
    #[error("record {id:?}: invalid embedding: {reason}")]
    InvalidEmbedding {
        /// The record's id.
        id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A metadata value cannot be stored (a NaN or infinite float, or a kind of value this
    /// client does not know). Nothing of the batch was written.
    #[error("record {id:?}: metadata {key:?} cannot be stored in Chroma: {reason}")]
    InvalidMetadata {
        /// The record's id.
        id: String,
        /// The metadata key.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
}

impl ChromaError {
    /// Whether the server said the tenant, database or collection does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Server { status: 404, .. })
    }
}
