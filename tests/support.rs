//! Shared helpers: fixture paths, loading, and the parity tolerance.

use std::path::PathBuf;

use clip_rs::{Device, OrtEncoder, OrtOptions};
use ndarray::{Array, ArrayView2, Dimension};
use ndarray_npy::{ReadNpyExt, ReadableElement};

/// `tests/data/models/<name>`.
pub fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/models")
        .join(name)
}

/// Reads a `.npy` fixture.
pub fn npy<T: ReadableElement, D: Dimension>(path: PathBuf) -> Array<T, D> {
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Array::<T, D>::read_npy(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// CPU options with two threads (CI machines have two cores).
pub fn cpu_options() -> OrtOptions {
    OrtOptions::new()
        .with_device(Device::Cpu)
        .with_intra_threads(2)
}

/// Loads a fixture model on the CPU.
pub fn load(name: &str) -> OrtEncoder {
    OrtEncoder::load(model_dir(name), &cpu_options())
        .unwrap_or_else(|e| panic!("loading {name}: {}", chain(&e)))
}

/// An error with its causes.
pub use clip_rs::error_chain as chain;

/// Asserts the parity criterion row by row: cosine ≥ `min_cosine` and
/// max |actual − reference| ≤ `rel_tol` × max |reference|.
pub fn assert_close(
    what: &str,
    actual: ArrayView2<'_, f32>,
    reference: ArrayView2<'_, f32>,
    min_cosine: f64,
    rel_tol: f32,
) {
    assert_eq!(actual.dim(), reference.dim(), "{what}: shape");
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_diff = actual
        .iter()
        .zip(reference.iter())
        .fold(0f32, |m, (a, r)| m.max((a - r).abs()));
    for (i, (a, r)) in actual.rows().into_iter().zip(reference.rows()).enumerate() {
        let cos = f64::from(clip_rs::embedding::cosine(a, r));
        assert!(
            cos >= min_cosine,
            "{what}: row {i} cosine {cos} < {min_cosine}"
        );
    }
    assert!(
        max_diff <= rel_tol * scale,
        "{what}: max abs diff {max_diff} > {rel_tol} × max |ref| {scale}"
    );
}

/// A per-test scratch directory under the system temp dir, removed when the test passes
/// and kept (for a look at what the command wrote) when it fails.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `<temp>/clip-rs-<name>-<pid>`, created empty.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("clip-rs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
