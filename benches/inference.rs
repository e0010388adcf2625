//! Criterion benches of inference on the tiny committed fixture model
//! (`tests/data/models/tiny-vit`), so `cargo bench --bench inference` needs no big model:
//! one ONNX Runtime session run per tower at batch 1 (image; text as a short prompt and as a
//! full 77-token row), and the hot paths after the model (row normalisation, logits +
//! softmax).
//!
//! ONNX Runtime is found as by the library (`ORT_DYLIB_PATH`, then the usual places). When it
//! cannot be loaded the session benches are skipped with a message on stderr, never timed
//! as something else. Full-size numbers against the PyTorch reference come from
//! `tools/bench_vs_pytorch.py` (see docs/performance.md).
#![forbid(unsafe_code)]
use std::hint::black_box;
use std::path::Path;

use clip_rs::{embedding, similarity, Clip, OrtOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{Array2, Array4};

fn tiny_model() -> Option<Clip> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models/tiny-vit");
    // One intra-op thread: the fixture is too small for more to help, and one thread keeps
    // the numbers comparable between machines.
    match clip_rs::load(&dir, &OrtOptions::new().with_intra_threads(1)) {
        Ok(clip) => Some(clip.with_truncation(true)),
        Err(err) => {
            eprintln!(
                "inference benches skipped: cannot load {}: {err}",
                dir.display()
            );
            None
        }
    }
}

fn session_run(c: &mut Criterion) {
    let Some(clip) = tiny_model() else { return };
    let size = clip.config().image_size as usize;
    // The committed photo, preprocessed once outside the timed loop.
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images/chelsea.png");
    let mut pixels = Array4::<f32>::zeros((1, 3, size, size));
    match clip.preprocessor().preprocess_path(&photo) {
        Ok(tensor) => pixels.index_axis_mut(ndarray::Axis(0), 0).assign(&tensor),
        Err(err) => {
            eprintln!("inference benches skipped: {}: {err}", photo.display());
            return;
        }
    }
    let mut group = c.benchmark_group("session_run");
    group.bench_function("image/batch1", |b| {
        b.iter(|| clip.encoder().encode_image_batch(black_box(pixels.view())))
    });
    let long = "a photograph of ".repeat(40);
    for (name, text) in [
        ("text/batch1/prompt", "a photo of a cat."),
        ("text/batch1/77", long.as_str()),
    ] {
        let tokens = match clip.tokenize(&[text]) {
            Ok(tokens) => tokens,
            Err(err) => {
                eprintln!("inference bench {name} skipped: {err}");
                continue;
            }
        };
        group.bench_function(name, |b| {
            b.iter(|| clip.encoder().encode_text_batch(black_box(tokens.view())))
        });
    }
    group.finish();
}

/// Deterministic pseudo-random rows (no RNG dependency): a fixed LCG.
fn rows(n: usize, dim: usize, seed: u32) -> Array2<f32> {
    let mut state = seed;
    Array2::from_shape_simple_fn((n, dim), || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    })
}

fn post(c: &mut Criterion) {
    // ViT-B/32's width: 512; 1,000 "class" rows as in ImageNet zero-shot; the released
    // models' logit scale (raw parameter ln 100).
    let images = rows(32, 512, 1);
    let texts = embedding::normalized(rows(1000, 512, 2).view());
    let mut group = c.benchmark_group("post");
    group.bench_function("normalize_rows/32x512", |b| {
        b.iter_batched(
            || images.clone(),
            |mut m| {
                embedding::normalize_rows(&mut m);
                m
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("logits+softmax/32x1000x512", |b| {
        b.iter(|| {
            similarity::logits(
                black_box(images.view()),
                black_box(texts.view()),
                100f32.ln(),
            )
            .map(|l| similarity::softmax_rows(l.view()))
        })
    });
    group.finish();
}

criterion_group!(benches, session_run, post);
criterion_main!(benches);
