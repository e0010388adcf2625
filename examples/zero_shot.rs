//! Zero-shot classification in a few lines.
//!
//! ```text
//! cargo run --example zero_shot -- MODEL_DIR IMAGE [LABEL ...]
//! cargo run --example zero_shot -- tests/data/models/tiny-vit tests/data/images/chelsea.png cat dog
//! ```
//!
//! (The tiny fixture model has random weights: its answers are meaningless, but the
//! numbers equal the PyTorch reference's for the same weights.)
#![forbid(unsafe_code)]

use clip_core::zero_shot::{imagenet_templates, ZeroShotClassifier};
use clip_rs::OrtOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(model), Some(image)) = (args.next(), args.next()) else {
        return Err("usage: zero_shot MODEL_DIR IMAGE [LABEL ...]".into());
    };
    let mut labels: Vec<String> = args.collect();
    if labels.is_empty() {
        labels = ["a cat", "a dog", "a rocket"].map(String::from).to_vec();
    }

    let clip = clip_rs::load(&model, &OrtOptions::new())?;
    let classifier = ZeroShotClassifier::builder(labels)
        .with_templates(imagenet_templates()) // or leave out: labels as given
        .build(&clip)?;
    let probs = classifier.classify_images(&clip, &[image.as_str()])?;
    for p in classifier.top_k(probs.row(0), 3) {
        println!("{:>6.2}%  {}", 100.0 * p.probability, p.label);
    }
    Ok(())
}
