//! Models from the Hugging Face Hub (feature `hub`): `Clip::from_pretrained("owner/repo")`.
//!
//! [`FromPretrained`] loads a model repository in either layout clip-rs reads — its own
//! (`clip_config.json`, `visual.onnx`, `textual.onnx`, as `tools/export_onnx.py` writes and
//! a repository can hold as is) or transformers.js's (`config.json`,
//! `preprocessor_config.json`, `onnx/vision_model.onnx`, `onnx/text_model.onnx`, e.g.
//! `Xenova/clip-vit-base-patch32`). Only the files that layout needs are downloaded (plus the
//! external weight files of an ONNX model over 2 GB), not the repository's other variants.
//!
//! Files are kept in the Hugging Face cache (`~/.cache/huggingface/hub`, shared with Python's
//! `huggingface_hub`), so a model is downloaded once. Online, the Hub is asked which commit
//! the revision names and files of that commit already in the cache are not downloaded again;
//! when the Hub cannot be reached the cached snapshot is used if it is complete.
//! **Offline** (`HubOptions::with_offline(true)` or `HF_HUB_OFFLINE=1`) nothing touches the
//! network: the model comes from the cache alone, and what is not there is an error naming
//! the repository and the file ([`HubError::NotCached`], [`HubError::MissingFile`]).
//!
//! ```no_run
//! use clip_rs::prelude::*;
//!
//! let clip = Clip::from_pretrained("Xenova/clip-vit-base-patch32")?;
//! let texts = clip.encode_texts(&["a photo of a cat"])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Environment
//! Read when a model is fetched, for what [`HubOptions`] leaves unset, as `huggingface_hub`
//! does: `HF_HUB_OFFLINE` (`1`, `true`, `yes` or `on` turn offline mode on), `HF_HUB_CACHE`,
//! `HF_HOME` (the cache is `$HF_HOME/hub`), `XDG_CACHE_HOME`, `HF_ENDPOINT` and `HF_TOKEN`
//! (else the token file `huggingface-cli login` writes beside the cache).

mod error;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

pub use self::error::HubError;
use crate::{Clip, OrtOptions};

/// Where and how to fetch a model: revision, cache, offline mode, and the ONNX Runtime
/// options to load it with. `HubOptions::new()` reads no environment; unset values are taken
/// from it when a model is fetched (see the [module docs](self#environment)).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct HubOptions {
    revision: Option<String>,
    cache_dir: Option<PathBuf>,
    offline: bool,
    endpoint: Option<String>,
    token: Option<String>,
    progress: bool,
    ort: OrtOptions,
}

impl HubOptions {
    /// Revision `main`, the standard cache, online unless `HF_HUB_OFFLINE` says otherwise, no
    /// progress bars, default [`OrtOptions`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A branch, tag or commit hash (default `main`).
    #[must_use]
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    /// The cache directory (the one holding `models--owner--name` folders; default
    /// `HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`).
    #[must_use]
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Whether to use only the cache, never the network. `HF_HUB_OFFLINE=1` turns offline mode
    /// on even when this is false, as in `huggingface_hub`.
    #[must_use]
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Another Hub (a mirror), e.g. `https://hf-mirror.example` (default `HF_ENDPOINT` or
    /// `https://huggingface.co`).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// An access token for private or gated repositories (default `HF_TOKEN`, else the token
    /// file of `huggingface-cli login`).
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Whether to draw download progress bars on stderr (default false).
    #[must_use]
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// How to load the model on ONNX Runtime (device, threads, library path).
    #[must_use]
    pub fn with_ort_options(mut self, ort: OrtOptions) -> Self {
        self.ort = ort;
        self
    }

    /// The ONNX Runtime options.
    pub fn ort_options(&self) -> &OrtOptions {
        &self.ort
    }
}

/// Loading a model by its Hugging Face repository id. Implemented for [`Clip`]; bring it in
/// scope with `use clip_rs::prelude::*` (or `use clip_rs::hub::FromPretrained`).
///
/// ```no_run
/// use clip_rs::hub::HubOptions;
/// use clip_rs::prelude::*;
///
/// // A model downloaded before, on a machine without network access.
/// let options = HubOptions::new().with_offline(true).with_cache_dir("/data/hf-cache");
/// let clip = Clip::from_pretrained_with("Xenova/clip-vit-base-patch32", &options)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait FromPretrained: Sized {
    /// Loads `repo` (`owner/name`) at revision `main` with default options.
    fn from_pretrained(repo: &str) -> Result<Self, HubError> {
        Self::from_pretrained_with(repo, &HubOptions::new())
    }

    /// Loads `repo` with these options.
    fn from_pretrained_with(repo: &str, options: &HubOptions) -> Result<Self, HubError>;
}

impl FromPretrained for Clip {
    fn from_pretrained_with(repo: &str, options: &HubOptions) -> Result<Self, HubError> {
        let dir = fetch(repo, options)?;
        crate::load(&dir, &options.ort).map_err(|source| HubError::Load {
            repo: repo.to_owned(),
            dir,
            source,
        })
    }
}

/// Makes the model files of `repo` available locally (downloading what the cache lacks,
/// unless offline) and returns the snapshot directory holding them, ready for
/// [`crate::load`].
pub fn fetch(repo: &str, options: &HubOptions) -> Result<PathBuf, HubError> {
    let settings = Settings::resolve(options, &|name| std::env::var(name).ok())?;
    check_repo_id(repo)?;
    let revision = options.revision.as_deref().unwrap_or("main");
    check_revision(revision)?;
    if settings.offline {
        cached_snapshot(repo, revision, &settings.cache_dir)
    } else {
        download(repo, revision, &settings)
    }
}

/// The options with the environment filled in.
#[derive(Debug, PartialEq)]
struct Settings {
    /// Absolute: hf-hub links snapshot files to blobs by relative paths computed from
    /// absolute ones (and asserts that they are).
    cache_dir: PathBuf,
    offline: bool,
    endpoint: Option<String>,
    token: Option<String>,
    progress: bool,
}

impl Settings {
    /// `env` looks up an environment variable (a parameter so tests need not set any).
    fn resolve(
        options: &HubOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, HubError> {
        let set = |name: &str| env(name).filter(|value| !value.is_empty());
        let cache_dir = options
            .cache_dir
            .clone()
            .or_else(|| set("HF_HUB_CACHE").map(PathBuf::from))
            .or_else(|| set("HF_HOME").map(|home| Path::new(&home).join("hub")))
            .or_else(|| {
                set("XDG_CACHE_HOME").map(|cache| Path::new(&cache).join("huggingface/hub"))
            })
            .or_else(|| {
                set("HOME")
                    .or_else(|| set("USERPROFILE"))
                    .map(|home| Path::new(&home).join(".cache/huggingface/hub"))
            })
            .ok_or(HubError::NoCacheDir)?;
        let cache_dir = std::path::absolute(&cache_dir).map_err(|source| HubError::Cache {
            path: cache_dir,
            source,
        })?;
        // huggingface_hub's truth values.
        let env_offline = set("HF_HUB_OFFLINE").is_some_and(|v| {
            ["1", "ON", "YES", "TRUE"].contains(&v.trim().to_uppercase().as_str())
        });
        Ok(Self {
            cache_dir,
            offline: options.offline || env_offline,
            endpoint: options.endpoint.clone().or_else(|| set("HF_ENDPOINT")),
            token: options.token.clone().or_else(|| set("HF_TOKEN")),
            progress: options.progress,
        })
    }
}

/// The files one layout ([`crate::Layout`]) needs, relative to the repository root.
struct LayoutFiles {
    /// Its first file identifies the layout.
    required: &'static [&'static str],
    /// Read when present (the loader falls back to CLIP's standard 224 px and OpenAI's
    /// mean and std without it).
    optional: &'static [&'static str],
}

const LAYOUTS: [LayoutFiles; 2] = [
    LayoutFiles {
        required: &["clip_config.json", "visual.onnx", "textual.onnx"],
        optional: &[],
    },
    LayoutFiles {
        required: &[
            "config.json",
            "onnx/vision_model.onnx",
            "onnx/text_model.onnx",
        ],
        optional: &["preprocessor_config.json"],
    },
];

/// The layout whose identifying file `has` (ours first, as [`crate::OrtEncoder::load`]).
fn layout_of(has: &dyn Fn(&str) -> bool) -> Option<&'static LayoutFiles> {
    LAYOUTS.iter().find(|files| has(files.required[0]))
}

impl LayoutFiles {
    fn onnx(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.required
            .iter()
            .copied()
            .filter(|f| f.ends_with(".onnx"))
    }
}

/// Offline: the snapshot the cache holds for `revision`, checked to have the model's files.
fn cached_snapshot(repo: &str, revision: &str, cache_dir: &Path) -> Result<PathBuf, HubError> {
    let model = Repo::with_revision(repo.to_owned(), RepoType::Model, revision.to_owned());
    let repo_dir = cache_dir.join(model.folder_name());
    let not_cached = || HubError::NotCached {
        repo: repo.to_owned(),
        revision: revision.to_owned(),
        cache_dir: cache_dir.to_owned(),
    };
    // A branch or tag is a file under refs/ naming the commit; a commit hash names its
    // snapshot directly (huggingface_hub writes no ref for it).
    let commit = match std::fs::read_to_string(repo_dir.join("refs").join(revision)) {
        Ok(commit) => commit.trim().to_owned(),
        Err(_) if is_commit_hash(revision) => revision.to_owned(),
        Err(_) => return Err(not_cached()),
    };
    let snapshot = Cache::new(cache_dir.to_owned())
        .repo(model)
        .pointer_path(&commit);
    if commit.is_empty() || !snapshot.is_dir() {
        return Err(not_cached());
    }
    let missing = |file: &str| HubError::MissingFile {
        repo: repo.to_owned(),
        revision: revision.to_owned(),
        file: file.to_owned(),
        snapshot: snapshot.clone(),
    };
    let has = |file: &str| snapshot.join(file).is_file();
    let files = layout_of(&has).ok_or_else(|| missing("clip_config.json (or config.json)"))?;
    if let Some(file) = files.required.iter().find(|f| !has(f)) {
        return Err(missing(file));
    }
    Ok(snapshot)
}

/// Online: lists the repository at `revision`, downloads the files of its layout that the
/// cache lacks for that commit, records the commit as `refs/<revision>` (so offline mode finds
/// it later) and returns the snapshot directory.
fn download(repo: &str, revision: &str, settings: &Settings) -> Result<PathBuf, HubError> {
    let request_error = |action: String, err: ApiError| HubError::Request {
        repo: repo.to_owned(),
        action,
        source: Box::new(err),
    };
    let mut builder = ApiBuilder::from_cache(Cache::new(settings.cache_dir.clone()))
        .with_progress(settings.progress);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_owned());
    }
    if let Some(token) = &settings.token {
        builder = builder.with_token(Some(token.clone()));
    }
    let api = builder
        .build()
        .map_err(|err| request_error("set up the HTTP client".into(), err))?;

    let model =
        |revision: &str| Repo::with_revision(repo.to_owned(), RepoType::Model, revision.to_owned());
    let info = match api.repo(model(revision)).info() {
        Ok(info) => info,
        Err(err) => {
            if let ApiError::RequestError(inner) = &err {
                if let ureq::Error::StatusCode(status @ (401 | 404)) = inner.as_ref() {
                    return Err(HubError::RepoNotFound {
                        repo: repo.to_owned(),
                        revision: revision.to_owned(),
                        status: *status,
                    });
                }
            }
            // The Hub is unreachable or failing: use the cached snapshot if there is a
            // complete one, as huggingface_hub does; else the network error is the one to
            // report.
            return cached_snapshot(repo, revision, &settings.cache_dir)
                .map_err(|_| request_error("list the files".into(), err));
        }
    };
    check_revision(&info.sha)?;
    let listed: BTreeSet<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    let not_a_model = |found: String| HubError::NotAModel {
        repo: repo.to_owned(),
        found,
    };
    let files = layout_of(&|f| listed.contains(f)).ok_or_else(|| {
        let onnx: Vec<&str> = listed
            .iter()
            .copied()
            .filter(|f| f.ends_with(".onnx"))
            .collect();
        not_a_model(if onnx.is_empty() {
            "; it has no .onnx file".into()
        } else {
            format!("; its .onnx files: {}", onnx.join(", "))
        })
    })?;
    if let Some(file) = files.required.iter().find(|f| !listed.contains(*f)) {
        return Err(not_a_model(format!(
            "; it has {} but no {file}",
            files.required[0]
        )));
    }
    let mut wanted: Vec<&str> = files.required.to_vec();
    wanted.extend(files.optional.iter().filter(|f| listed.contains(*f)));
    // Weights of ONNX models over 2 GB live beside them: `<model>.onnx_data` (transformers.js,
    // optimum) or `<model>.onnx.data` (torch.onnx), possibly split in numbered parts.
    for onnx in files.onnx() {
        let data = [format!("{onnx}_data"), format!("{onnx}.data")];
        wanted.extend(
            listed
                .iter()
                .filter(|f| data.iter().any(|d| f.starts_with(d.as_str()))),
        );
    }

    // Download by commit, not by revision: a branch that moves mid-way cannot mix commits.
    let pinned = api.repo(model(&info.sha));
    let cache = Cache::new(settings.cache_dir.clone()).repo(model(revision));
    let snapshot = cache.pointer_path(&info.sha);
    for file in wanted {
        if !snapshot.join(file).is_file() {
            pinned
                .download(file)
                .map_err(|err| request_error(format!("download {file}"), err))?;
        }
    }
    if revision != info.sha {
        cache
            .create_ref(&info.sha)
            .map_err(|source| HubError::Cache {
                path: settings
                    .cache_dir
                    .join(model(revision).folder_name())
                    .join("refs")
                    .join(revision),
                source,
            })?;
    }
    Ok(snapshot)
}

fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Hub's rule for repository ids (`huggingface_hub.utils.validate_repo_id`): `name` or
/// `owner/name`, each part of letters, digits, `-`, `_` and `.`, without `--` or `..`, at
/// most 96 characters. It also keeps ids from naming paths outside the cache.
fn check_repo_id(repo: &str) -> Result<(), HubError> {
    let invalid = |reason| {
        Err(HubError::InvalidRepo {
            repo: repo.to_owned(),
            reason,
        })
    };
    if repo.is_empty() || repo.len() > 96 {
        return invalid("it must have 1 to 96 characters");
    }
    if repo.split('/').count() > 2 || repo.split('/').any(str::is_empty) {
        return invalid("it must be `name` or `owner/name`");
    }
    if !repo
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
    {
        return invalid("only letters, digits, `-`, `_`, `.` and one `/` are allowed");
    }
    if repo.contains("--") || repo.contains("..") {
        return invalid("`--` and `..` are not allowed");
    }
    if repo
        .split('/')
        .any(|part| part.starts_with(['-', '.']) || part.ends_with(['-', '.']))
    {
        return invalid("a part cannot start or end with `-` or `.`");
    }
    Ok(())
}

/// Revisions become paths in the cache (`refs/<revision>`, `snapshots/<commit>`): refuse
/// those that would leave it.
fn check_revision(revision: &str) -> Result<(), HubError> {
    let bad = revision.is_empty()
        || revision.starts_with('/')
        || revision.contains('\\')
        || revision
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(HubError::InvalidRepo {
            repo: revision.to_owned(),
            reason: "not a valid revision (a branch, tag or commit hash)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(options: &HubOptions, vars: &[(&str, &str)]) -> Result<Settings, HubError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::resolve(options, &|name| vars.get(name).cloned())
    }

    #[test]
    fn cache_dir_follows_huggingface_hub_precedence() {
        let dir = |options: &HubOptions, vars: &[(&str, &str)]| {
            resolve(options, vars).map(|s| s.cache_dir).ok()
        };
        let all = [
            ("HF_HUB_CACHE", "/c"),
            ("HF_HOME", "/h"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/home/u"),
        ];
        let given = HubOptions::new().with_cache_dir("/given");
        assert_eq!(dir(&given, &all), Some(PathBuf::from("/given")));
        assert_eq!(dir(&HubOptions::new(), &all), Some(PathBuf::from("/c")));
        assert_eq!(
            dir(&HubOptions::new(), &all[1..]),
            Some(PathBuf::from("/h/hub"))
        );
        assert_eq!(
            dir(&HubOptions::new(), &all[2..]),
            Some(PathBuf::from("/x/huggingface/hub"))
        );
        assert_eq!(
            dir(&HubOptions::new(), &all[3..]),
            Some(PathBuf::from("/home/u/.cache/huggingface/hub"))
        );
        assert!(matches!(
            resolve(&HubOptions::new(), &[]),
            Err(HubError::NoCacheDir)
        ));
        // A relative cache dir is made absolute (hf-hub needs it so).
        let relative = dir(&HubOptions::new().with_cache_dir("rel/cache"), &[]);
        assert!(relative.is_some_and(|p| p.is_absolute() && p.ends_with("rel/cache")));
    }

    #[test]
    fn offline_mode_is_the_option_or_hf_hub_offline() {
        let offline = |options: &HubOptions, value: Option<&str>| {
            let mut vars = vec![("HOME", "/h")];
            vars.extend(value.map(|v| ("HF_HUB_OFFLINE", v)));
            resolve(options, &vars).map(|s| s.offline).ok()
        };
        let online = HubOptions::new();
        assert_eq!(offline(&online, None), Some(false));
        for on in ["1", "true", "YES", "On"] {
            assert_eq!(offline(&online, Some(on)), Some(true), "{on}");
        }
        for off in ["0", "false", "", "no"] {
            assert_eq!(offline(&online, Some(off)), Some(false), "{off}");
        }
        assert_eq!(
            offline(&HubOptions::new().with_offline(true), Some("0")),
            Some(true)
        );
    }

    #[test]
    fn endpoint_and_token_come_from_options_then_environment() {
        let vars = [
            ("HOME", "/h"),
            ("HF_ENDPOINT", "https://mirror"),
            ("HF_TOKEN", "t-env"),
        ];
        let from_env = resolve(&HubOptions::new(), &vars).ok();
        assert_eq!(
            from_env
                .as_ref()
                .map(|s| (s.endpoint.as_deref(), s.token.as_deref())),
            Some((Some("https://mirror"), Some("t-env")))
        );
        let given = HubOptions::new()
            .with_endpoint("https://other")
            .with_token("t-opt");
        let from_options = resolve(&given, &vars).ok();
        assert_eq!(
            from_options
                .as_ref()
                .map(|s| (s.endpoint.as_deref(), s.token.as_deref())),
            Some((Some("https://other"), Some("t-opt")))
        );
    }

    #[test]
    fn repo_ids_follow_the_hubs_rules() {
        for ok in [
            "openai/clip-vit-base-patch32",
            "Xenova/clip-vit-base-patch32",
            "gpt2",
            "a.b/c_d",
        ] {
            assert!(check_repo_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a/b/c", "/a", "a/", "../x", "a/..", "a--b/c", "a b/c", "a/-b", "a\\b",
        ] {
            assert!(
                matches!(check_repo_id(bad), Err(HubError::InvalidRepo { ref repo, .. }) if repo == bad),
                "{bad:?}"
            );
        }
        for ok in [
            "main",
            "v1.0",
            "refs/pr/1",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(check_revision(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../main", "a/../../b", "/abs", "a//b", "a\\b"] {
            assert!(check_revision(bad).is_err(), "{bad:?}");
        }
    }
}
