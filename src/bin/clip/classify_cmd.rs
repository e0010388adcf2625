//! `clip classify`: zero-shot classification, one JSON object per image.
//!
//! Output contract (one line per image that could be read, in argument order):
//! `{"image": "<path as given>", "labels": [...], "probs": [...]}` with `probs` in label
//! order; with `--top-k N` also `"top": [{"label": ..., "index": ..., "prob": ...}, ...]`.
//! With the default `--templates none` the labels are tokenized as given, so `probs` equals
//! the reference's `model(image, clip.tokenize(labels))[0].softmax(dim=-1)`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clip_core::zero_shot::{imagenet_templates, ZeroShotClassifier};
use ndarray::{Array4, Axis, Slice};
use serde_json::json;

use crate::common::{error_chain, ModelArgs};

/// Which prompt templates turn a label into the texts that are encoded.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateSet {
    /// Each label is encoded as given.
    None,
    /// OpenAI's 80 ImageNet templates ("a photo of a {}.", ...), ensembled.
    Imagenet,
}

/// Arguments of `clip classify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A label to classify into (repeat for each label; at least one, all distinct).
    #[arg(long = "label", value_name = "TEXT", required = true)]
    pub labels: Vec<String>,
    /// Prompt templates: none (labels as given) or imagenet (OpenAI's 80, ensembled).
    #[arg(long, value_enum, default_value = "none", conflicts_with = "template")]
    pub templates: TemplateSet,
    /// A custom prompt template with `{}` where the label goes (repeat for several; they
    /// are ensembled as the imagenet set is).
    #[arg(long = "template", value_name = "TEXT")]
    pub template: Vec<String>,
    /// Also list the N most probable labels of each image under "top".
    #[arg(long, value_name = "N")]
    pub top_k: Option<usize>,
    /// Cut prompts longer than the context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// Image files.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let clip = args
        .model
        .load(crate::common::Towers::Both, None)?
        .with_truncation(args.truncate);
    let mut builder = ZeroShotClassifier::builder(args.labels.iter().cloned());
    if !args.template.is_empty() {
        builder = builder.with_templates(args.template.iter().cloned());
    } else if args.templates == TemplateSet::Imagenet {
        builder = builder.with_templates(imagenet_templates());
    }
    let classifier = builder
        .build(&clip)
        .context("cannot build the classifier")?;

    let size = clip.config().image_size as usize;
    let batch_size = args.model.batch_size.max(1);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0usize;
    for chunk in args.images.chunks(batch_size) {
        let mut pixels = Array4::<f32>::zeros((chunk.len(), 3, size, size));
        let mut ok = Vec::with_capacity(chunk.len());
        for path in chunk {
            match clip.preprocessor().preprocess_path(path) {
                Ok(tensor) => {
                    pixels.index_axis_mut(Axis(0), ok.len()).assign(&tensor);
                    ok.push(path);
                }
                Err(err) => {
                    failures += 1;
                    eprintln!("clip: {}: {}", path.display(), error_chain(&err));
                }
            }
        }
        if ok.is_empty() {
            continue;
        }
        let embeds = clip
            .encode_pixels(pixels.slice_axis(Axis(0), Slice::from(..ok.len())))
            .context("the image model failed")?;
        let probs = classifier.classify(embeds.view())?;
        for (path, row) in ok.iter().zip(probs.rows()) {
            let mut object = json!({
                "image": path.to_string_lossy(),
                "labels": classifier.labels(),
                "probs": row.to_vec(),
            });
            if let Some(k) = args.top_k {
                let top: Vec<_> = classifier
                    .top_k(row, k)
                    .into_iter()
                    .map(|p| json!({"label": p.label, "index": p.index, "prob": p.probability}))
                    .collect();
                object["top"] = json!(top);
            }
            serde_json::to_writer(&mut out, &object).context("cannot write to stdout")?;
            out.write_all(b"\n").context("cannot write to stdout")?;
        }
        out.flush().context("cannot write to stdout")?;
    }
    if failures > 0 {
        eprintln!("clip: {failures} image(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
