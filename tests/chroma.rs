//! `clip_rs::store::chroma` (feature `chroma`) against a real Chroma server: chromadb 1.5.9
//! from PyPI (`tools/setup.sh` installs it into `.venv-tools/`), started on a free loopback
//! port with its data in a temporary directory and killed at the end, even when a check fails.
//!
//! The server is found through `CHROMA_BIN`, else `.venv-tools/bin/chroma`. Without it the
//! round trip is skipped with a message, unless `CLIP_RS_REQUIRE_CHROMA=1` (set by
//! `tools/test.sh`, so CI never skips it) makes that a failure.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clip_rs::store::chroma::{ChromaError, ChromaOptions, ChromaStore};
use clip_rs::store::{Hit, MetadataValue, Record, VectorStore};
use ndarray::{Array2, ArrayView1};

use crate::support::{chain, cpu_options, model_dir};

/// A `chroma run` process and its data directory; both go away on drop.
struct ChromaServer {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl ChromaServer {
    /// The `chroma` executable, if installed.
    fn executable() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("CHROMA_BIN") {
            return Some(PathBuf::from(path));
        }
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-tools/bin/chroma");
        venv.is_file().then_some(venv)
    }

    fn start(chroma: PathBuf) -> Self {
        // A port the OS says is free; Chroma binds it a moment later (a race with other
        // programs binding ports at the same instant, which loopback tests accept).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("clip-rs-chroma-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(&chroma)
            .args([
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--path",
            ])
            .arg(dir.join("data"))
            .env("ANONYMIZED_TELEMETRY", "False")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chroma.display()));
        Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Connects to the collection, retrying while the server starts (about 2 s).
    fn connect(&mut self, collection: &str) -> ChromaStore {
        let deadline = Instant::now() + Duration::from_secs(60);
        let options = ChromaOptions::new(&self.url, collection);
        loop {
            match ChromaStore::connect(&options) {
                Ok(store) => return store,
                Err(ChromaError::Connection { .. }) if Instant::now() < deadline => {
                    if let Some(status) = self.child.try_wait().unwrap() {
                        panic!("chroma exited with {status}:\n{}", self.log());
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => panic!(
                    "connecting to {}: {}\n{}",
                    self.url,
                    chain(&err),
                    self.log()
                ),
            }
        }
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.dir.join("server.log")) {
            let _ = file.read_to_string(&mut text);
        }
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or_default().to_owned()
    }
}

impl Drop for ChromaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("chroma server log (tail):\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The chroma executable, or `None` (with a message) when the round trip is to be skipped.
fn chroma_or_skip(test: &str) -> Option<PathBuf> {
    let chroma = ChromaServer::executable();
    if chroma.is_none() {
        let required = std::env::var("CLIP_RS_REQUIRE_CHROMA").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "CLIP_RS_REQUIRE_CHROMA=1 but no Chroma server: run `bash tools/setup.sh` or set CHROMA_BIN"
        );
        eprintln!(
            "SKIPPED {test}: no Chroma server (run `bash tools/setup.sh`, which installs chromadb \
             into .venv-tools/, or set CHROMA_BIN)"
        );
    }
    chroma
}

const IMAGES: [&str; 6] = [
    "china.jpg",
    "chelsea.png",
    "flower.jpg",
    "coins.png",
    "horse.png",
    "camera.png",
];

/// Writes image embeddings of the tiny test model with metadata to a real Chroma server,
/// queries with texts, and checks the hits against clip-rs's own cosine similarities.
#[test]
fn chroma_round_trip_matches_in_memory_similarities() {
    let Some(chroma) = chroma_or_skip("chroma_round_trip_matches_in_memory_similarities") else {
        return;
    };
    let mut server = ChromaServer::start(chroma);
    let mut store = server.connect("clip-rs.images");
    assert_eq!(store.collection_name(), "clip-rs.images");

    let clip = clip_rs::load(model_dir("tiny-vit"), &cpu_options()).unwrap();
    let images_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/images");
    let paths: Vec<PathBuf> = IMAGES.iter().map(|name| images_dir.join(name)).collect();
    let embeddings = clip.encode_images(&paths).unwrap();
    let records: Vec<Record> = IMAGES
        .iter()
        .zip(&paths)
        .zip(embeddings.rows())
        .enumerate()
        .map(|(i, ((name, path), row))| {
            Record::new(*name, row.to_vec())
                .with_metadata("path", path.display().to_string())
                .with_metadata("index", i as i64)
                .with_metadata("weight", 0.5 + i as f64)
                .with_metadata("png", name.ends_with(".png"))
        })
        .collect();
    store.upsert(&records).unwrap();
    assert_eq!(store.count().unwrap(), IMAGES.len());

    for text in ["a photo of a cat", "a red flower", "a horse in a field"] {
        let query = clip.encode_text(text).unwrap();
        let hits = store.query(query.view(), IMAGES.len()).unwrap();
        let expected = ranked(query.view(), &embeddings);
        eprintln!("chroma: {text:?} -> {}", describe(&hits));
        eprintln!(
            "memory: {text:?} -> {}",
            expected
                .iter()
                .map(|(i, s)| format!("{} {s:.6}", IMAGES[*i]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(hits.len(), IMAGES.len(), "{text}");
        // Random weights give close scores; the top hit is only a fair check when clip-rs's
        // own ranking separates it from the second by more than float noise.
        assert!(
            expected[0].1 - expected[1].1 > 1e-4,
            "{text}: top two too close to compare"
        );
        assert_eq!(hits[0].id, IMAGES[expected[0].0], "{text}: top hit");
        for hit in &hits {
            let i = IMAGES.iter().position(|n| *n == hit.id).unwrap();
            let cosine = expected.iter().find(|(j, _)| *j == i).unwrap().1;
            assert!(
                (hit.score - cosine).abs() < 1e-5,
                "{text}: {} scored {} by Chroma, {cosine} by clip-rs",
                hit.id,
                hit.score
            );
            assert_eq!(
                hit.metadata, records[i].metadata,
                "{}: metadata round trip",
                hit.id
            );
        }
        assert!(
            hits.windows(2).all(|w| w[0].score >= w[1].score),
            "{text}: best first"
        );
    }

    // k larger than the collection, and k = 0.
    let query = clip.encode_text("a photo of a cat").unwrap();
    assert_eq!(store.query(query.view(), 100).unwrap().len(), IMAGES.len());
    assert!(store.query(query.view(), 0).unwrap().is_empty());

    // Upserting an existing id replaces its metadata without adding a record.
    let replaced = records[0].clone().with_metadata("weight", 2.0);
    store.upsert(std::slice::from_ref(&replaced)).unwrap();
    assert_eq!(store.count().unwrap(), IMAGES.len());
    let hits = store.query(embeddings.row(0), 1).unwrap();
    assert_eq!(hits[0].id, IMAGES[0]);
    assert_eq!(hits[0].metadata["weight"], MetadataValue::Float(2.0));
    assert!(
        (hits[0].score - 1.0).abs() < 1e-5,
        "self-similarity {}",
        hits[0].score
    );

    // Deletion, with an id that does not exist.
    store
        .delete(&[IMAGES[0], IMAGES[2], "never-stored"])
        .unwrap();
    assert_eq!(store.count().unwrap(), IMAGES.len() - 2);
    let remaining = store.query(query.view(), IMAGES.len()).unwrap();
    let ids: Vec<&str> = remaining.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids.len(), IMAGES.len() - 2);
    assert!(
        !ids.contains(&IMAGES[0]) && !ids.contains(&IMAGES[2]),
        "{ids:?}"
    );
    store.delete(&[]).unwrap();
    assert_eq!(store.count().unwrap(), IMAGES.len() - 2);

    // The server's refusals come back as typed errors with its explanation.
    match store.upsert(&[Record::new("short", vec![1.0, 2.0])]) {
        Err(ChromaError::Server {
            status: 400,
            message,
            ..
        }) => {
            assert!(message.contains("dimension"), "{message}");
        }
        other => panic!("expected a 400 for a wrong dimension, got {other:?}"),
    }

    // Reconnecting finds the same collection and its records; deleting it goes by its name
    // (percent-encoded: the `.` is sent as `%2E`).
    let again = server.connect("clip-rs.images");
    assert_eq!(again.collection_id(), store.collection_id());
    assert_eq!(again.count().unwrap(), IMAGES.len() - 2);
    let id = again.collection_id().to_owned();
    again.delete_collection().unwrap();
    let fresh = server.connect("clip-rs.images");
    assert_ne!(
        fresh.collection_id(),
        id,
        "the collection was deleted and made anew"
    );
    assert_eq!(fresh.count().unwrap(), 0);
}

/// A collection made by another client with L2 distance is refused, not silently scored
/// differently.
#[test]
fn chroma_refuses_a_collection_without_cosine_distance() {
    let Some(chroma) = chroma_or_skip("chroma_refuses_a_collection_without_cosine_distance") else {
        return;
    };
    let mut server = ChromaServer::start(chroma);
    // Wait for the server through our own client first.
    server.connect("clip-rs-warmup");
    // Chroma's default distance is L2: create the collection the way other clients would.
    let url = format!(
        "{}/api/v2/tenants/default_tenant/databases/default_database/collections",
        server.url
    );
    let created = ureq::post(&url)
        .send_json(serde_json::json!({"name": "made-elsewhere"}))
        .unwrap();
    assert_eq!(created.status().as_u16(), 200);
    match ChromaStore::connect(&ChromaOptions::new(&server.url, "made-elsewhere")) {
        Err(err @ ChromaError::WrongSpace { .. }) => {
            assert_eq!(
                err.to_string(),
                "Chroma collection \"made-elsewhere\" measures l2 distance; clip-rs needs cosine \
                 (use another collection name or delete this one)"
            );
        }
        other => panic!("expected WrongSpace, got {other:?}"),
    }
    match ChromaStore::connect(&ChromaOptions::new(&server.url, "x")) {
        Err(ChromaError::Server {
            status: 400,
            message,
            ..
        }) => {
            assert!(message.contains("3-512 characters"), "{message}");
        }
        other => panic!("expected a 400 for a one-letter name, got {other:?}"),
    }
}

/// No server needed: an unreachable URL is a connection error naming it.
#[test]
fn chroma_unreachable_server_is_a_connection_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    match ChromaStore::connect(&ChromaOptions::new(&url, "images")) {
        Err(err @ ChromaError::Connection { .. }) => {
            assert!(err.to_string().contains(&url), "{err}");
        }
        other => panic!("expected Connection, got {other:?}"),
    }
}

/// Indexes of the stored images with their cosine similarity to `query`, best first.
fn ranked(query: ArrayView1<'_, f32>, embeddings: &Array2<f32>) -> Vec<(usize, f32)> {
    let mut scores: Vec<(usize, f32)> = embeddings
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| (i, clip_rs::embedding::cosine(query, row)))
        .collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores
}

fn describe(hits: &[Hit]) -> String {
    hits.iter()
        .map(|h| format!("{} {:.6}", h.id, h.score))
        .collect::<Vec<_>>()
        .join(", ")
}
