//! A [`VectorStore`] on a [Chroma](https://www.trychroma.com/) server (feature `chroma`).
//!
//! [`ChromaStore`] speaks Chroma's `/api/v2` REST API (chromadb 1.5) over a blocking HTTP
//! client: no async runtime, no Python. It writes the embeddings clip-rs computes, with their
//! metadata, into one collection and queries it by embedding — typically an image collection
//! queried with a text's embedding.
//!
//! The collection is created with **cosine** distance (`configuration.hnsw.space`), the
//! measure CLIP is trained with; connecting to an existing collection with another distance
//! is an error ([`ChromaError::WrongSpace`]) rather than silently different scores. Chroma
//! reports cosine *distance* `1 − cos`; [`Hit::score`] converts it back to the cosine
//! similarity (`1 − distance`), so scores equal
//! [`embedding::cosine`](crate::embedding::cosine) up to float rounding (≈1e-6).
//!
//! Chroma indexes with HNSW, an approximate nearest-neighbour graph: on large collections a
//! query may miss a true neighbour (the in-process [`search::Index`](crate::search::Index)
//! is exact).
//!
//! ```no_run
//! use clip_rs::store::chroma::{ChromaOptions, ChromaStore};
//! use clip_rs::store::{Record, VectorStore};
//!
//! # let clip: clip_rs::Clip = clip_rs::load("models/vit-b-32", &clip_rs::OrtOptions::new())?;
//! let mut store = ChromaStore::connect(&ChromaOptions::new("http://localhost:8000", "photos"))?;
//! let paths = ["cat.jpg", "dog.jpg"];
//! let embeddings = clip.encode_images(&paths)?;
//! let records: Vec<Record> = paths
//!     .iter()
//!     .zip(embeddings.rows())
//!     .map(|(path, row)| Record::new(*path, row.to_vec()).with_metadata("path", *path))
//!     .collect();
//! store.upsert(&records)?;
//!
//! let hits = store.query(clip.encode_text("a photo of a cat")?.view(), 1)?;
//! println!("{} ({:.3})", hits[0].id, hits[0].score);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;

use std::time::Duration;

use ndarray::ArrayView1;
use serde_json::{json, Map, Value};

pub use self::error::ChromaError;
use super::{Hit, Metadata, MetadataValue, Record, VectorStore};

/// Where and how to connect: server URL, tenant, database and collection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChromaOptions {
    url: String,
    collection: String,
    tenant: String,
    database: String,
    token: Option<String>,
    timeout: Duration,
}

impl ChromaOptions {
    /// The server at `url` (e.g. `http://localhost:8000`, as `chroma run` prints) and the
    /// collection `collection` (3–512 characters of `[a-zA-Z0-9._-]`, Chroma's rule), in the
    /// server's default tenant and database, without authentication, with a 60 s timeout.
    pub fn new(url: impl Into<String>, collection: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            collection: collection.into(),
            tenant: "default_tenant".to_owned(),
            database: "default_database".to_owned(),
            token: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// Uses another tenant (it must exist).
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Uses another database (it must exist).
    #[must_use]
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Sends this token in the `x-chroma-token` header (Chroma's token authentication and
    /// Chroma Cloud).
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The longest any one request may take (default 60 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One Chroma collection of embeddings, compared by cosine: see the [module docs](self).
///
/// Cheap to clone (the HTTP connection pool is shared); usable from several threads.
#[derive(Clone, Debug)]
pub struct ChromaStore {
    agent: ureq::Agent,
    token: Option<String>,
    /// `.../collections/<id>`: every record operation appends to it.
    collection_url: String,
    /// `.../collections/<name>`: chromadb 1.5 deletes collections by name (its OpenAPI
    /// description says id, but the server looks the path segment up as a name).
    collection_by_name_url: String,
    collection_name: String,
    collection_id: String,
    /// The server's limit on records per write (`/api/v2/pre-flight-checks`).
    max_batch_size: usize,
}

/// Records per write when the server does not say (chromadb 1.5 says 5461).
const FALLBACK_BATCH_SIZE: usize = 1000;

impl ChromaStore {
    /// Connects to the server and opens the collection, creating it with cosine distance if
    /// it does not exist.
    ///
    /// # Errors
    /// [`ChromaError::Connection`] when the server is unreachable, [`ChromaError::Server`]
    /// when it refuses (unknown tenant or database, invalid collection name),
    /// [`ChromaError::WrongSpace`] when the collection exists with another distance.
    pub fn connect(options: &ChromaOptions) -> Result<Self, ChromaError> {
        let config = ureq::Agent::config_builder()
            // Chroma explains its refusals in the body: read it instead of ureq's bare status.
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let base = format!("{}/api/v2", options.url.trim_end_matches('/'));
        let collections = format!(
            "{base}/tenants/{}/databases/{}/collections",
            path_segment(&options.tenant),
            path_segment(&options.database)
        );
        let mut store = Self {
            agent,
            token: options.token.clone(),
            collection_url: String::new(),
            collection_by_name_url: format!("{collections}/{}", path_segment(&options.collection)),
            collection_name: options.collection.clone(),
            collection_id: String::new(),
            max_batch_size: FALLBACK_BATCH_SIZE,
        };

        let checks = store.request(
            "read the server's limits",
            &format!("{base}/pre-flight-checks"),
            None,
        )?;
        if let Some(size) = checks.get("max_batch_size").and_then(Value::as_u64) {
            store.max_batch_size = usize::try_from(size).unwrap_or(usize::MAX).max(1);
        }

        let body = json!({
            "name": options.collection,
            "get_or_create": true,
            "configuration": { "hnsw": { "space": "cosine" } },
        });
        let operation = "create collection";
        let collection = store.request(operation, &collections, Some(&body))?;
        let id = collection
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| missing(operation, "id"))?;
        // `get_or_create` returns an existing collection unchanged, whatever space was asked.
        let space =
            space_of(&collection).ok_or_else(|| missing(operation, "the distance space"))?;
        if space != "cosine" {
            return Err(ChromaError::WrongSpace {
                collection: options.collection.clone(),
                space: space.to_owned(),
            });
        }
        store.collection_url = format!("{collections}/{id}");
        store.collection_id = id.to_owned();
        Ok(store)
    }

    /// The collection's name.
    pub fn collection_name(&self) -> &str {
        &self.collection_name
    }

    /// The collection's id (a UUID chosen by the server).
    pub fn collection_id(&self) -> &str {
        &self.collection_id
    }

    /// Deletes the whole collection and everything in it.
    pub fn delete_collection(self) -> Result<(), ChromaError> {
        self.send(
            "delete collection",
            ureq::http::Method::DELETE,
            &self.collection_by_name_url,
            None,
        )
        .map(drop)
    }

    /// Sends a GET (no body) or POST (with `body`) and returns the JSON answer.
    fn request(
        &self,
        operation: &'static str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ChromaError> {
        let method = if body.is_some() {
            ureq::http::Method::POST
        } else {
            ureq::http::Method::GET
        };
        self.send(operation, method, url, body)
    }

    fn send(
        &self,
        operation: &'static str,
        method: ureq::http::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ChromaError> {
        let connection = |source: ureq::Error| ChromaError::Connection {
            operation,
            url: url.to_owned(),
            source: Box::new(source),
        };
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        if let Some(token) = &self.token {
            request = request.header("x-chroma-token", token);
        }
        let request = request
            .header("content-type", "application/json")
            .body(body.map(Value::to_string).unwrap_or_default())
            .map_err(|err| connection(ureq::Error::Http(err)))?;
        let mut response = self.agent.run(request).map_err(connection)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(connection)?;
        if !(200..300).contains(&status) {
            let parsed: Option<Value> = serde_json::from_str(&text).ok();
            let field = |name: &str| {
                parsed
                    .as_ref()
                    .and_then(|v| v.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            return Err(ChromaError::Server {
                operation,
                status,
                kind: field("error").unwrap_or_else(|| "unknown".to_owned()),
                message: field("message").unwrap_or(text),
            });
        }
        serde_json::from_str(&text).map_err(|err| ChromaError::Response {
            operation,
            reason: format!("the body is not JSON ({err}): {}", truncated(&text)),
        })
    }

    /// POSTs `body` to `<collection>/<action>`.
    fn collection_request(
        &self,
        operation: &'static str,
        action: &str,
        body: &Value,
    ) -> Result<Value, ChromaError> {
        self.request(
            operation,
            &format!("{}/{action}", self.collection_url),
            Some(body),
        )
    }
}

impl VectorStore for ChromaStore {
    type Error = ChromaError;

    /// Writes the records in batches of the server's `max_batch_size`. Every record is
    /// checked before anything is sent, so invalid input writes nothing; a failure of the
    /// server midway leaves the earlier batches written (upserting again is harmless).
    fn upsert(&mut self, records: &[Record]) -> Result<(), ChromaError> {
        for record in records {
            check_record(record)?;
        }
        for batch in records.chunks(self.max_batch_size) {
            let body = json!({
                "ids": batch.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
                "embeddings": batch.iter().map(|r| r.embedding.as_slice()).collect::<Vec<_>>(),
                "metadatas": batch.iter().map(|r| metadata_to_json(&r.metadata)).collect::<Vec<_>>(),
            });
            self.collection_request("upsert", "upsert", &body)?;
        }
        Ok(())
    }

    fn query(&self, embedding: ArrayView1<'_, f32>, k: usize) -> Result<Vec<Hit>, ChromaError> {
        // chromadb 1.5 drops the connection on `n_results: 0` instead of answering.
        if k == 0 {
            return Ok(Vec::new());
        }
        let query: Vec<f32> = embedding.iter().copied().collect();
        if let Some(reason) = embedding_problem(&query) {
            return Err(ChromaError::InvalidEmbedding {
                id: "(query)".to_owned(),
                reason,
            });
        }
        let body = json!({
            "query_embeddings": [query],
            "n_results": i32::try_from(k).unwrap_or(i32::MAX),
            "include": ["metadatas", "distances"],
        });
        let operation = "query";
        let answer = self.collection_request(operation, "query", &body)?;
        // One query was sent, so each field holds one list.
        let first = |field: &str| {
            answer
                .get(field)
                .and_then(Value::as_array)
                .and_then(|lists| lists.first())
                .and_then(Value::as_array)
                .ok_or_else(|| missing(operation, field))
        };
        let ids = first("ids")?;
        let distances = first("distances")?;
        let metadatas = first("metadatas")?;
        if distances.len() != ids.len() || metadatas.len() != ids.len() {
            return Err(ChromaError::Response {
                operation,
                reason: format!(
                    "{} ids, {} distances and {} metadatas",
                    ids.len(),
                    distances.len(),
                    metadatas.len()
                ),
            });
        }
        ids.iter()
            .zip(distances)
            .zip(metadatas)
            .map(|((id, distance), metadata)| {
                let id = id
                    .as_str()
                    .ok_or_else(|| missing(operation, "a string id"))?;
                let distance = distance
                    .as_f64()
                    .ok_or_else(|| missing(operation, "a distance"))?;
                // Cosine distance is 1 − cosine similarity (chromadb's hnsw "cosine" space).
                let score = (1.0 - distance) as f32;
                Ok(Hit::new(id, score, metadata_from_json(id, metadata)?))
            })
            .collect()
    }

    fn delete(&mut self, ids: &[&str]) -> Result<(), ChromaError> {
        // An empty id list is a 400 in chromadb 1.5 (and a where-less delete is not what an
        // empty list means): nothing to do.
        if ids.is_empty() {
            return Ok(());
        }
        for batch in ids.chunks(self.max_batch_size) {
            self.collection_request("delete", "delete", &json!({ "ids": batch }))?;
        }
        Ok(())
    }

    fn count(&self) -> Result<usize, ChromaError> {
        let operation = "count";
        let answer = self.request(operation, &format!("{}/count", self.collection_url), None)?;
        answer
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| missing(operation, "a count"))
    }
}

/// The collection's distance: `configuration_json.hnsw.space` on a single-node server,
/// `configuration_json.spann.space` on distributed Chroma (Chroma Cloud).
fn space_of(collection: &Value) -> Option<&str> {
    let config = collection.get("configuration_json")?;
    ["hnsw", "spann"]
        .iter()
        .find_map(|index| config.get(index)?.get("space")?.as_str())
}

/// `name` as one URL path segment: everything but ASCII letters, digits, `-` and `_` is
/// percent-encoded, so a name cannot add segments (`/`, `..`) or a query (`?`).
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn missing(operation: &'static str, what: &str) -> ChromaError {
    ChromaError::Response {
        operation,
        reason: format!("no {what} in the answer"),
    }
}

fn truncated(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Why an embedding cannot be compared by cosine, if it cannot.
fn embedding_problem(embedding: &[f32]) -> Option<&'static str> {
    if embedding.is_empty() {
        Some("it is empty")
    } else if embedding.iter().any(|v| !v.is_finite()) {
        Some("it has a NaN or infinite value")
    } else if embedding.iter().all(|&v| v == 0.0) {
        // Chroma accepts it, but its cosine distance to everything is then meaningless.
        Some("it is all zeros")
    } else {
        None
    }
}

fn check_record(record: &Record) -> Result<(), ChromaError> {
    if let Some(reason) = embedding_problem(&record.embedding) {
        return Err(ChromaError::InvalidEmbedding {
            id: record.id.clone(),
            reason,
        });
    }
    for (key, value) in &record.metadata {
        metadata_value_to_json(value).map_err(|reason| ChromaError::InvalidMetadata {
            id: record.id.clone(),
            key: key.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// One metadata value as JSON, or why it has none.
fn metadata_value_to_json(value: &MetadataValue) -> Result<Value, String> {
    Ok(match value {
        MetadataValue::Str(s) => Value::from(s.as_str()),
        MetadataValue::Int(i) => Value::from(*i),
        // JSON has no NaN or infinity (serde_json would quietly write `null`).
        MetadataValue::Float(f) if !f.is_finite() => return Err(format!("{f} is not finite")),
        MetadataValue::Float(f) => Value::from(*f),
        MetadataValue::Bool(b) => Value::from(*b),
        other => return Err(format!("{other:?} is not a string, number or boolean")),
    })
}

/// Metadata as Chroma's JSON (checked by [`check_record`] first); an empty map is sent as
/// `null`, which Chroma stores as "no metadata", as its own clients do.
fn metadata_to_json(metadata: &Metadata) -> Value {
    if metadata.is_empty() {
        return Value::Null;
    }
    let map: Map<String, Value> = metadata
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), metadata_value_to_json(value).ok()?)))
        .collect();
    Value::Object(map)
}

/// Chroma's JSON metadata back into [`Metadata`]. JSON integers become [`MetadataValue::Int`]
/// and numbers with a fraction or exponent [`MetadataValue::Float`] (Chroma writes floats
/// with a decimal point, e.g. `2.0`, so the type survives the round trip).
fn metadata_from_json(id: &str, value: &Value) -> Result<Metadata, ChromaError> {
    let operation = "query";
    let object = match value {
        Value::Null => return Ok(Metadata::new()),
        Value::Object(object) => object,
        other => {
            return Err(ChromaError::Response {
                operation,
                reason: format!(
                    "record {id:?} has metadata {}",
                    truncated(&other.to_string())
                ),
            })
        }
    };
    object
        .iter()
        .map(|(key, value)| {
            let converted = match value {
                Value::String(s) => Some(MetadataValue::Str(s.clone())),
                Value::Bool(b) => Some(MetadataValue::Bool(*b)),
                Value::Number(n) => n
                    .as_i64()
                    .map(MetadataValue::Int)
                    .or_else(|| n.as_f64().map(MetadataValue::Float)),
                _ => None,
            };
            converted
                .map(|converted| (key.clone(), converted))
                .ok_or_else(|| ChromaError::Response {
                    operation,
                    reason: format!(
                        "record {id:?} has metadata {key:?} = {}, which is not a string, number \
                         or boolean (written by another client?)",
                        truncated(&value.to_string())
                    ),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_json_with_its_types() {
        let record = Record::new("a", vec![1.0])
            .with_metadata("path", "x/é \"q\".jpg")
            .with_metadata("size", 9_007_199_254_740_993_i64)
            .with_metadata("ratio", 2.0)
            .with_metadata("ok", true);
        let json = metadata_to_json(&record.metadata);
        // Through text, as on the wire.
        let back: Value = serde_json::from_str(&json.to_string()).unwrap_or(Value::Null);
        assert_eq!(metadata_from_json("a", &back).ok(), Some(record.metadata));
        assert_eq!(metadata_to_json(&Metadata::new()), Value::Null);
        assert_eq!(
            metadata_from_json("a", &Value::Null).ok(),
            Some(Metadata::new())
        );
    }

    #[test]
    fn unsupported_metadata_is_an_error_naming_record_and_key() {
        let err = metadata_from_json("r1", &json!({"tags": ["a", "b"]})).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("\"r1\"") && text.contains("\"tags\""),
            "{text}"
        );
    }

    #[test]
    fn invalid_records_are_refused_before_sending() {
        assert!(check_record(&Record::new("ok", vec![0.0, 1.0])).is_ok());
        for (embedding, reason) in [
            (vec![], "it is empty"),
            (vec![0.0, f32::NAN], "it has a NaN or infinite value"),
            (vec![0.0, 0.0], "it is all zeros"),
        ] {
            match check_record(&Record::new("bad", embedding)) {
                Err(ChromaError::InvalidEmbedding { id, reason: r }) => {
                    assert_eq!((id.as_str(), r), ("bad", reason));
                }
                other => panic!("expected InvalidEmbedding, got {other:?}"),
            }
        }
        let nan = Record::new("m", vec![1.0]).with_metadata("x", f64::NAN);
        let text = check_record(&nan).err().map(|e| e.to_string());
        assert_eq!(
            text.as_deref(),
            Some("record \"m\": metadata \"x\" cannot be stored in Chroma: NaN is not finite")
        );
    }

    #[test]
    fn names_are_single_path_segments() {
        assert_eq!(path_segment("default_tenant"), "default_tenant");
        assert_eq!(path_segment("clip-rs.images"), "clip-rs%2Eimages");
        assert_eq!(path_segment("../a b?c/é"), "%2E%2E%2Fa%20b%3Fc%2F%C3%A9");
    }

    #[test]
    fn space_is_read_from_hnsw_or_spann_configuration() {
        let hnsw = json!({"configuration_json": {"hnsw": {"space": "l2"}, "spann": null}});
        let spann = json!({"configuration_json": {"hnsw": null, "spann": {"space": "cosine"}}});
        assert_eq!(space_of(&hnsw), Some("l2"));
        assert_eq!(space_of(&spann), Some("cosine"));
        assert_eq!(space_of(&json!({})), None);
    }
}
