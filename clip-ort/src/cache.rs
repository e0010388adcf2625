//! The optimized-model cache: ONNX Runtime's optimised graph of a tower, kept on disk so
//! that later processes skip graph optimisation (`OrtOptions::with_model_cache`).
//!
//! An entry is two files in the cache directory: `<stem>-<key hash>.onnx`, the graph ONNX
//! Runtime wrote through `optimized_model_filepath`, and `<stem>-<key hash>.json`, its
//! manifest: the full key, the graph file's size and CRC-32. The manifest is renamed into
//! place last, so an entry without one (a crash mid-write) is never used. An entry is
//! served only when the manifest's key equals the key computed now and the graph file's
//! size and checksum match; anything else — missing, stale, truncated, corrupt, unreadable
//! — means a normal load. Writing the cache is best effort: it never fails a load.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::options::GraphOptimization;
use crate::runtime::Runtime;

/// Manifest format tag; bump when the entry format or what goes into the key changes.
const FORMAT: &str = "clip-rs optimized-model cache v1";

/// Models larger than this are not cached: a graph saved without external data is one
/// protobuf, which cannot exceed 2 GiB, and ONNX Runtime would fail writing it.
const MAX_MODEL_BYTES: u64 = 1_800_000_000;

/// The default cache directory: `$CLIP_RS_CACHE_DIR` if set, else `$XDG_CACHE_HOME/clip-rs/onnx`,
/// else `~/.cache/clip-rs/onnx` (`%LOCALAPPDATA%\clip-rs\onnx` on Windows); `None` when none
/// of these is known.
pub fn default_model_cache_dir() -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env("CLIP_RS_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("clip-rs").join("onnx"))
}

/// One tower's cache entry (which may or may not exist yet).
#[derive(Debug)]
pub(crate) struct Entry {
    graph: PathBuf,
    manifest: PathBuf,
    key: String,
}

/// What the manifest records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    key: String,
    size: u64,
    crc32: u32,
}

impl Entry {
    /// The entry for `model` under `dir`, or `None` when the model cannot be cached (its
    /// metadata cannot be read, or it is too large to save as one file).
    pub(crate) fn new(
        dir: &Path,
        model: &Path,
        tower: &str,
        level: GraphOptimization,
        runtime: &Runtime,
    ) -> Option<Self> {
        let meta = fs::metadata(model).ok()?;
        if meta.len() > MAX_MODEL_BYTES {
            tracing::debug!(
                "clip-ort: {} is too large for the model cache",
                model.display()
            );
            return None;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let canonical = fs::canonicalize(model).unwrap_or_else(|_| model.to_owned());
        // Everything that changes what ONNX Runtime's optimiser writes: the model file, the
        // runtime build (version and commit are in its build string), the optimisation level,
        // and the CPU (level All rewrites layouts for this CPU's vector width).
        let key = format!(
            "{FORMAT}\nmodel={}\nsize={}\nmtime_ns={modified}\ntower={tower}\nlevel={level:?}\n\
             ort={}\nlibrary={}\narch={}\ncpu={}",
            canonical.display(),
            meta.len(),
            ort::info(),
            runtime.library().display(),
            std::env::consts::ARCH,
            cpu_features(),
        );
        let stem = model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model");
        let name = format!("{stem}-{tower}-{:016x}", fnv1a(key.as_bytes()));
        Some(Self {
            graph: dir.join(format!("{name}.onnx")),
            manifest: dir.join(format!("{name}.json")),
            key,
        })
    }

    /// The cached graph file.
    pub(crate) fn graph(&self) -> &Path {
        &self.graph
    }

    /// Whether the entry exists, was written for this key, and its graph file is intact.
    pub(crate) fn is_valid(&self) -> bool {
        let Ok(text) = fs::read_to_string(&self.manifest) else {
            return false;
        };
        let Ok(manifest) = serde_json::from_str::<Manifest>(&text) else {
            tracing::warn!(
                "clip-ort: ignoring malformed cache manifest {}",
                self.manifest.display()
            );
            return false;
        };
        if manifest.key != self.key {
            return false;
        }
        match checksum(&self.graph) {
            Ok((size, crc)) if size == manifest.size && crc == manifest.crc32 => true,
            Ok(_) => {
                tracing::warn!(
                    "clip-ort: cached graph {} does not match its manifest; reloading the model",
                    self.graph.display()
                );
                false
            }
            Err(_) => false,
        }
    }

    /// A fresh temporary path in the cache directory for ONNX Runtime to write the graph to,
    /// or `None` if the directory cannot be created.
    pub(crate) fn temp_graph(&self) -> Option<PathBuf> {
        let dir = self.graph.parent()?;
        fs::create_dir_all(dir).ok()?;
        let name = self.graph.file_name()?.to_string_lossy();
        Some(dir.join(format!(".{name}.{}.tmp", std::process::id())))
    }

    /// Moves a graph ONNX Runtime just wrote at `temp` into place and writes its manifest.
    /// Best effort: on any failure the entry is left absent and the reason logged.
    pub(crate) fn store(&self, temp: &Path) {
        if let Err(err) = self.try_store(temp) {
            tracing::warn!(
                "clip-ort: cannot write the model cache {}: {err}",
                self.graph.display()
            );
            let _ = fs::remove_file(temp);
        }
    }

    fn try_store(&self, temp: &Path) -> std::io::Result<()> {
        let (size, crc32) = checksum(temp)?;
        let manifest = serde_json::to_string(&Manifest {
            key: self.key.clone(),
            size,
            crc32,
        })
        .map_err(std::io::Error::other)?;
        let manifest_temp = temp.with_extension("json.tmp");
        {
            let mut file = fs::File::create(&manifest_temp)?;
            file.write_all(manifest.as_bytes())?;
            file.sync_all()?;
        }
        // The graph first, the manifest last: a reader that finds the manifest finds the
        // graph it describes (and checks its checksum anyway).
        let _ = fs::remove_file(&self.manifest);
        fs::rename(temp, &self.graph)?;
        fs::rename(&manifest_temp, &self.manifest)
    }

    /// Deletes the entry (after it failed to load).
    pub(crate) fn remove(&self) {
        let _ = fs::remove_file(&self.manifest);
        let _ = fs::remove_file(&self.graph);
    }
}

/// Size and CRC-32 of a file, read in 1 MiB pieces (the file is about to be read by ONNX
/// Runtime, so it is usually in the page cache).
fn checksum(path: &Path) -> std::io::Result<(u64, u32)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize()))
}

/// 64-bit FNV-1a, to name entries (the full key is compared from the manifest).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The CPU's model and feature flags, as the kernel reports them (Linux), else the vector
/// extensions the standard library detects.
fn cpu_features() -> String {
    let mut out = String::new();
    if let Ok(info) = fs::read_to_string("/proc/cpuinfo") {
        for field in ["model name", "flags", "Features", "CPU part"] {
            if let Some(line) = info.lines().find(|l| l.starts_with(field)) {
                out.push_str(line.trim());
                out.push(';');
            }
        }
    }
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let detected = [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
            (
                "avx512bf16",
                std::arch::is_x86_feature_detected!("avx512bf16"),
            ),
        ];
        for (name, on) in detected {
            if on {
                out.push_str(name);
                out.push(' ');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn checksum_counts_every_byte() {
        let dir = std::env::temp_dir().join(format!("clip-ort-cache-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("f");
        fs::write(&path, vec![7u8; 3_000_000]).unwrap_or_else(|e| panic!("{e}"));
        let (size, crc) = checksum(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(size, 3_000_000);
        assert_eq!(crc, crc32fast::hash(&vec![7u8; 3_000_000]));
        let _ = fs::remove_dir_all(&dir);
    }
}
