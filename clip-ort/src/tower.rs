//! One tower (image or text) of a CLIP model: its sessions, its signature, running it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use half::f16;
use ndarray::{Array2, ArrayView2, ArrayView4, Ix2};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, TensorRef, ValueType};

use crate::cache;
use crate::device::{self, Provider};
use crate::error::OrtError;
use crate::options::{GraphOptimization, OrtOptions};
use crate::runtime::Runtime;

/// Which tower; used in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Text,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Text => "text",
        }
    }
}

/// The element types a tower may declare for its main input or output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    I64,
    I32,
}

/// What a tower's graph declares, checked once at load.
#[derive(Debug)]
struct Signature {
    input: String,
    input_elem: Elem,
    /// Declared input shape (-1 for dynamic dimensions).
    input_shape: Vec<i64>,
    /// An `attention_mask` input (Hugging Face text models), fed with 1s up to each row's EOT.
    attention_mask: Option<(String, Elem)>,
    output: String,
    output_elem: Elem,
    /// Declared output shape (-1 for dynamic dimensions).
    output_shape: Vec<i64>,
}

/// A pool of sessions over one model file: `Session::run` needs `&mut`, so each session sits
/// in a `Mutex` and a call takes the first free one (round-robin start), waiting only when
/// all are busy.
pub(crate) struct Tower {
    kind: Kind,
    path: PathBuf,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    signature: Signature,
    provider: Provider,
}

impl std::fmt::Debug for Tower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tower")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("sessions", &self.sessions.len())
            .field("signature", &self.signature)
            .field("provider", &self.provider)
            .finish()
    }
}

fn elem_of(ty: &TensorElementType) -> Option<Elem> {
    match ty {
        TensorElementType::Float32 => Some(Elem::F32),
        TensorElementType::Float16 => Some(Elem::F16),
        TensorElementType::Int64 => Some(Elem::I64),
        TensorElementType::Int32 => Some(Elem::I32),
        _ => None,
    }
}

impl Tower {
    /// Creates the tower's sessions on `provider` (resolved once per encoder) and checks
    /// its signature. With a model cache, a valid entry is loaded instead of the model
    /// file; a missing, stale or broken one means a normal load that (re)writes it.
    pub(crate) fn load(
        runtime: &Runtime,
        kind: Kind,
        path: &Path,
        options: &OrtOptions,
        provider: Provider,
    ) -> Result<Self, OrtError> {
        // Only the CPU provider's optimised graph is cached: GPU providers partition and
        // rewrite the graph themselves at every load.
        let entry = match (&options.model_cache, provider) {
            (Some(dir), Provider::Cpu) => {
                cache::Entry::new(dir, path, kind.name(), options.optimization, runtime)
            }
            _ => None,
        };
        if let Some(entry) = entry.as_ref().filter(|e| e.is_valid()) {
            match Self::load_sessions(
                runtime,
                kind,
                path,
                Source::Cached(entry.graph()),
                options,
                provider,
            ) {
                Ok(tower) => {
                    tracing::debug!(
                        "clip-ort: {} tower from cache {}",
                        kind.name(),
                        entry.graph().display()
                    );
                    return Ok(tower);
                }
                Err(err) => {
                    tracing::warn!(
                        "clip-ort: cached graph {} failed to load ({err}); loading {}",
                        entry.graph().display(),
                        path.display()
                    );
                    entry.remove();
                }
            }
        }
        if let Some((entry, temp)) = entry.as_ref().and_then(|e| Some((e, e.temp_graph()?))) {
            match Self::load_sessions(
                runtime,
                kind,
                path,
                Source::Saving(&temp),
                options,
                provider,
            ) {
                Ok(tower) => {
                    entry.store(&temp);
                    return Ok(tower);
                }
                Err(err) => {
                    // Saving the optimised graph can itself fail (disk full, a graph ONNX
                    // Runtime cannot serialise): load once more without it, which reports
                    // the model's own error if it has one.
                    tracing::debug!("clip-ort: load while writing the cache failed: {err}");
                    let _ = std::fs::remove_file(&temp);
                }
            }
        }
        Self::load_sessions(runtime, kind, path, Source::Model, options, provider)
    }

    fn load_sessions(
        runtime: &Runtime,
        kind: Kind,
        path: &Path,
        source: Source<'_>,
        options: &OrtOptions,
        provider: Provider,
    ) -> Result<Self, OrtError> {
        let count = options.sessions.unwrap_or(1);
        let mut sessions = Vec::with_capacity(count);
        for i in 0..count {
            // Only the first session writes the cache; the others need not optimise twice,
            // but they do (ONNX Runtime has no way to share one optimised graph in memory).
            let source = match source {
                Source::Saving(_) if i > 0 => Source::Model,
                other => other,
            };
            sessions.push(open_session(runtime, path, source, options, provider)?);
        }
        // `count >= 1`, so there is a first session.
        let first = sessions.first().ok_or_else(|| OrtError::ModelSignature {
            path: path.to_owned(),
            tower: kind.name(),
            reason: "no session could be created".into(),
        })?;
        let signature = read_signature(kind, path, first)?;
        Ok(Self {
            kind,
            path: path.to_owned(),
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            signature,
            provider,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The declared input dimension `axis`, if fixed.
    pub(crate) fn fixed_input_dim(&self, axis: usize) -> Option<usize> {
        fixed(&self.signature.input_shape, axis)
    }

    /// The declared output dimension `axis`, if fixed.
    pub(crate) fn fixed_output_dim(&self, axis: usize) -> Option<usize> {
        fixed(&self.signature.output_shape, axis)
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(guard) = self.sessions[(start + i) % n].try_lock() {
                return guard;
            }
        }
        // All busy: wait for ours. A poisoned mutex only means a caller panicked mid-run;
        // ONNX Runtime sessions keep no state between runs, so the session is still usable.
        self.sessions[start]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run_error(&self, source: ort::Error) -> OrtError {
        OrtError::Run {
            tower: self.kind.name(),
            path: self.path.clone(),
            source,
        }
    }

    /// Runs the image tower on `[N, 3, S, S]`.
    pub(crate) fn run_image(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>, OrtError> {
        let pixels = pixels.as_standard_layout();
        match self.signature.input_elem {
            Elem::F16 => {
                let half = pixels.mapv(f16::from_f32);
                let value = TensorRef::from_array_view(&half).map_err(|e| self.run_error(e))?;
                self.run(vec![(self.signature.input.clone(), value.into())])
            }
            _ => {
                let value = TensorRef::from_array_view(&pixels).map_err(|e| self.run_error(e))?;
                self.run(vec![(self.signature.input.clone(), value.into())])
            }
        }
    }

    /// Runs the text tower on token ids `[N, L]` (already trimmed or padded to the width the
    /// model accepts).
    pub(crate) fn run_text(
        &self,
        ids: ArrayView2<'_, i32>,
        eot: &[usize],
    ) -> Result<Array2<f32>, OrtError> {
        let mut inputs = vec![(
            self.signature.input.clone(),
            self.int_tensor(ids.mapv(i64::from), self.signature.input_elem)?,
        )];
        if let Some((name, elem)) = &self.signature.attention_mask {
            let mask = Array2::from_shape_fn(ids.dim(), |(row, col)| i64::from(col <= eot[row]));
            inputs.push((name.clone(), self.int_tensor(mask, *elem)?));
        }
        self.run(inputs)
    }

    /// An integer input in the element type the graph declares (int64 or int32).
    fn int_tensor(
        &self,
        values: Array2<i64>,
        elem: Elem,
    ) -> Result<SessionInputValue<'static>, OrtError> {
        let value = match elem {
            // Token ids and mask values are far below i32::MAX: the cast is exact.
            Elem::I32 => Tensor::from_array(values.mapv(|v| v as i32)).map(SessionInputValue::from),
            _ => Tensor::from_array(values).map(SessionInputValue::from),
        };
        value.map_err(|e| self.run_error(e))
    }

    fn run(&self, inputs: Vec<(String, SessionInputValue<'_>)>) -> Result<Array2<f32>, OrtError> {
        let mut session = self.session();
        let outputs = session.run(inputs).map_err(|e| self.run_error(e))?;
        let value =
            outputs
                .get(self.signature.output.as_str())
                .ok_or_else(|| OrtError::BadOutput {
                    tower: self.kind.name(),
                    reason: format!("no output named {:?}", self.signature.output),
                })?;
        let array = match self.signature.output_elem {
            Elem::F16 => value
                .try_extract_array::<f16>()
                .map(|a| a.mapv(f16::to_f32))
                .map_err(|e| self.run_error(e))?,
            _ => value
                .try_extract_array::<f32>()
                .map(|a| a.to_owned())
                .map_err(|e| self.run_error(e))?,
        };
        let shape = array.shape().to_vec();
        array
            .into_dimensionality::<Ix2>()
            .map_err(|_| OrtError::BadOutput {
                tower: self.kind.name(),
                reason: format!("an output of shape {shape:?}, expected [batch, embed_dim]"),
            })
    }
}

/// Where a session's graph comes from.
#[derive(Clone, Copy, Debug)]
enum Source<'a> {
    /// The model file, optimised at load.
    Model,
    /// The model file, optimised at load, and the optimised graph written to this file.
    Saving(&'a Path),
    /// An optimised graph from the cache, loaded without optimising again.
    Cached(&'a Path),
}

fn open_session(
    runtime: &Runtime,
    path: &Path,
    source: Source<'_>,
    options: &OrtOptions,
    provider: Provider,
) -> Result<Session, OrtError> {
    let session_error = |source: ort::Error| OrtError::Session {
        path: path.to_owned(),
        source,
    };
    let level = match (source, options.optimization) {
        // The cached graph is already optimised at the level its key records.
        (Source::Cached(_), _) | (_, GraphOptimization::Disabled) => {
            GraphOptimizationLevel::Disable
        }
        (_, GraphOptimization::Basic) => GraphOptimizationLevel::Level1,
        (_, GraphOptimization::Extended) => GraphOptimizationLevel::Level2,
        (_, GraphOptimization::All) => GraphOptimizationLevel::All,
    };
    let mut builder = Session::builder(&runtime.environment)
        .map_err(session_error)?
        .with_optimization_level(level)
        .map_err(|e| session_error(e.into()))?
        .with_memory_pattern(options.memory_pattern)
        .map_err(|e| session_error(e.into()))?;
    if let Some(threads) = options.intra_threads {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| session_error(e.into()))?;
    }
    if let Some(spinning) = options.spinning {
        builder = builder
            .with_intra_op_spinning(spinning)
            .map_err(|e| session_error(e.into()))?;
    }
    if let Source::Saving(temp) = source {
        builder = builder
            .with_optimized_model_path(temp)
            .map_err(|e| session_error(e.into()))?;
    }
    device::bind_resolved(provider, &mut builder)?;
    let file = match source {
        Source::Cached(graph) => graph,
        Source::Model | Source::Saving(_) => path,
    };
    // Check the file first, so a missing or unreadable one gives an I/O message naming it
    // rather than ONNX Runtime's less specific one. Then let ONNX Runtime read it itself:
    // reading it into memory first would hold a second copy of the weights while the
    // session is created (ViT-B/32 peak RSS 1530 → 888 MiB, measured through onnxruntime's
    // Python API: docs/performance-ort.json), and ONNX files with external weight files
    // only load from a path.
    std::fs::File::open(file).map_err(|err| session_error(ort::Error::new(err.to_string())))?;
    builder.commit_from_file(file).map_err(session_error)
}

fn read_signature(kind: Kind, path: &Path, session: &Session) -> Result<Signature, OrtError> {
    let mismatch = |reason: String| OrtError::ModelSignature {
        path: path.to_owned(),
        tower: kind.name(),
        reason,
    };
    let describe = |outlets: &[ort::value::Outlet]| {
        outlets
            .iter()
            .map(|o| format!("{} {:?}", o.name(), o.dtype()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tensor = |outlet: &ort::value::Outlet| match outlet.dtype() {
        ValueType::Tensor { ty, shape, .. } => Some((elem_of(ty), shape.to_vec())),
        _ => None,
    };
    // The names of tools/export_onnx.py, Hugging Face, transformers.js and fastembed
    // exports. Other names are refused rather than guessed: a graph whose only input is
    // called something else may well not be a CLIP tower.
    let (wanted_input, wanted_output, input_elems, rank): (&str, &str, &[Elem], usize) = match kind
    {
        Kind::Image => ("pixel_values", "image_embeds", &[Elem::F32, Elem::F16], 4),
        Kind::Text => ("input_ids", "text_embeds", &[Elem::I64, Elem::I32], 2),
    };
    let inputs = session.inputs();
    let main = inputs
        .iter()
        .find(|o| o.name() == wanted_input)
        .ok_or_else(|| {
            mismatch(format!(
                "expected an input named {wanted_input:?}, found: {}",
                describe(inputs)
            ))
        })?;
    let (elem, input_shape) =
        tensor(main).ok_or_else(|| mismatch(format!("input {} is not a tensor", main.name())))?;
    let input_elem = elem.filter(|e| input_elems.contains(e)).ok_or_else(|| {
        mismatch(format!(
            "input {} has type {:?}, expected one of {input_elems:?}",
            main.name(),
            main.dtype()
        ))
    })?;
    if input_shape.len() != rank {
        return Err(mismatch(format!(
            "input {} has rank {}, expected {rank}",
            main.name(),
            input_shape.len()
        )));
    }
    let mut attention_mask = None;
    for other in inputs.iter().filter(|o| o.name() != main.name()) {
        match (kind, other.name(), tensor(other)) {
            (Kind::Text, "attention_mask", Some((Some(e @ (Elem::I64 | Elem::I32)), _))) => {
                attention_mask = Some((other.name().to_owned(), e));
            }
            _ => {
                return Err(mismatch(format!(
                    "unexpected extra input {} {:?}",
                    other.name(),
                    other.dtype()
                )))
            }
        }
    }
    let outputs = session.outputs();
    let out = outputs
        .iter()
        .find(|o| o.name() == wanted_output)
        .ok_or_else(|| {
            mismatch(format!(
                "expected an output named {wanted_output:?}, found: {}",
                describe(outputs)
            ))
        })?;
    let (out_elem, out_shape) =
        tensor(out).ok_or_else(|| mismatch(format!("output {} is not a tensor", out.name())))?;
    let output_elem = out_elem
        .filter(|e| matches!(e, Elem::F32 | Elem::F16))
        .ok_or_else(|| {
            mismatch(format!(
                "output {} has type {:?}, expected float32 or float16",
                out.name(),
                out.dtype()
            ))
        })?;
    if out_shape.len() != 2 {
        return Err(mismatch(format!(
            "output {} has rank {}, expected 2 ([batch, embed_dim])",
            out.name(),
            out_shape.len()
        )));
    }
    Ok(Signature {
        input: main.name().to_owned(),
        input_elem,
        input_shape,
        attention_mask,
        output: out.name().to_owned(),
        output_elem,
        output_shape: out_shape,
    })
}

/// A declared dimension if it is fixed (ONNX Runtime reports dynamic ones as -1).
fn fixed(shape: &[i64], axis: usize) -> Option<usize> {
    shape
        .get(axis)
        .and_then(|&d| usize::try_from(d).ok())
        .filter(|&d| d > 0)
}
