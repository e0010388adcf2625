//! [`OrtEncoder`]: a CLIP model's two towers on ONNX Runtime, as a [`clip_core::Encoder`].

use std::path::Path;

use clip_core::{Encoder, ModelConfig};
use ndarray::{s, Array2, ArrayView2, ArrayView4};

use crate::device::Provider;
use crate::error::OrtError;
use crate::model_dir::{Layout, ModelFiles};
use crate::options::OrtOptions;
use crate::runtime::{self, Runtime};
use crate::tower::{Kind, Tower};

/// A CLIP model on ONNX Runtime. `Send + Sync`; see [`OrtOptions::with_sessions`] for how
/// concurrent calls are served.
#[derive(Debug)]
pub struct OrtEncoder {
    config: ModelConfig,
    layout: Layout,
    visual: Tower,
    textual: Tower,
    runtime: &'static Runtime,
}

impl OrtEncoder {
    /// Loads the model in `dir` (either layout of [`ModelFiles::discover`]).
    ///
    /// Checks that each tower's inputs and outputs are those of a CLIP tower and agree with
    /// the configuration (image size, embedding width), so a mismatch fails here, not at the
    /// first call.
    pub fn load(dir: impl AsRef<Path>, options: &OrtOptions) -> Result<Self, OrtError> {
        let files = ModelFiles::discover(dir)?;
        Self::from_files(&files, options)
    }

    /// Loads the towers named in `files` with its configuration.
    pub fn from_files(files: &ModelFiles, options: &OrtOptions) -> Result<Self, OrtError> {
        let runtime = runtime::runtime(options.library_path())?;
        let visual = Tower::load(runtime, Kind::Image, &files.visual, options)?;
        let textual = Tower::load(runtime, Kind::Text, &files.textual, options)?;
        let config = files.config.clone();
        check_against_config(&visual, &textual, &config)?;
        let encoder = Self {
            config,
            layout: files.layout,
            visual,
            textual,
            runtime,
        };
        tracing::info!("clip-ort: {}", encoder.describe());
        Ok(encoder)
    }

    /// The execution provider the towers run on.
    pub fn provider(&self) -> Provider {
        self.visual.provider()
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
        &self,
        ids: ArrayView2<'_, i32>,
        eot: &[usize],
    ) -> clip_core::Result<Array2<i32>> {
        let (rows, width) = ids.dim();
        let needed = eot.iter().map(|&e| e + 1).max().unwrap_or(1).min(width);
        let target = self.textual.fixed_input_dim(1).unwrap_or(needed);
        if target < needed {
            return Err(clip_core::Error::InvalidInput {
                reason: format!(
                    "a text needs {needed} token positions but {} accepts only {target}",
                    self.textual.path().display()
                ),
            });
        }
        let mut out = Array2::<i32>::zeros((rows, target));
        let copied = target.min(width);
        out.slice_mut(s![.., ..copied])
            .assign(&ids.slice(s![.., ..copied]));
        Ok(out)
    }
}

/// Checks the towers' declared shapes against the configuration.
fn check_against_config(
    visual: &Tower,
    textual: &Tower,
    config: &ModelConfig,
) -> Result<(), OrtError> {
    let mismatch = |tower: &Tower, reason: String| OrtError::ConfigMismatch {
        path: tower.path().to_owned(),
        reason,
    };
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
    for tower in [visual, textual] {
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
    }
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
    Ok(())
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
        let embeds = self.visual.run_image(pixels)?;
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
        if let Some(bad) = token_ids
            .iter()
            .find(|&&id| id < 0 || id as usize >= self.config.vocab_size)
        {
            return Err(clip_core::Error::InvalidInput {
                reason: format!(
                    "token id {bad} is outside the vocabulary (0..{})",
                    self.config.vocab_size
                ),
            });
        }
        if n == 0 {
            return Ok(Array2::zeros((0, self.config.embed_dim)));
        }
        let eot = eot_positions(token_ids);
        let ids = self.fit_text_width(token_ids, &eot)?;
        let embeds = self.textual.run_text(ids.view(), &eot)?;
        self.check_output(embeds, n, "text")
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
