//! The zero-shot math against the PyTorch reference on the same embeddings.
//!
//! `tests/data/zero_shot/ensemble_math.json` (from `tools/gen_zero_shot_goldens.py`) holds
//! random prompt embeddings `[C, T, D]`, image embeddings `[N, D]` and, per logit scale,
//! what OpenAI's notebook computes from them in torch float32: the ensembled label
//! embeddings, logits, softmax probabilities and top-3 (plus a NumPy float64 check).

// The helpers below are test code too: a panic is how a golden file problem fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use clip_core::zero_shot::{ensemble, ZeroShotBuilder, ZeroShotError};
use ndarray::{Array1, Array2, Array3};
use serde_json::Value;

fn golden() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/zero_shot/ensemble_math.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Number(n) => out.push(n.as_f64().unwrap() as f32),
            other => panic!("not a number: {other}"),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn array2(v: &Value, rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), floats(v)).unwrap()
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

struct Inputs {
    labels: Vec<String>,
    templates: Vec<String>,
    prompts: Array3<f32>,
    images: Array2<f32>,
    dim: usize,
}

fn inputs(g: &Value) -> Inputs {
    let shape = &g["shape"];
    let n = |k: &str| shape[k].as_u64().unwrap() as usize;
    let (c, t, d, i) = (n("labels"), n("templates"), n("dim"), n("images"));
    Inputs {
        labels: (0..c).map(|k| format!("label {k}")).collect(),
        templates: (0..t).map(|k| format!("template {k}: {{}}")).collect(),
        prompts: Array3::from_shape_vec((c, t, d), floats(&g["prompt_embeds"])).unwrap(),
        images: array2(&g["image_embeds"], i, d),
        dim: d,
    }
}

#[test]
fn ensemble_matches_the_notebook() {
    let g = golden();
    let x = inputs(&g);
    let want = array2(&g["cases"][0]["label_embeddings"], x.labels.len(), x.dim);
    let mut got = Array2::<f32>::zeros(want.dim());
    for (class, mut row) in x.prompts.outer_iter().zip(got.rows_mut()) {
        row.assign(&ensemble(class));
    }
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= 1e-6, "label embeddings differ from torch by {diff}");
    // The ensemble is not the normalised plain mean (the prompts have very different norms):
    // this data tells the two apart.
    let plain: Array1<f32> = x
        .prompts
        .index_axis(ndarray::Axis(0), 0)
        .mean_axis(ndarray::Axis(0))
        .unwrap();
    let plain = &plain / plain.dot(&plain).sqrt();
    let gap = plain
        .iter()
        .zip(want.row(0))
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        gap > 1e-2,
        "golden data cannot tell per-prompt normalisation apart ({gap})"
    );
}

#[test]
fn logits_probabilities_and_top_k_match_torch() {
    let g = golden();
    let x = inputs(&g);
    let (n, c) = (x.images.nrows(), x.labels.len());
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        2,
        "one random-init and one released logit scale"
    );
    for case in cases {
        let scale = case["logit_scale"].as_f64().unwrap() as f32;
        let classifier = ZeroShotBuilder::new(x.labels.clone())
            .with_templates(x.templates.clone())
            .build_from_embeddings(x.prompts.view(), scale)
            .unwrap();
        let weights = array2(&case["label_embeddings"], c, x.dim);
        let diff = max_abs_diff(&classifier.label_embeddings().to_owned(), &weights);
        assert!(
            diff <= 1e-6,
            "scale {scale}: label embeddings differ by {diff}"
        );

        let logits = classifier.logits(x.images.view()).unwrap();
        let want = array2(&case["logits"], n, c);
        // Logits reach ±100 with the released scale: compare relative to exp(scale).
        let diff = max_abs_diff(&logits, &want);
        assert!(
            diff <= 2e-6 * scale.exp(),
            "scale {scale}: logits differ by {diff}"
        );

        let probs = classifier.classify(x.images.view()).unwrap();
        let diff = max_abs_diff(&probs, &array2(&case["probs"], n, c));
        assert!(
            diff <= 1e-5,
            "scale {scale}: probabilities differ from torch by {diff}"
        );
        let diff = max_abs_diff(&probs, &array2(&case["numpy_float64_probs"], n, c));
        assert!(
            diff <= 1e-5,
            "scale {scale}: probabilities differ from numpy by {diff}"
        );

        for (i, row) in probs.rows().into_iter().enumerate() {
            let got: Vec<u64> = classifier
                .top_k(row, 3)
                .iter()
                .map(|p| p.index as u64)
                .collect();
            let want: Vec<u64> = case["top3_indices"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(got, want, "scale {scale}: top-3 of image {i}");
        }
    }
}

#[test]
fn the_scale_is_the_models_not_a_constant() {
    // Same embeddings, two scales: the probabilities must differ (a hard-coded 100 would
    // make them equal) and each must match its own golden (checked above).
    let g = golden();
    let x = inputs(&g);
    let probs: Vec<Array2<f32>> = g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            ZeroShotBuilder::new(x.labels.clone())
                .with_templates(x.templates.clone())
                .build_from_embeddings(
                    x.prompts.view(),
                    case["logit_scale"].as_f64().unwrap() as f32,
                )
                .unwrap()
                .classify(x.images.view())
                .unwrap()
        })
        .collect();
    assert!(max_abs_diff(&probs[0], &probs[1]) > 0.05);
}

#[test]
fn one_template_per_label_is_the_plain_normalised_embedding() {
    // Without templates a label's embedding is its own text embedding, normalised: the
    // reference's model(image, text) path.
    let g = golden();
    let x = inputs(&g);
    let single = x.prompts.slice(ndarray::s![.., 0..1, ..]).to_owned();
    let classifier = ZeroShotBuilder::new(x.labels.clone())
        .build_from_embeddings(single.view(), 0.0)
        .unwrap();
    assert_eq!(classifier.templates(), ["{}"]);
    let texts = single.index_axis(ndarray::Axis(1), 0).to_owned();
    let want = clip_core::similarity::logits(x.images.view(), texts.view(), 0.0).unwrap();
    let got = classifier.logits(x.images.view()).unwrap();
    assert!(max_abs_diff(&got, &want) <= 1e-6);
}

#[test]
fn bad_labels_are_clear_errors() {
    let g = golden();
    let x = inputs(&g);
    let mut labels = x.labels.clone();
    labels[3] = labels[1].clone();
    let err = ZeroShotBuilder::new(labels)
        .with_templates(x.templates.clone())
        .build_from_embeddings(x.prompts.view(), 0.0)
        .unwrap_err();
    assert!(matches!(
        err,
        ZeroShotError::DuplicateLabel {
            first: 1,
            second: 3,
            ..
        }
    ));
    assert!(
        err.to_string().contains("duplicate label \"label 1\""),
        "{err}"
    );

    let none: Vec<String> = Vec::new();
    let err = ZeroShotBuilder::new(none)
        .build_from_embeddings(x.prompts.view(), 0.0)
        .unwrap_err();
    assert!(err.to_string().contains("no labels"), "{err}");

    let mut templates = x.templates.clone();
    templates[2] = "a photo".into();
    let err = ZeroShotBuilder::new(x.labels.clone())
        .with_templates(templates)
        .build_from_embeddings(x.prompts.view(), 0.0)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("template 2 (\"a photo\") has no `{}`"),
        "{err}"
    );
}
