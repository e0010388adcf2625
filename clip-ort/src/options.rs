//! Options for loading a model on ONNX Runtime.

use std::path::{Path, PathBuf};

use crate::device::Device;

/// How much ONNX Runtime rewrites the graph before running it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphOptimization {
    /// No rewrites.
    Disabled,
    /// Constant folding and redundant-node removal.
    Basic,
    /// Basic plus node fusions (attention, GELU, layer norm, …).
    Extended,
    /// Everything, including layout changes (ONNX Runtime's default).
    #[default]
    All,
}

/// Options for [`OrtEncoder::load`](crate::OrtEncoder::load).
///
/// ```
/// use clip_ort::{Device, OrtOptions};
/// let options = OrtOptions::new().with_device(Device::Cpu).with_intra_threads(2);
/// assert_eq!(options.device(), Device::Cpu);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OrtOptions {
    pub(crate) device: Device,
    pub(crate) intra_threads: Option<usize>,
    pub(crate) sessions: Option<usize>,
    pub(crate) optimization: GraphOptimization,
    pub(crate) library_path: Option<PathBuf>,
}

impl OrtOptions {
    /// Defaults: [`Device::Auto`], ONNX Runtime's thread count (one per physical core), one
    /// session per tower, all graph optimisations, library found automatically.
    pub fn new() -> Self {
        Self::default()
    }

    /// The device to run on.
    #[must_use]
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Threads ONNX Runtime uses inside one run (0 = its default).
    #[must_use]
    pub fn with_intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = (threads > 0).then_some(threads);
        self
    }

    /// How many sessions per tower serve concurrent callers (default 1).
    ///
    /// `Session::run` needs exclusive access, so one session runs one batch at a time; each
    /// run already uses all intra-op threads, so on a CPU more sessions help only when many
    /// threads send small requests. Each extra session costs one copy of the weights.
    #[must_use]
    pub fn with_sessions(mut self, sessions: usize) -> Self {
        self.sessions = Some(sessions.max(1));
        self
    }

    /// The graph optimisation level.
    #[must_use]
    pub fn with_optimization(mut self, level: GraphOptimization) -> Self {
        self.optimization = level;
        self
    }

    /// Loads ONNX Runtime from this file instead of searching for it.
    #[must_use]
    pub fn with_library_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.library_path = Some(path.into());
        self
    }

    /// The device asked for.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The explicit library path, if any.
    pub fn library_path(&self) -> Option<&Path> {
        self.library_path.as_deref()
    }
}
