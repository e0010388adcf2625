//! `Clip::from_pretrained` (feature `hub`) without a Hub: the fixture models are laid out in a
//! temporary directory exactly as the Hugging Face cache (`models--owner--name/refs/main`,
//! `snapshots/<commit>/...` linking to `blobs/...`), and the loader, offline, must give the
//! same embeddings as loading the fixture directory directly.

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
