//! [`OrtEncoder`]: a CLIP model's two towers on ONNX Runtime, as a [`clip_core::Encoder`].

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use clip_core::{Encoder, ModelConfig};
use ndarray::{Array2, ArrayView, ArrayView2, ArrayView4, Axis, RemoveAxis, Slice};

use crate::device::{self, Provider};
use crate::error::OrtError;
use crate::model_dir::{Layout, ModelFiles};
use crate::options::OrtOptions;
use crate::runtime::{self, Runtime};
use crate::tower::{Kind, Tower};

/// A CLIP model on ONNX Runtime. `Send + Sync`; see [`OrtOptions::with_sessions`] for how
/// concurrent calls are served.
///
/// Each tower's sessions are created when it is first needed (or at load with
/// [`OrtOptions::with_eager_loading`]), so a program that only embeds images never loads
/// the text tower.
#[derive(Debug)]
pub struct OrtEncoder {
    config: ModelConfig,
    layout: Layout,
    visual: LazyTower,
    textual: LazyTower,
    options: OrtOptions,
    provider: Provider,
    runtime: &'static Runtime,
}

/// A tower created on first use. A failed creation is not remembered: the next call tries
/// again (and reports the same typed error if the file is still broken).
#[derive(Debug)]
struct LazyTower {
    kind: Kind,
    path: PathBuf,
    tower: OnceLock<Tower>,
    /// Serialises creation, so two threads never both create the same tower.
    init: Mutex<()>,
}

impl LazyTower {
    fn new(kind: Kind, path: &Path) -> Self {
        Self {
            kind,
            path: path.to_owned(),
            tower: OnceLock::new(),
            init: Mutex::new(()),
        }
    }
}

impl OrtEncoder {
    /// Loads the model in `dir` (either layout of [`ModelFiles::discover`]).
    ///
    /// Checks here: the layout and configuration, the ONNX Runtime library, and the device
    /// (a strict [`Device`](crate::Device) that is unavailable fails now). Each tower's
    /// sessions are created on first use; that is also when its inputs and outputs are
    /// checked to be those of a CLIP tower that agrees with the configuration (image size,
    /// embedding width). Call [`OrtEncoder::load_image_tower`] / [`OrtEncoder::load_text_tower`]
    /// to create a tower up front, or set [`OrtOptions::with_eager_loading`] to have `load`
    /// create both and report every error itself.
    ///
    /// ```
    /// use clip_core::{Clip, Encoder};
    /// use clip_ort::{Device, OrtEncoder, OrtOptions};
    /// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/models/tiny-vit");
    /// // `dir` holds visual.onnx, textual.onnx and clip_config.json (tools/export_onnx.py).
    /// let encoder = OrtEncoder::load(dir, &OrtOptions::new().with_device(Device::Cpu))?;
    /// println!("{}", encoder.describe()); // which library and execution provider run it
    /// let clip = Clip::new(encoder);
    /// let texts = clip.encode_texts(&["a photo of a cat", "a diagram of a rocket"])?;
    /// assert_eq!(texts.dim(), (2, clip.config().embed_dim));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>, options: &OrtOptions) -> Result<Self, OrtError> {
        let files = ModelFiles::discover(dir)?;
        Self::from_files(&files, options)
    }

    /// Loads the towers named in `files` with its configuration (see [`OrtEncoder::load`]).
    pub fn from_files(files: &ModelFiles, options: &OrtOptions) -> Result<Self, OrtError> {
        let runtime = runtime::runtime(options.library_path())?;
        let provider = device::resolve(&runtime.environment, options.device)?;
        let encoder = Self {
            config: files.config.clone(),
            layout: files.layout,
            visual: LazyTower::new(Kind::Image, &files.visual),
            textual: LazyTower::new(Kind::Text, &files.textual),
            options: options.clone(),
            provider,
            runtime,
        };
        if options.eager {
            encoder.load_image_tower()?;
            encoder.load_text_tower()?;
        }
        tracing::info!("clip-ort: {}", encoder.describe());
        Ok(encoder)
    }

    /// Creates the image tower's sessions now if they do not exist yet, and checks the tower
    /// against the configuration; the typed error of a broken image tower comes from here.
    pub fn load_image_tower(&self) -> Result<(), OrtError> {
        self.tower(&self.visual).map(|_| ())
    }

    /// Creates the text tower's sessions now if they do not exist yet (see
    /// [`OrtEncoder::load_image_tower`]).
    pub fn load_text_tower(&self) -> Result<(), OrtError> {
        self.tower(&self.textual).map(|_| ())
    }

    /// The tower, created on first use.
    fn tower<'a>(&self, lazy: &'a LazyTower) -> Result<&'a Tower, OrtError> {
        if let Some(tower) = lazy.tower.get() {
            return Ok(tower);
        }
        // A poisoned lock only means another thread panicked while creating the tower; the
        // OnceLock it guards is still consistent, so carry on.
        let _guard = lazy.init.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tower) = lazy.tower.get() {
            return Ok(tower);
        }
        let tower = Tower::load(
            self.runtime,
            lazy.kind,
            &lazy.path,
            &self.options,
            self.provider,
        )?;
        match lazy.kind {
            Kind::Image => check_visual(&tower, &self.config)?,
            Kind::Text => check_textual(&tower, &self.config)?,
        }
        tracing::debug!("clip-ort: {} tower ready", lazy.path.display());
        Ok(lazy.tower.get_or_init(|| tower))
    }

    /// The execution provider the towers run on (decided at load).
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The layout the model was loaded from.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The ONNX Runtime library in use.
    pub fn runtime_library(&self) -> &Path {
        self.runtime.library()
    }

    /// Fits token ids to the width the text tower accepts.
    ///
    /// Tokens after the end-of-text token cannot change the result: the attention is causal
    /// and the model pools at the EOT (the reference's `x[arange, text.argmax(-1)]`; the EOT
    /// has the highest id). So when the model accepts any sequence length, the batch is cut
    /// after its last EOT — a batch of short prompts runs on ~10 columns instead of 77. When
    /// the length is fixed, the ids are zero-padded (the reference's padding) or cut to it.
    fn fit_text_width(
        textual: &Tower,
        ids: ArrayView2<'_, i32>,
        eot: &[usize],
    ) -> clip_core::Result<Array2<i32>> {
        let (rows, width) = ids.dim();
        let needed = eot.iter().map(|&e| e + 1).max().unwrap_or(1).min(width);
        let target = textual.fixed_input_dim(1).unwrap_or(needed);
        if target < needed {
            // The first row that does not fit.
            let row = eot.iter().position(|&e| e + 1 > target).unwrap_or(0);
            return Err(clip_core::Error::InvalidInput {
                reason: format!(
                    "text row {row} needs {} token positions but {} accepts only {target}",
                    (eot.get(row).copied().unwrap_or(0) + 1).min(width),
                    textual.path().display()
                ),
            });
        }
        let mut out = Array2::<i32>::zeros((rows, target));
        let copied = target.min(width);
        out.slice_axis_mut(Axis(1), Slice::from(..copied))
            .assign(&ids.slice_axis(Axis(1), Slice::from(..copied)));
        Ok(out)
    }
}

/// The batch size a tower was exported with, when it is fixed and differs from `rows`
/// (some third-party exports fix it, often to 1).
fn static_batch(tower: &Tower, rows: usize) -> Option<usize> {
    tower
        .fixed_input_dim(0)
        .filter(|&batch| batch > 0 && batch != rows)
}

/// Runs the rows of `input` through a tower with a static batch size `batch`: in chunks of
/// that size, the last one padded with copies of its first row, whose outputs are dropped.
/// CLIP's towers treat rows independently, so each row gets the embedding a dynamic-batch
/// export gives it. `run` gets the chunk (`batch` rows) and the input rows it holds;
/// `tower` (`image` or `text`) names the tower in errors.
fn in_static_batches<A: Clone, D: RemoveAxis>(
    input: ArrayView<'_, A, D>,
    batch: usize,
    tower: &'static str,
    mut run: impl FnMut(ArrayView<'_, A, D>, Range<usize>) -> Result<Array2<f32>, OrtError>,
) -> Result<Array2<f32>, OrtError> {
    let bad = |reason: String| OrtError::BadOutput { tower, reason };
    let n = input.len_of(Axis(0));
    let mut kept = Vec::with_capacity(n.div_ceil(batch));
    for start in (0..n).step_by(batch) {
        let rows = start..(start + batch).min(n);
        let real = input.slice_axis(Axis(0), Slice::from(rows.clone()));
        let embeds = if rows.len() == batch {
            run(real, rows.clone())?
        } else {
            let first = real.slice_axis(Axis(0), Slice::from(..1));
            let parts: Vec<_> = std::iter::once(real.view())
                .chain(std::iter::repeat_n(first, batch - rows.len()))
                .collect();
            // The parts differ only in their first axis, so this cannot fail.
            let padded = ndarray::concatenate(Axis(0), &parts).map_err(|e| bad(e.to_string()))?;
            run(padded.view(), rows.clone())?
        };
        if embeds.nrows() != batch {
            return Err(bad(format!(
                "{} rows for a static batch of {batch}",
                embeds.nrows()
            )));
        }
        kept.push(embeds.slice_axis_move(Axis(0), Slice::from(..rows.len())));
    }
    let views: Vec<_> = kept.iter().map(|a| a.view()).collect();
    ndarray::concatenate(Axis(0), &views).map_err(|e| bad(e.to_string()))
}

fn mismatch(tower: &Tower, reason: String) -> OrtError {
    OrtError::ConfigMismatch {
        path: tower.path().to_owned(),
        reason,
    }
}

/// Checks a tower's declared embedding width against the configuration.
fn check_output_width(tower: &Tower, config: &ModelConfig) -> Result<(), OrtError> {
    if let Some(dim) = tower.fixed_output_dim(1) {
        if dim != config.embed_dim {
            return Err(mismatch(
                tower,
                format!(
                    "the model outputs {dim}-wide embeddings, the config says embed_dim {}",
                    config.embed_dim
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the image tower's declared shapes against the configuration.
fn check_visual(visual: &Tower, config: &ModelConfig) -> Result<(), OrtError> {
    let size = config.image_size as usize;
    for axis in [2, 3] {
        if let Some(dim) = visual.fixed_input_dim(axis) {
            if dim != size {
                return Err(mismatch(
                    visual,
                    format!(
                        "the model takes {dim}-pixel images, the config says image_size {size}"
                    ),
                ));
            }
        }
    }
    if let Some(channels) = visual.fixed_input_dim(1) {
        if channels != 3 {
            return Err(mismatch(
                visual,
                format!("the model takes {channels} channels, expected 3"),
            ));
        }
    }
    check_output_width(visual, config)
}

/// Checks the text tower's declared shapes against the configuration.
fn check_textual(textual: &Tower, config: &ModelConfig) -> Result<(), OrtError> {
    if let Some(len) = textual.fixed_input_dim(1) {
        if len > config.context_length {
            return Err(mismatch(
                textual,
                format!(
                    "the model takes {len} tokens, the config says context_length {}",
                    config.context_length
                ),
            ));
        }
    }
    check_output_width(textual, config)
}

/// Position of the first maximum of each row: the EOT, as the reference's `argmax(-1)`.
fn eot_positions(ids: ArrayView2<'_, i32>) -> Vec<usize> {
    ids.rows()
        .into_iter()
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

impl OrtEncoder {
    fn check_output(
        &self,
        embeds: Array2<f32>,
        rows: usize,
        tower: &'static str,
    ) -> clip_core::Result<Array2<f32>> {
        if embeds.dim() != (rows, self.config.embed_dim) {
            return Err(OrtError::BadOutput {
                tower,
                reason: format!(
                    "shape {:?}, expected [{rows}, {}]",
                    embeds.dim(),
                    self.config.embed_dim
                ),
            }
            .into());
        }
        Ok(embeds)
    }
}

impl Encoder for OrtEncoder {
    fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn encode_image_batch(&self, pixels: ArrayView4<'_, f32>) -> clip_core::Result<Array2<f32>> {
        let (n, c, h, w) = pixels.dim();
        let size = self.config.image_size as usize;
        if (c, h, w) != (3, size, size) {
            return Err(clip_core::Error::InvalidInput {
                reason: format!(
                    "images of shape [{c}, {h}, {w}], this model takes [3, {size}, {size}]"
                ),
            });
        }
        if n == 0 {
            return Ok(Array2::zeros((0, self.config.embed_dim)));
        }
        let visual = self.tower(&self.visual)?;
        let embeds = match static_batch(visual, n) {
            Some(batch) => {
                in_static_batches(pixels, batch, "image", |chunk, _| visual.run_image(chunk))?
            }
            None => visual.run_image(pixels)?,
        };
        self.check_output(embeds, n, "image")
    }

    fn encode_text_batch(&self, token_ids: ArrayView2<'_, i32>) -> clip_core::Result<Array2<f32>> {
        let (n, width) = token_ids.dim();
        if width == 0 || width > self.config.context_length {
            return Err(clip_core::Error::InvalidInput {
                reason: format!(
                    "token rows of length {width}, this model takes 1..={}",
                    self.config.context_length
                ),
            });
        }
        if let Some(((row, col), bad)) = token_ids
            .indexed_iter()
            .find(|(_, &id)| id < 0 || id as usize >= self.config.vocab_size)
        {
            return Err(clip_core::Error::InvalidInput {
                reason: format!(
                    "token id {bad} (row {row}, position {col}) is outside the vocabulary (0..{})",
                    self.config.vocab_size
                ),
            });
        }
        if n == 0 {
            return Ok(Array2::zeros((0, self.config.embed_dim)));
        }
        let eot = eot_positions(token_ids);
        let textual = self.tower(&self.textual)?;
        let ids = Self::fit_text_width(textual, token_ids, &eot)?;
        let embeds = match static_batch(textual, n) {
            Some(batch) => in_static_batches(ids.view(), batch, "text", |chunk, rows| {
                // Padding rows copy the chunk's first row, EOT included.
                let first = eot[rows.start];
                let chunk_eot: Vec<usize> = (0..batch)
                    .map(|i| {
                        eot.get(rows.start + i)
                            .copied()
                            .filter(|_| i < rows.len())
                            .unwrap_or(first)
                    })
                    .collect();
                textual.run_text(chunk, &chunk_eot)
            })?,
            None => textual.run_text(ids.view(), &eot)?,
        };
        self.check_output(embeds, n, "text")
    }

    /// Creates the image tower's sessions if they do not exist yet
    /// ([`OrtEncoder::load_image_tower`]).
    fn prepare_image(&self) -> clip_core::Result<()> {
        Ok(self.load_image_tower()?)
    }

    fn describe(&self) -> String {
        format!(
            "{} on ONNX Runtime ({}), {}",
            self.config.architecture,
            self.runtime.library().display(),
            self.provider()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn eot_is_the_first_maximum() {
        let ids = array![
            [49406, 320, 1929, 49407, 0],
            [49406, 49407, 0, 0, 0],
            [0, 0, 0, 0, 0]
        ];
        assert_eq!(eot_positions(ids.view()), vec![3, 1, 0]);
    }
}
