//! Recognising a model directory and reading its configuration.
//!
//! Two layouts are understood:
//! * **clip-rs** (written by `tools/export_onnx.py`): `clip_config.json`, `visual.onnx`,
//!   `textual.onnx`.
//! * **transformers.js** (public Hugging Face repos such as `Xenova/clip-vit-base-patch32`):
//!   `config.json`, `preprocessor_config.json`, `onnx/vision_model.onnx`,
//!   `onnx/text_model.onnx`.

use std::path::{Path, PathBuf};

use clip_core::ModelConfig;
use serde_json::Value;

use crate::error::OrtError;

/// Which layout a model directory has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// `clip_config.json` + `visual.onnx` + `textual.onnx`.
    ClipRs,
    /// `config.json` + `preprocessor_config.json` + `onnx/{vision,text}_model.onnx`.
    TransformersJs,
}

/// The files of a model directory and the configuration read from them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ModelFiles {
    /// The directory's layout.
    pub layout: Layout,
    /// The image tower.
    pub visual: PathBuf,
    /// The text tower.
    pub textual: PathBuf,
    /// The model's configuration.
    pub config: ModelConfig,
    /// A `tokenizer.json` shipped with the model, if any.
    pub tokenizer_json: Option<PathBuf>,
}

/// `ln(100)`: the logit scale every released OpenAI CLIP model has. Used only for the
/// transformers.js layout, whose two tower files do not contain the learned value and whose
/// `config.json` holds only its initial value (`logit_scale_init_value` = ln(1/0.07));
/// override it with a `"logit_scale"` key in `config.json` (the raw, natural-log value:
/// 4.6052 for a scale of 100).
const RELEASED_LOGIT_SCALE: f32 = 4.605_170_2;

impl ModelFiles {
    /// Recognises the layout of `dir` and reads its configuration.
    pub fn discover(dir: impl AsRef<Path>) -> Result<Self, OrtError> {
        let dir = dir.as_ref();
        let ours = dir.join("clip_config.json");
        if ours.is_file() {
            let config = ModelConfig::from_json_file(&ours)?;
            let files = Self {
                layout: Layout::ClipRs,
                visual: dir.join("visual.onnx"),
                textual: dir.join("textual.onnx"),
                config,
                tokenizer_json: existing(dir.join("tokenizer.json")),
            };
            return files.check_present(dir);
        }
        let hf = dir.join("config.json");
        if hf.is_file() {
            let config = read_transformers_config(&hf, &dir.join("preprocessor_config.json"))?;
            let onnx = dir.join("onnx");
            let files = Self {
                layout: Layout::TransformersJs,
                visual: onnx.join("vision_model.onnx"),
                textual: onnx.join("text_model.onnx"),
                config,
                tokenizer_json: existing(dir.join("tokenizer.json")),
            };
            return files.check_present(dir);
        }
        Err(OrtError::UnknownLayout {
            dir: dir.to_owned(),
            missing: if dir.is_dir() {
                "clip_config.json (and config.json)".into()
            } else {
                "the directory itself".into()
            },
        })
    }

    fn check_present(self, dir: &Path) -> Result<Self, OrtError> {
        let missing: Vec<String> = [&self.visual, &self.textual]
            .into_iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if missing.is_empty() {
            Ok(self)
        } else {
            Err(OrtError::UnknownLayout {
                dir: dir.to_owned(),
                missing: missing.join(" and "),
            })
        }
    }
}

fn existing(path: PathBuf) -> Option<PathBuf> {
    path.is_file().then_some(path)
}

fn read_json(path: &Path) -> Result<Value, OrtError> {
    let text = std::fs::read_to_string(path).map_err(|err| OrtError::ForeignConfig {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|err| OrtError::ForeignConfig {
        path: path.to_owned(),
        reason: err.to_string(),
    })
}

/// A size in a `preprocessor_config.json`: a number, or `{"height": h, "width": w}`, or
/// `{"shortest_edge": s}`.
fn size_of(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.get("height").and_then(Value::as_u64))
        .or_else(|| value.get("shortest_edge").and_then(Value::as_u64))
}

fn triple(value: Option<&Value>) -> Option<[f32; 3]> {
    let list = value?.as_array()?;
    match list.as_slice() {
        [a, b, c] => Some([a.as_f64()? as f32, b.as_f64()? as f32, c.as_f64()? as f32]),
        _ => None,
    }
}

/// Builds a [`ModelConfig`] from Hugging Face's `config.json` (+ `preprocessor_config.json`).
fn read_transformers_config(
    config_path: &Path,
    preprocessor_path: &Path,
) -> Result<ModelConfig, OrtError> {
    let config = read_json(config_path)?;
    let bad = |reason: &str| OrtError::ForeignConfig {
        path: config_path.to_owned(),
        reason: reason.to_owned(),
    };
    let embed_dim = config
        .get("projection_dim")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no `projection_dim`"))?;
    let vision = config.get("vision_config");
    let text = config.get("text_config");
    let mut image_size = vision
        .and_then(|v| v.get("image_size"))
        .and_then(Value::as_u64)
        .unwrap_or(224);
    let logit_scale = config
        .get("logit_scale")
        .and_then(Value::as_f64)
        .map_or(RELEASED_LOGIT_SCALE, |v| v as f32);
    let mut model = ModelConfig::new(
        usize::try_from(embed_dim).map_err(|_| bad("`projection_dim` too large"))?,
        0,
        logit_scale,
    )
    .with_architecture(
        config
            .get("_name_or_path")
            .and_then(Value::as_str)
            .unwrap_or("hf-clip")
            .to_owned(),
    );
    if let Some(len) = text
        .and_then(|t| t.get("max_position_embeddings"))
        .and_then(Value::as_u64)
    {
        model.context_length = len as usize;
    }
    if let Some(vocab) = text
        .and_then(|t| t.get("vocab_size"))
        .and_then(Value::as_u64)
    {
        model.vocab_size = vocab as usize;
    }
    if preprocessor_path.is_file() {
        let pre = read_json(preprocessor_path)?;
        if let Some(size) = pre.get("crop_size").and_then(size_of) {
            image_size = size;
        }
        if let Some(mean) = triple(pre.get("image_mean")) {
            model.image_mean = mean;
        }
        if let Some(std) = triple(pre.get("image_std")) {
            model.image_std = std;
        }
    }
    model.image_size = u32::try_from(image_size).map_err(|_| bad("image size too large"))?;
    model.validate().map_err(|err| match err {
        clip_core::Error::InvalidConfig { reason } => bad(&reason),
        other => other.into(),
    })?;
    Ok(model)
}
