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
    pub(crate) eager: bool,
    pub(crate) spinning: Option<bool>,
    pub(crate) model_cache: Option<PathBuf>,
    pub(crate) memory_pattern: bool,
}

impl OrtOptions {
    /// Defaults: [`Device::Auto`], ONNX Runtime's thread count (one per physical core), one
    /// session per tower, all graph optimisations, library found automatically, each tower
    /// created on first use, ONNX Runtime's default thread spinning, no optimized-model
    /// cache, no memory pattern (unlike ONNX Runtime's default, see
    /// [`with_memory_pattern`](Self::with_memory_pattern)).
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

    /// Loads ONNX Runtime from this file instead of searching for it. A process loads
    /// ONNX Runtime once, with the first encoder: a later encoder naming another file
    /// fails to load with [`OrtError::RuntimeLoad`](crate::OrtError::RuntimeLoad) (the
    /// same file, or no path, is fine).
    #[must_use]
    pub fn with_library_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.library_path = Some(path.into());
        self
    }

    /// Whether [`OrtEncoder::load`](crate::OrtEncoder::load) creates both towers' sessions
    /// at once (default: false, each tower is created on first use).
    ///
    /// Creating a tower's sessions reads its weights and optimises its graph (~0.5–1.5 s
    /// and a few hundred MB for ViT-B/32), so a program that only embeds images never pays
    /// for the text tower. The price of the default is *when* a broken tower file is
    /// reported: at load only the layout, configuration and device are checked, and a
    /// corrupt ONNX file or a graph that is not a CLIP tower fails the first call that
    /// needs that tower (as [`clip_core::Error::Backend`] holding the [`OrtError`](crate::OrtError)),
    /// or [`OrtEncoder::load_image_tower`](crate::OrtEncoder::load_image_tower) /
    /// [`load_text_tower`](crate::OrtEncoder::load_text_tower) when called up front. With
    /// `eager = true` every such error comes from `load` itself.
    #[must_use]
    pub fn with_eager_loading(mut self, eager: bool) -> Self {
        self.eager = eager;
        self
    }

    /// Whether ONNX Runtime's intra-op worker threads spin (busy-wait) for work between and
    /// inside runs (`session.intra_op.allow_spinning`; default: ONNX Runtime's, which spins).
    ///
    /// Spinning shaves a little latency off back-to-back runs on an otherwise idle machine,
    /// but the spinning workers keep the cores busy after each run: anything else that wants
    /// those cores — image decoding beside the model, the tokenizer, another process —
    /// competes with them. Turn it off (`false`) when the program does other CPU work
    /// between or beside runs (docs/performance.md, proposal 4: image batch 1 at 2 threads
    /// on a loaded machine 228 → 131 ms). Results do not change.
    #[must_use]
    pub fn with_spinning(mut self, spinning: bool) -> Self {
        self.spinning = Some(spinning);
        self
    }

    /// Keeps ONNX Runtime's optimised graph of each tower in `dir` and loads it from there
    /// next time, skipping graph optimisation. Off by default;
    /// [`default_model_cache_dir`](crate::default_model_cache_dir) is a sensible place.
    ///
    /// Whether it pays depends on the model and machine: for ViT-B/32 on a 2-core x86 VM
    /// (docs/performance.md, proposal 5) creating the image session went from 0.65–1.3 s to
    /// 0.56–0.67 s, but checksumming the cached graph ate most of that and peak RSS rose by
    /// ~100–190 MiB, so whole processes were not faster. Measure before turning it on.
    ///
    /// An entry is used only if it was written for the same model file (path, size and
    /// modification time), the same ONNX Runtime build, the same CPU features, the same
    /// optimisation level, on the CPU provider, and its own size and checksum are intact;
    /// otherwise the model is loaded normally and the entry rewritten. A cache that cannot
    /// be read or written never fails a load: it only costs the normal load time. The
    /// optimised graph computes the same results (it *is* the graph ONNX Runtime would run).
    #[must_use]
    pub fn with_model_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.model_cache = Some(dir.into());
        self
    }

    /// Whether ONNX Runtime plans and pre-allocates one block for all of a run's
    /// intermediate tensors per input shape (`enable_mem_pattern`). Default: **off** in
    /// clip-rs (ONNX Runtime's own default is on).
    ///
    /// Measured for ViT-B/32 on a 2-core x86 VM (docs/performance.md, "Memory pattern"):
    /// embedding 200 camera JPEGs at batch 32 peaked at 593–603 MiB without it against
    /// 696–705 MiB with it (the planned blocks of each batch shape stay allocated beside
    /// the arena), while image batch 32, image batch 1 and text encoding ran at the same
    /// speed (paired medians within ±6 %, noise here). Results do not change.
    #[must_use]
    pub fn with_memory_pattern(mut self, enable: bool) -> Self {
        self.memory_pattern = enable;
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
