//! `Clip::from_pretrained` (feature `hub`) without a Hub: the fixture models are laid out in a
//! temporary directory exactly as the Hugging Face cache (`models--owner--name/refs/main`,
//! `snapshots/<commit>/...` linking to `blobs/...`), and the loader, offline, must give the
//! same embeddings as loading the fixture directory directly. The online path runs against a
//! small mock of the Hub's HTTP API on a loopback port (no Hub is reachable here), through
//! hf-hub's real client.

use std::path::{Path, PathBuf};

use clip_rs::hub::{HubError, HubOptions};
use clip_rs::prelude::*;

use crate::support::{chain, cpu_options, model_dir};

/// A made-up commit hash, as the Hub's 40 hex digits.
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A temporary Hugging Face cache, removed on drop (also when a test fails).
struct FakeCache {
    root: PathBuf,
}

impl FakeCache {
    fn new(test: &str) -> Self {
        let root = std::env::temp_dir().join(format!("clip-rs-hub-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Self { root }
    }

    /// Adds `repo` at `COMMIT` with `files` of the fixture model `fixture`, as hf-hub and
    /// huggingface_hub write them: content in `blobs/<hash>`, the snapshot holding relative
    /// symbolic links to it, and `refs/main` naming the commit.
    fn add(&self, repo: &str, fixture: &str, files: &[&str]) -> PathBuf {
        let repo_dir = self
            .root
            .join(format!("models--{}", repo.replace('/', "--")));
        let snapshot = repo_dir.join("snapshots").join(COMMIT);
        std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
        std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
        std::fs::write(repo_dir.join("refs/main"), COMMIT).unwrap();
        for file in files {
            let bytes = std::fs::read(model_dir(fixture).join(file)).unwrap();
            let blob = repo_dir.join("blobs").join(blob_name(&bytes));
            std::fs::write(&blob, &bytes).unwrap();
            let link = snapshot.join(file);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            link_to_blob(&blob, file, &link);
        }
        snapshot
    }

    fn options(&self) -> HubOptions {
        HubOptions::new()
            .with_cache_dir(&self.root)
            .with_offline(true)
            .with_ort_options(cpu_options())
    }
}

impl Drop for FakeCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A content hash standing in for the Hub's etag (FNV-1a; only uniqueness matters here).
fn blob_name(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}{:08x}", bytes.len())
}

/// Links `snapshot/<file>` to the blob by a relative path, as the Hub's caches do:
/// `../../blobs/<name>`, one more `../` per subfolder of `file`.
#[cfg(unix)]
fn link_to_blob(blob: &Path, file: &str, link: &Path) {
    let ups = "../".repeat(Path::new(file).components().count() + 1);
    let target = format!("{ups}blobs/{}", blob.file_name().unwrap().to_str().unwrap());
    std::os::unix::fs::symlink(&target, link).unwrap();
    assert!(link.is_file(), "{} -> {target} is dangling", link.display());
}

/// Without symbolic links huggingface_hub copies blobs into the snapshot.
#[cfg(not(unix))]
fn link_to_blob(blob: &Path, _file: &str, link: &Path) {
    std::fs::copy(blob, link).unwrap();
}

const IMAGES: [&str; 3] = ["china.jpg", "chelsea.png", "flower.jpg"];
const TEXTS: [&str; 2] = ["a photo of a cat", "a red flower in a garden"];

fn image_paths() -> Vec<PathBuf> {
    let images = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/images");
    IMAGES.iter().map(|name| images.join(name)).collect()
}

/// Loads `repo` from the fake cache and checks its embeddings equal the fixture's loaded
/// directly: same files, same runtime options, so the same numbers bit for bit.
fn assert_same_model(cache: &FakeCache, repo: &str, fixture: &str, options: &HubOptions) {
    let from_hub = Clip::from_pretrained_with(repo, options)
        .unwrap_or_else(|e| panic!("from_pretrained({repo}): {}", chain(&e)));
    let direct = clip_rs::load(model_dir(fixture), &cpu_options()).unwrap();
    assert_eq!(from_hub.config(), direct.config(), "{repo}: config");
    let images = image_paths();
    assert_eq!(
        from_hub.encode_images(&images).unwrap(),
        direct.encode_images(&images).unwrap(),
        "{repo}: image embeddings"
    );
    assert_eq!(
        from_hub.encode_texts(&TEXTS).unwrap(),
        direct.encode_texts(&TEXTS).unwrap(),
        "{repo}: text embeddings"
    );
    // And the files came from the cache's snapshot, not from anywhere else.
    let dir = clip_rs::hub::fetch(repo, options).unwrap();
    assert!(dir.starts_with(&cache.root), "{}", dir.display());
}

#[test]
fn offline_loads_our_layout_from_the_hub_cache() {
    let cache = FakeCache::new("ours");
    cache.add(
        "clip-rs-test/tiny-vit",
        "tiny-vit",
        &["clip_config.json", "visual.onnx", "textual.onnx"],
    );
    assert_same_model(
        &cache,
        "clip-rs-test/tiny-vit",
        "tiny-vit",
        &cache.options(),
    );
}

#[test]
fn offline_loads_the_transformers_js_layout_from_the_hub_cache() {
    let cache = FakeCache::new("tjs");
    cache.add(
        "Xenova-test/tiny-hf",
        "tiny-hf",
        &[
            "config.json",
            "preprocessor_config.json",
            "onnx/vision_model.onnx",
            "onnx/text_model.onnx",
        ],
    );
    assert_same_model(&cache, "Xenova-test/tiny-hf", "tiny-hf", &cache.options());
}

#[test]
fn offline_resolves_a_commit_hash_without_a_ref() {
    let cache = FakeCache::new("commit");
    let repo = "clip-rs-test/tiny-vit";
    cache.add(
        repo,
        "tiny-vit",
        &["clip_config.json", "visual.onnx", "textual.onnx"],
    );
    std::fs::remove_file(cache.root.join("models--clip-rs-test--tiny-vit/refs/main")).unwrap();
    let options = cache.options().with_revision(COMMIT);
    assert_same_model(&cache, repo, "tiny-vit", &options);
    // `main` now has no ref, and is no commit hash.
    match clip_rs::hub::fetch(repo, &cache.options()) {
        Err(HubError::NotCached {
            repo: r, revision, ..
        }) => {
            assert_eq!((r.as_str(), revision.as_str()), (repo, "main"));
        }
        other => panic!("expected NotCached, got {other:?}"),
    }
}

#[test]
fn offline_errors_name_the_repo_and_the_missing_file() {
    let cache = FakeCache::new("errors");
    match Clip::from_pretrained_with("openai/not-downloaded", &cache.options()) {
        Err(err @ HubError::NotCached { .. }) => {
            let text = err.to_string();
            assert!(text.contains("openai/not-downloaded"), "{text}");
            assert!(text.contains("offline"), "{text}");
        }
        other => panic!("expected NotCached, got {:?}", other.map(|_| ())),
    }

    // An interrupted download: the text tower never arrived.
    let snapshot = cache.add(
        "clip-rs-test/partial",
        "tiny-vit",
        &["clip_config.json", "visual.onnx"],
    );
    match Clip::from_pretrained_with("clip-rs-test/partial", &cache.options()) {
        Err(err @ HubError::MissingFile { .. }) => {
            assert_eq!(
                err.to_string(),
                format!(
                    "clip-rs-test/partial (revision main): textual.onnx is not in the cached \
                     snapshot {} and offline mode is on",
                    snapshot.display()
                )
            );
        }
        other => panic!("expected MissingFile, got {:?}", other.map(|_| ())),
    }

    // Not a model at all.
    cache.add("clip-rs-test/readme-only", "tiny-hf", &["README.md"]);
    match clip_rs::hub::fetch("clip-rs-test/readme-only", &cache.options()) {
        Err(HubError::MissingFile { file, .. }) => {
            assert_eq!(file, "clip_config.json (or config.json)");
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }

    match clip_rs::hub::fetch("../escape", &cache.options()) {
        Err(HubError::InvalidRepo { repo, .. }) => assert_eq!(repo, "../escape"),
        other => panic!("expected InvalidRepo, got {other:?}"),
    }
}

/// A loopback port nothing listens on: a Hub that cannot be reached.
fn closed_port_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn online_without_a_reachable_hub_uses_a_complete_cache_or_names_the_repo() {
    let cache = FakeCache::new("online");
    let repo = "clip-rs-test/tiny-vit";
    cache.add(
        repo,
        "tiny-vit",
        &["clip_config.json", "visual.onnx", "textual.onnx"],
    );
    let online = cache
        .options()
        .with_offline(false)
        .with_endpoint(closed_port_endpoint());
    // The cached snapshot is complete: used, as huggingface_hub does when the Hub is down.
    assert_same_model(&cache, repo, "tiny-vit", &online);

    match Clip::from_pretrained_with("clip-rs-test/elsewhere", &online) {
        Err(err @ HubError::Request { .. }) => {
            let text = chain(&err);
            assert!(
                text.starts_with("cannot list the files of clip-rs-test/elsewhere from the Hub: "),
                "{text}"
            );
        }
        other => panic!("expected Request, got {:?}", other.map(|_| ())),
    }
}

/// A Hub on a loopback port serving one repository, enough of the Hub's HTTP API for hf-hub:
/// the file listing (`/api/models/<repo>/revision/<rev>`) and file downloads
/// (`/<repo>/resolve/<commit>/<file>` with `Range`, answering with the `etag`,
/// `x-repo-commit` and `content-range` headers hf-hub reads). It records what was asked.
struct MockHub {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// One file of the mock repository.
struct MockFile {
    name: String,
    bytes: Vec<u8>,
}

impl MockHub {
    fn start(repo: &'static str, files: Vec<MockFile>) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, repo, &files, &log);
                }
            }
        });
        Self {
            url,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The files downloaded (range requests past the first byte), in order.
    fn downloads(&self) -> Vec<String> {
        let log = self.requests.lock().unwrap();
        log.iter()
            .filter_map(|r| r.strip_prefix("download "))
            .map(str::to_owned)
            .collect()
    }

    fn listings(&self) -> usize {
        let log = self.requests.lock().unwrap();
        log.iter().filter(|r| r.starts_with("list ")).count()
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one HTTP/1.1 request and closes the connection.
fn serve(
    mut stream: std::net::TcpStream,
    repo: &str,
    files: &[MockFile],
    log: &std::sync::Mutex<Vec<String>>,
) {
    use std::io::{BufRead, BufReader, Write};

    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let respond =
        |stream: &mut std::net::TcpStream, status: &str, headers: &[String], body: &[u8]| {
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for header in headers {
                head.push_str(header);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        };

    if let Some(revision) = path
        .strip_prefix(&format!("/api/models/{repo}/revision/"))
        .map(str::to_owned)
    {
        log.lock().unwrap().push(format!("list {revision}"));
        let siblings: Vec<_> = files
            .iter()
            .map(|f| serde_json::json!({ "rfilename": f.name }))
            .collect();
        let body = serde_json::json!({ "sha": COMMIT, "siblings": siblings }).to_string();
        let json = "Content-Type: application/json".to_owned();
        return respond(&mut stream, "200 OK", &[json], body.as_bytes());
    }
    let file = path
        .strip_prefix(&format!("/{repo}/resolve/{COMMIT}/"))
        .and_then(|name| files.iter().find(|f| f.name == name));
    let (Some(file), Some(range)) = (file, range) else {
        log.lock().unwrap().push(format!("404 {path}"));
        return respond(&mut stream, "404 Not Found", &[], b"");
    };
    let start: usize = range
        .strip_prefix("bytes=")
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let end = if range.ends_with('-') {
        file.bytes.len()
    } else {
        start + 1
    };
    if range != "bytes=0-0" {
        log.lock().unwrap().push(format!("download {}", file.name));
    }
    let headers = [
        format!("ETag: \"{}\"", blob_name(&file.bytes)),
        format!("X-Repo-Commit: {COMMIT}"),
        format!(
            "Content-Range: bytes {start}-{}/{}",
            end - 1,
            file.bytes.len()
        ),
    ];
    respond(
        &mut stream,
        "206 Partial Content",
        &headers,
        &file.bytes[start..end],
    );
}

/// The tiny transformers.js fixture as a Hub repository, with files clip-rs must not fetch
/// (another variant of a tower, a README) beside the ones it needs.
fn mock_transformers_js_repo() -> Vec<MockFile> {
    let fixture = model_dir("tiny-hf");
    let mut files: Vec<MockFile> = [
        "config.json",
        "preprocessor_config.json",
        "onnx/vision_model.onnx",
        "onnx/text_model.onnx",
    ]
    .iter()
    .map(|name| MockFile {
        name: (*name).to_owned(),
        bytes: std::fs::read(fixture.join(name)).unwrap(),
    })
    .collect();
    files.push(MockFile {
        name: "onnx/vision_model_quantized.onnx".into(),
        bytes: b"not needed".to_vec(),
    });
    files.push(MockFile {
        name: "README.md".into(),
        bytes: b"# tiny".to_vec(),
    });
    files
}

#[test]
fn online_downloads_only_the_layouts_files_then_works_offline() {
    let repo = "clip-rs-test/tiny-hf";
    let hub = MockHub::start(repo, mock_transformers_js_repo());
    let cache = FakeCache::new("download");
    let online = cache.options().with_offline(false).with_endpoint(&hub.url);

    assert_same_model(&cache, repo, "tiny-hf", &online);
    let mut downloaded = hub.downloads();
    downloaded.sort();
    assert_eq!(
        downloaded,
        [
            "config.json",
            "onnx/text_model.onnx",
            "onnx/vision_model.onnx",
            "preprocessor_config.json"
        ],
        "only the transformers.js layout's files, each once"
    );
    // `assert_same_model` fetched twice; the second time everything was cached.
    assert_eq!(hub.listings(), 2);

    // The download recorded refs/main, so offline mode finds the snapshot without the Hub.
    let main = cache.root.join("models--clip-rs-test--tiny-hf/refs/main");
    assert_eq!(std::fs::read_to_string(main).unwrap(), COMMIT);
    drop(hub);
    assert_same_model(&cache, repo, "tiny-hf", &cache.options());
}

#[test]
fn online_errors_name_the_repo() {
    let hub = MockHub::start("clip-rs-test/not-a-model", {
        vec![MockFile {
            name: "onnx/model.onnx".into(),
            bytes: b"x".to_vec(),
        }]
    });
    let cache = FakeCache::new("online-errors");
    let online = cache.options().with_offline(false).with_endpoint(&hub.url);
    match clip_rs::hub::fetch("clip-rs-test/not-a-model", &online) {
        Err(err @ HubError::NotAModel { .. }) => {
            let text = err.to_string();
            assert!(
                text.starts_with("clip-rs-test/not-a-model is not a CLIP model"),
                "{text}"
            );
            assert!(
                text.ends_with("; its .onnx files: onnx/model.onnx"),
                "{text}"
            );
        }
        other => panic!("expected NotAModel, got {other:?}"),
    }
    match clip_rs::hub::fetch("clip-rs-test/elsewhere", &online) {
        Err(HubError::RepoNotFound {
            repo,
            revision,
            status,
        }) => {
            assert_eq!(
                (repo.as_str(), revision.as_str(), status),
                ("clip-rs-test/elsewhere", "main", 404)
            );
        }
        other => panic!("expected RepoNotFound, got {other:?}"),
    }
    assert!(hub.downloads().is_empty());
}
