//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`), once per process.
//!
//! ort panics if a session is created before a library is loaded and allows only one
//! environment per process, so the library and the environment live in a process-wide
//! `OnceLock`; the first successful [`runtime`] call wins and later calls reuse it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::OrtError;

/// Environment variable naming the ONNX Runtime library (the same name ort itself uses).
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// The loaded ONNX Runtime: where it came from and the environment all sessions share.
#[derive(Debug)]
pub struct Runtime {
    library: PathBuf,
    pub(crate) environment: ort::environment::Environment,
}

impl Runtime {
    /// The library file that was loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises first-time initialisation so two threads never race to load libraries.
static INIT: Mutex<()> = Mutex::new(());

/// Returns the process's ONNX Runtime, loading it on first use from `explicit` (if given),
/// else `$ORT_DYLIB_PATH`, else the usual places (see [`candidate_paths`]).
///
/// A process holds one ONNX Runtime: once it is loaded, an `explicit` path naming another
/// file is an error (`RuntimeLoad`) rather than silently ignored.
pub fn runtime(explicit: Option<&Path>) -> Result<&'static Runtime, OrtError> {
    if let Some(rt) = RUNTIME.get() {
        return check_same_library(rt, explicit);
    }
    // A poisoned lock only means another thread panicked while holding it; the state it
    // guards (the OnceLock) is still consistent, so carry on.
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return check_same_library(rt, explicit);
    }
    let library = locate(explicit)?;
    let builder = ort::init_from(&library).map_err(|err| OrtError::RuntimeLoad {
        path: library.clone(),
        message: err.to_string(),
    })?;
    let environment = builder
        .with_name("clip-rs")
        .build()
        .map_err(OrtError::Environment)?;
    Ok(RUNTIME.get_or_init(|| Runtime {
        library,
        environment,
    }))
}

/// The loaded runtime, unless `explicit` names another library file (compared after
/// resolving links, so a symlink to the loaded file is the same library).
fn check_same_library(
    rt: &'static Runtime,
    explicit: Option<&Path>,
) -> Result<&'static Runtime, OrtError> {
    let Some(path) = explicit else {
        return Ok(rt);
    };
    if absolute(path) == absolute(&rt.library) {
        return Ok(rt);
    }
    Err(OrtError::RuntimeLoad {
        path: path.to_owned(),
        message: format!(
            "ONNX Runtime is already loaded in this process from {} (a process can load it only once)",
            rt.library.display()
        ),
    })
}

/// Picks the library file: the explicit path, then `$ORT_DYLIB_PATH`, then the candidates.
fn locate(explicit: Option<&Path>) -> Result<PathBuf, OrtError> {
    let from_env = std::env::var_os(ORT_DYLIB_PATH).map(PathBuf::from);
    let mut searched = Vec::new();
    for (given, what) in [
        (explicit.map(Path::to_path_buf), "explicit path"),
        (from_env, ORT_DYLIB_PATH),
    ] {
        if let Some(path) = given {
            if path.is_file() {
                return Ok(absolute(&path));
            }
            // A path the user named but that does not exist is an error of its own: do not
            // silently load some other library instead.
            return Err(OrtError::RuntimeLoad {
                path,
                message: format!("the {what} does not name an existing file"),
            });
        }
    }
    for candidate in candidate_paths() {
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(candidate.display().to_string());
    }
    Err(OrtError::RuntimeNotFound {
        searched: if searched.is_empty() {
            "nowhere".into()
        } else {
            searched.join(", ")
        },
    })
}

fn absolute(path: &Path) -> PathBuf {
    // ort resolves relative paths against the executable's directory (and panics if it has
    // none); resolve against the working directory instead, as users expect.
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(target_os = "windows")]
const LIB_NAMES: &[&str] = &["onnxruntime.dll"];
#[cfg(target_os = "macos")]
const LIB_NAMES: &[&str] = &["libonnxruntime.dylib"];
#[cfg(not(any(target_os = "windows", target_os = "macos")))]
const LIB_NAMES: &[&str] = &["libonnxruntime.so", "libonnxruntime.so.1"];

/// Where the library is looked for when no path is given: next to the executable, in
/// `./.ort/` (where the README's setup puts it), in the `onnxruntime` Python package of the
/// active virtual environment, and in the system library directories.
pub fn candidate_paths() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join(".ort"));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        dirs.extend(python_package_dirs(&PathBuf::from(venv).join("lib")));
    }
    dirs.extend(
        [
            "/usr/local/lib",
            "/usr/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .map(PathBuf::from),
    );
    let mut out = Vec::new();
    for dir in dirs {
        for name in LIB_NAMES {
            out.push(dir.join(name));
        }
        // The PyPI wheel ships only the fully versioned name (libonnxruntime.so.1.32.0).
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut versioned: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("libonnxruntime.so.1.") && !n.contains("providers")
                    })
                })
                .collect();
            versioned.sort();
            out.extend(versioned.into_iter().rev());
        }
    }
    out
}

/// `lib/python3.*/site-packages/onnxruntime/capi` under a virtual environment's `lib`.
fn python_package_dirs(lib: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(lib) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python"))
        })
        .map(|p| p.join("site-packages/onnxruntime/capi"))
        .collect()
}
