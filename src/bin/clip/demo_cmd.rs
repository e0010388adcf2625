//! `clip demo`: the main job end to end on the bundled photos and texts.
//!
//! Embeds a few photos and captions, prints their similarity matrix and a zero-shot guess
//! per photo. With the bundled tiny model the weights are random, so the numbers show the
//! pipeline working, not CLIP's knowledge; pass `--model` with a real export to see that.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::common::ModelArgs;

/// The repository's bundled files (the demo runs from a checkout).
fn bundled(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Real photos among the test images (from scikit-image's and scikit-learn's wheels).
const PHOTOS: &[&str] = &[
    "chelsea.png",
    "rocket.jpg",
    "camera.png",
    "china.jpg",
    "flower.jpg",
    "coins.png",
];

/// Captions, one per photo, in the same order.
const CAPTIONS: &[&str] = &[
    "a photo of a cat",
    "a rocket on a launch pad",
    "a black and white photo of a man with a camera",
    "a temple in China",
    "a close-up photo of a flower",
    "old coins on a table",
];

/// Arguments of `clip demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory (default: the bundled tiny random-weight model).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Threads ONNX Runtime uses (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Execution device: auto, cpu, cuda or tensorrt.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    device: clip_rs::Device,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bundled_model = bundled("tests/data/models/tiny-vit");
    let random_weights = args.model.is_none();
    let model = ModelArgs {
        model: args.model.unwrap_or(bundled_model),
        batch_size: clip_rs::DEFAULT_BATCH_SIZE,
        threads: args.threads,
        device: args.device,
        ort_lib: None,
        quiet: false,
        model_cache: false,
    };
    let start = Instant::now();
    let clip = model.load(crate::common::Towers::Both, None)?;
    let loaded = start.elapsed();
    println!("clip-rs demo");
    println!(
        "model: {} ({})",
        model.model.display(),
        clip.config().architecture
    );
    if random_weights {
        println!(
            "NOTE: the bundled model is a tiny CLIP with RANDOM weights (a test fixture): the pipeline\n\
             is real — exact preprocessing and tokenizer, ONNX Runtime — but the scores carry no meaning.\n\
             For real results export OpenAI's weights and pass them with --model:\n\
             \x20 python3 tools/export_onnx.py --from openai --checkpoint ViT-B-32.pt --out models/vit-b-32\n\
             \x20 bash tools/demo.sh --model models/vit-b-32"
        );
    }
    let photos: Vec<PathBuf> = PHOTOS
        .iter()
        .map(|p| bundled("tests/data/images").join(p))
        .collect();
    let t = Instant::now();
    let images = clip
        .encode_images(&photos)
        .context("embedding the bundled photos")?;
    let image_time = t.elapsed();
    let t = Instant::now();
    let texts = clip
        .encode_texts(CAPTIONS)
        .context("embedding the captions")?;
    let text_time = t.elapsed();
    println!(
        "\nembedded {} photos in {:.1} ms and {} captions in {:.1} ms (model loaded in {:.0} ms); embedding width {}",
        photos.len(),
        image_time.as_secs_f64() * 1e3,
        CAPTIONS.len(),
        text_time.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3,
        images.ncols()
    );

    let images_n = clip_rs::embedding::normalized(images.view());
    let texts_n = clip_rs::embedding::normalized(texts.view());
    let cosine = images_n.dot(&texts_n.t());
    println!("\ncosine similarity (rows: photos, columns: captions)");
    print!("{:>12}", "");
    for j in 0..CAPTIONS.len() {
        print!("  text{j:<2}");
    }
    println!();
    for (i, photo) in PHOTOS.iter().enumerate() {
        print!("{photo:>12}");
        for j in 0..CAPTIONS.len() {
            print!("  {:+.3}", cosine[[i, j]]);
        }
        println!();
    }
    for (j, caption) in CAPTIONS.iter().enumerate() {
        println!("  text{j}: {caption}");
    }

    let probs = clip.probabilities(images.view(), texts.view())?;
    println!(
        "\nzero-shot guess (softmax of {:.2} × cosine over the captions):",
        clip.config().logit_scale_exp()
    );
    let mut correct = 0;
    for (i, photo) in PHOTOS.iter().enumerate() {
        let row = probs.row(i);
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        correct += usize::from(best == i);
        println!("{photo:>12} → {:<48} p = {:.3}", CAPTIONS[best], row[best]);
    }
    println!(
        "\n{correct}/{} photos matched their own caption{}",
        PHOTOS.len(),
        if random_weights {
            " (chance level expected with random weights)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
