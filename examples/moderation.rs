//! Flag images against configurable categories with CLIP zero-shot scores.
//!
//! ```text
//! cargo run --release --example moderation -- MODEL_DIR [--config categories.json] IMAGE...
//! ```
//!
//! Each category is a set of labels (descriptions of what it covers), turned into prompts
//! with templates and ensembled as in CLIP's zero-shot classifier; a set of **neutral**
//! labels describes ordinary content. For each image the example computes, per category:
//!
//! * `probability`: the softmax mass of the category's labels among *all* labels (every
//!   category's and the neutral ones), with the model's own logit scale;
//! * `margin`: the best cosine similarity to one of the category's labels minus the best
//!   cosine similarity to a neutral label.
//!
//! The category is flagged when its chosen score (`"rule": "probability"` or `"margin"`)
//! reaches its `threshold`. One JSON line per image is printed:
//! `{"image": ..., "flagged": [...], "scores": {"<category>": {"probability": .., "margin": ..}}}`.
//!
//! The configuration file (optional; the built-in default is printed with `--print-config`):
//!
//! ```json
//! {
//!   "templates": ["a photo of {}.", "an image showing {}."],
//!   "neutral": ["an everyday scene", "a landscape", "a portrait of a person"],
//!   "categories": [
//!     {"name": "weapons", "labels": ["a gun", "a knife used as a weapon"],
//!      "rule": "probability", "threshold": 0.5}
//!   ]
//! }
//! ```
//!
//! # Limits — read before relying on it
//!
//! * **CLIP zero-shot is not a trained moderation classifier.** It scores how well an image
//!   matches short descriptions, using associations learnt from web captions, with their
//!   biases. It misses content it has no words for, confuses look-alikes (a toy gun, a
//!   kitchen knife, medical imagery, art), and its scores depend on the wording of the
//!   labels and on which other labels are present (softmax probabilities are relative to
//!   the label set). OpenAI's own model card advises against deploying CLIP for
//!   surveillance-like or high-stakes uses without domain-specific testing.
//! * **Thresholds must be calibrated on your own data**: collect labelled examples of what
//!   you want flagged and of what you do not, measure precision and recall at several
//!   thresholds per category, and pick thresholds for the error rate you can accept. The
//!   defaults here are placeholders, not recommendations.
//! * Use it to triage for human review, not to take action automatically.
//! * With the random-weights fixture model (`tests/data/models/tiny-vit`) the output is
//!   **meaningless**: it only shows that the pipeline runs. Use a released checkpoint
//!   exported with `tools/export_onnx.py`.
#![forbid(unsafe_code)]

use std::path::Path;

use clip_core::zero_shot::ZeroShotClassifier;
use clip_rs::{Clip, OrtOptions};
use serde_json::{json, Value};

/// How a category's score is compared with its threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    /// Softmax mass of the category's labels among all labels, in [0, 1].
    Probability,
    /// Best cosine to a category label minus best cosine to a neutral label, in [-2, 2].
    Margin,
}

#[derive(Clone, Debug)]
struct Category {
    name: String,
    labels: Vec<String>,
    rule: Rule,
    threshold: f32,
}

#[derive(Clone, Debug)]
struct Config {
    templates: Vec<String>,
    neutral: Vec<String>,
    categories: Vec<Category>,
}

const DEFAULT_CONFIG: &str = r#"{
  "templates": ["a photo of {}.", "an image showing {}.", "a picture of {}."],
  "neutral": ["an everyday scene", "a landscape", "a portrait of a person", "food on a plate",
              "an animal", "a building", "a document or screenshot"],
  "categories": [
    {"name": "weapons", "labels": ["a gun", "a rifle", "a knife used as a weapon"],
     "rule": "probability", "threshold": 0.5},
    {"name": "graphic violence", "labels": ["a bloody injury", "a violent fight"],
     "rule": "probability", "threshold": 0.5},
    {"name": "drugs", "labels": ["illegal drugs", "a syringe with drugs"],
     "rule": "margin", "threshold": 0.05}
  ]
}"#;

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} must be a list of strings"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{what} must be a list of strings"))
        })
        .collect()
}

fn parse_config(text: &str) -> Result<Config, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let templates = strings(&value["templates"], "templates")?;
    let neutral = strings(&value["neutral"], "neutral")?;
    if neutral.is_empty() {
        return Err("give at least one neutral label".into());
    }
    let mut categories = Vec::new();
    for (i, c) in value["categories"]
        .as_array()
        .ok_or("categories must be a list")?
        .iter()
        .enumerate()
    {
        let name = c["name"]
            .as_str()
            .ok_or(format!("category {i} needs a name"))?
            .to_owned();
        let labels = strings(&c["labels"], &format!("labels of {name}"))?;
        if labels.is_empty() {
            return Err(format!("category {name} has no labels"));
        }
        let rule = match c["rule"].as_str().unwrap_or("probability") {
            "probability" => Rule::Probability,
            "margin" => Rule::Margin,
            other => {
                return Err(format!(
                    "category {name}: unknown rule {other:?} (probability or margin)"
                ))
            }
        };
        let threshold = c["threshold"]
            .as_f64()
            .ok_or(format!("category {name} needs a threshold"))? as f32;
        categories.push(Category {
            name,
            labels,
            rule,
            threshold,
        });
    }
    if categories.is_empty() {
        return Err("give at least one category".into());
    }
    Ok(Config {
        templates,
        neutral,
        categories,
    })
}

/// The classifier over every category's labels followed by the neutral labels, and for each
/// category the range of its labels.
struct Moderator {
    config: Config,
    classifier: ZeroShotClassifier,
    ranges: Vec<std::ops::Range<usize>>,
    neutral: std::ops::Range<usize>,
}

impl Moderator {
    fn new(clip: &Clip, config: Config) -> Result<Self, Box<dyn std::error::Error>> {
        let mut labels = Vec::new();
        let mut ranges = Vec::new();
        for c in &config.categories {
            let start = labels.len();
            labels.extend(c.labels.iter().cloned());
            ranges.push(start..labels.len());
        }
        let neutral = labels.len()..labels.len() + config.neutral.len();
        labels.extend(config.neutral.iter().cloned());
        // A label in two categories (or in a category and the neutral set) is rejected by
        // the classifier as a duplicate: its score could not be attributed to one of them.
        let mut builder = ZeroShotClassifier::builder(labels);
        if !config.templates.is_empty() {
            builder = builder.with_templates(config.templates.iter().cloned());
        }
        let classifier = builder.build(clip)?;
        Ok(Self {
            config,
            classifier,
            ranges,
            neutral,
        })
    }

    fn judge(&self, clip: &Clip, image: &Path) -> Result<Value, Box<dyn std::error::Error>> {
        let embeds = clip.encode_images(&[image])?;
        let probs = self.classifier.classify(embeds.view())?;
        let logits = self.classifier.logits(embeds.view())?;
        let cosines = logits
            .row(0)
            .mapv(|l| l / self.classifier.logit_scale().exp());
        let best = |r: &std::ops::Range<usize>| {
            cosines
                .slice_axis(ndarray::Axis(0), ndarray::Slice::from(r.clone()))
                .fold(f32::NEG_INFINITY, |m, &x| m.max(x))
        };
        let best_neutral = best(&self.neutral);
        let mut flagged = Vec::new();
        let mut scores = serde_json::Map::new();
        for (category, range) in self.config.categories.iter().zip(&self.ranges) {
            let probability: f32 = probs
                .row(0)
                .slice_axis(ndarray::Axis(0), ndarray::Slice::from(range.clone()))
                .sum();
            let margin = best(range) - best_neutral;
            let score = match category.rule {
                Rule::Probability => probability,
                Rule::Margin => margin,
            };
            if score >= category.threshold {
                flagged.push(category.name.clone());
            }
            scores.insert(
                category.name.clone(),
                json!({"probability": probability, "margin": margin}),
            );
        }
        Ok(json!({"image": image.display().to_string(), "flagged": flagged, "scores": scores}))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--print-config") {
        println!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let mut config_text = DEFAULT_CONFIG.to_owned();
    if let Some(i) = args.iter().position(|a| a == "--config") {
        let path = args.get(i + 1).ok_or("--config needs a file")?.clone();
        config_text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        args.drain(i..i + 2);
    }
    if args.len() < 2 {
        return Err(
            "usage: moderation MODEL_DIR [--config FILE.json] [--print-config] IMAGE...".into(),
        );
    }
    let config = parse_config(&config_text).map_err(|e| format!("configuration: {e}"))?;
    let clip = clip_rs::load(&args[0], &OrtOptions::new())?;
    let moderator = Moderator::new(&clip, config)?;
    let mut failures = 0;
    for image in &args[1..] {
        match moderator.judge(&clip, Path::new(image)) {
            Ok(line) => println!("{line}"),
            Err(err) => {
                failures += 1;
                let mut text = err.to_string();
                let mut source = err.source();
                while let Some(cause) = source {
                    text = format!("{text}: {cause}");
                    source = cause.source();
                }
                eprintln!("moderation: {image}: {text}");
            }
        }
    }
    if failures > 0 {
        return Err(format!("{failures} image(s) failed").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_and_bad_ones_are_rejected() {
        let c = parse_config(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.categories.len(), 3);
        assert_eq!(c.categories[2].rule, Rule::Margin);
        assert!(parse_config(r#"{"templates": [], "neutral": [], "categories": []}"#).is_err());
        assert!(parse_config(
            r#"{"templates": [], "neutral": ["x"], "categories": [{"name": "a", "labels": ["y"], "rule": "odd", "threshold": 1}]}"#
        )
        .is_err());
    }
}
