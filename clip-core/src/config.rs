//! The model configuration: what a CLIP model needs besides its weights.

use std::path::Path;

use clip_preprocess::image::{PreprocessConfig, CLIP_MEAN, CLIP_STD, MAX_IMAGE_SIZE};
use clip_preprocess::tokenizer::MAX_CONTEXT_LENGTH;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version tag written by `tools/export_onnx.py` into `clip_config.json`.
pub const CONFIG_FORMAT: &str = "clip-rs/1";

/// Everything about a CLIP model that is not in its weights.
///
/// Read from `clip_config.json` (written by `tools/export_onnx.py`), or derived from a
/// Hugging Face `config.json` + `preprocessor_config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelConfig {
    /// The file format tag (`"clip-rs/1"`); absent in configurations built in code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    /// Architecture name, e.g. `"ViT-B/32"`, `"RN50"`, or `"custom"`.
    #[serde(default = "default_architecture")]
    pub architecture: String,
    /// Width of the joint embedding space (512 for ViT-B/32).
    pub embed_dim: usize,
    /// Input resolution of the image tower (224, or 336 for ViT-L/14@336px).
    pub image_size: u32,
    /// Per-channel normalisation mean.
    #[serde(default = "default_mean")]
    pub image_mean: [f32; 3],
    /// Per-channel normalisation standard deviation.
    #[serde(default = "default_std")]
    pub image_std: [f32; 3],
    /// Token context length of the text tower (77 for every OpenAI model).
    #[serde(default = "default_context_length")]
    pub context_length: usize,
    /// Vocabulary size of the text tower (49,408 for OpenAI's BPE).
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// The learned temperature **as stored in the weights**: its `exp()` multiplies
    /// cosine similarities in `model(image, text)` (≈ 4.6052 → 100 for released models,
    /// ln(1/0.07) ≈ 2.659 → 14.29 at random initialisation).
    pub logit_scale: f32,
}

fn default_architecture() -> String {
    "custom".to_owned()
}
fn default_mean() -> [f32; 3] {
    CLIP_MEAN
}
fn default_std() -> [f32; 3] {
    CLIP_STD
}
fn default_context_length() -> usize {
    77
}
fn default_vocab_size() -> usize {
    49_408
}

impl ModelConfig {
    /// A configuration with the given embedding width, image size and logit scale (raw, as in
    /// the weights), and CLIP's defaults for everything else.
    pub fn new(embed_dim: usize, image_size: u32, logit_scale: f32) -> Self {
        Self {
            format: None,
            architecture: default_architecture(),
            embed_dim,
            image_size,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            context_length: default_context_length(),
            vocab_size: default_vocab_size(),
            logit_scale,
        }
    }

    /// Reads and validates a `clip_config.json`.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigIo {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| Error::ConfigParse {
            path: path.to_owned(),
            source,
        })?;
        // Say which file holds the bad value.
        config.validate().map_err(|err| match err {
            Error::InvalidConfig { reason } => Error::InvalidConfig {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Checks that the values can describe a CLIP model.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidConfig { reason });
        if let Some(format) = self.format.as_deref() {
            if format != CONFIG_FORMAT {
                return invalid(format!(
                    "format {format:?} is not {CONFIG_FORMAT:?}: the file was written by another \
                     version of tools/export_onnx.py; re-export the model or upgrade clip-rs"
                ));
            }
        }
        if self.embed_dim == 0 {
            return invalid("embed_dim must be positive".into());
        }
        if self.image_size == 0 || self.image_size > MAX_IMAGE_SIZE {
            return invalid(format!(
                "image_size {} is outside 1..={MAX_IMAGE_SIZE}",
                self.image_size
            ));
        }
        if !(2..=MAX_CONTEXT_LENGTH).contains(&self.context_length) {
            return invalid(format!(
                "context_length {} is outside 2..={MAX_CONTEXT_LENGTH} (2 for the start and end tokens)",
                self.context_length
            ));
        }
        if let Some(s) = self
            .image_std
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0))
        {
            return invalid(format!(
                "image_std has a non-positive or non-finite value {s}"
            ));
        }
        if self.image_mean.iter().any(|m| !m.is_finite()) {
            return invalid("image_mean has a non-finite value".into());
        }
        // The raw (natural-log) value: exp() of anything above ln(f32::MAX) ≈ 88.72 is
        // infinite, and a file that says `100` meant ln(100) ≈ 4.605.
        if !(self.logit_scale.is_finite() && self.logit_scale <= f32::MAX.ln()) {
            return invalid(format!(
                "logit_scale {} is not a finite value at most {:.2} (it is the raw, natural-log \
                 temperature: ln(100) ≈ 4.605 for released models, not 100)",
                self.logit_scale,
                f32::MAX.ln()
            ));
        }
        Ok(())
    }

    /// The multiplier applied to cosine similarities: `logit_scale.exp()`.
    pub fn logit_scale_exp(&self) -> f32 {
        self.logit_scale.exp()
    }

    /// The image preprocessing this model expects.
    pub fn preprocess_config(&self) -> PreprocessConfig {
        PreprocessConfig::new(self.image_size, self.image_mean, self.image_std)
    }

    /// Replaces the architecture name.
    #[must_use]
    pub fn with_architecture(mut self, architecture: impl Into<String>) -> Self {
        self.architecture = architecture.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exporter_output_and_ignores_extra_fields() {
        let json = r#"{"format": "clip-rs/1", "architecture": "ViT-B/32", "embed_dim": 512,
            "image_size": 224, "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "context_length": 77,
            "vocab_size": 49408, "logit_scale": 4.605170249938965, "source": {"kind": "openai"}}"#;
        let config: ModelConfig = serde_json::from_str(json).unwrap();
        config.validate().unwrap();
        assert_eq!(config.embed_dim, 512);
        assert!((config.logit_scale_exp() - 100.0).abs() < 1e-3);
    }

    #[test]
    fn rejects_nonsense() {
        let mut config = ModelConfig::new(512, 224, 4.6);
        config.image_std[1] = 0.0;
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig { .. })
        ));
        let config = ModelConfig::new(0, 224, 4.6);
        assert!(config.validate().is_err());
        let future =
            r#"{"format": "clip-rs/2", "embed_dim": 8, "image_size": 32, "logit_scale": 1.0}"#;
        let config: ModelConfig = serde_json::from_str(future).unwrap();
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig { .. })
        ));
        // A scale written as 100 instead of ln(100) would overflow exp() to infinity.
        match ModelConfig::new(512, 224, 100.0).validate() {
            Err(Error::InvalidConfig { reason }) => assert!(reason.contains("ln(100)"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(ModelConfig::new(512, 224, 88.0).validate().is_ok());
    }
}
