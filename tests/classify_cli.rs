//! `clip classify` end to end on the tiny-vit fixture, against the PyTorch reference.
//!
//! Goldens: `tests/data/zero_shot/tiny_vit_classify.json` from
//! `tools/gen_zero_shot_goldens.py`, which rebuilds the reference model behind
//! `tests/data/models/tiny-vit` (checked against its `golden/image_embeds.npy`) and computes
//! `model(image, clip.tokenize(labels)).softmax(-1)` (`--templates none`) and the notebook's
//! 80-template ensemble (`--templates imagenet`) on photos from `tests/data/images`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::model_dir;

/// Largest allowed |probability − reference|. ONNX Runtime's embeddings differ from
/// PyTorch's by ~1e-6 relative (MANIFEST.json); with a logit scale of 14.3 that moves
/// probabilities by well under 1e-5.
const PROB_TOL: f64 = 1e-5;

fn golden() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/zero_shot/tiny_vit_classify.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn image_path(name: &str) -> String {
    format!("{}/tests/data/images/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn classify(labels: &[String], extra: &[&str], images: &[String]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clip"));
    command
        .args([
            "classify",
            "--quiet",
            "--device",
            "cpu",
            "--threads",
            "2",
            "--batch-size",
            "4",
            "--model",
        ])
        .arg(model_dir("tiny-vit"));
    for label in labels {
        command.arg("--label").arg(label);
    }
    command.args(extra).args(images).output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn argmax(row: &[f64]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// Checks one output object against the reference row.
fn check(
    what: &str,
    object: &Value,
    image: &str,
    labels: &[String],
    reference: &Value,
    margin: f64,
) {
    assert_eq!(object["image"].as_str().unwrap(), image, "{what}: image");
    assert_eq!(strings(&object["labels"]), labels, "{what}: labels");
    let probs: Vec<f64> = object["probs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want: Vec<f64> = reference
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(probs.len(), want.len(), "{what}: number of probabilities");
    let diff = probs
        .iter()
        .zip(&want)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= PROB_TOL,
        "{what}: max |prob - reference| = {diff} > {PROB_TOL}\n  got  {probs:?}\n  want {want:?}"
    );
    assert!(
        (probs.iter().sum::<f64>() - 1.0).abs() < 1e-5,
        "{what}: probabilities sum to 1"
    );
    // Top-1 must agree wherever the reference's margin is above what the tolerance allows.
    if margin > 2.0 * PROB_TOL {
        assert_eq!(argmax(&probs), argmax(&want), "{what}: top-1");
    }
}

fn run_case(templates: &str, key: &str) {
    let g = golden();
    let labels = strings(&g["labels"]);
    let images: Vec<String> = strings(&g["photos"])
        .iter()
        .map(|p| image_path(p))
        .collect();
    let output = classify(&labels, &["--templates", templates], &images);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let objects = lines(&output);
    assert_eq!(objects.len(), images.len(), "one line per image");
    for (i, (object, image)) in objects.iter().zip(&images).enumerate() {
        let margin = g[format!("top1_margin_{key}")][i].as_f64().unwrap();
        check(
            &format!("--templates {templates}, {image}"),
            object,
            image,
            &labels,
            &g[format!("probs_{key}")][i],
            margin,
        );
    }
}

#[test]
fn classify_without_templates_matches_model_image_text_softmax() {
    run_case("none", "none");
}

#[test]
fn classify_with_imagenet_templates_matches_the_notebook_ensemble() {
    run_case("imagenet", "imagenet");
}

#[test]
fn classify_names_a_failing_image_and_keeps_the_others_in_order() {
    let g = golden();
    let labels = strings(&g["labels"]);
    let photos = strings(&g["photos"]);
    let bad = "no/such/image.jpg".to_owned();
    let images = vec![image_path(&photos[1]), bad.clone(), image_path(&photos[0])];
    let output = classify(&labels, &["--top-k", "2"], &images);
    assert!(
        !output.status.success(),
        "a failing image must fail the command"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&bad), "stderr names the image: {stderr}");
    let objects = lines(&output);
    assert_eq!(objects.len(), 2);
    for (object, golden_row) in objects.iter().zip([1usize, 0]) {
        let want = &g["probs_none"][golden_row];
        check(
            "partial",
            object,
            &image_path(&photos[golden_row]),
            &labels,
            want,
            g["top1_margin_none"][golden_row].as_f64().unwrap(),
        );
        // --top-k: the two most probable labels, most probable first.
        let top = object["top"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        let probs: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let best = argmax(&probs);
        assert_eq!(top[0]["index"].as_u64().unwrap() as usize, best);
        assert_eq!(top[0]["label"].as_str().unwrap(), labels[best]);
        assert!(top[0]["prob"].as_f64().unwrap() >= top[1]["prob"].as_f64().unwrap());
    }
}

#[test]
fn classify_rejects_bad_label_lists() {
    let image = vec![image_path("chelsea.png")];
    let dup = vec!["a cat".to_owned(), "a dog".to_owned(), "a cat".to_owned()];
    let output = classify(&dup, &[], &image);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("duplicate label \"a cat\" at positions 0 and 2"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    // Same text to CLIP's tokenizer (it lowercases): indistinguishable.
    let same = vec!["A Cat".to_owned(), "a cat".to_owned()];
    let output = classify(&same, &[], &image);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("same text after tokenizing"), "{stderr}");

    let output = classify(&[], &[], &image);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--label"), "{stderr}");

    let labels = vec!["a cat".to_owned(), "a dog".to_owned()];
    let output = classify(&labels, &["--template", "a photo"], &image);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no `{}` placeholder"), "{stderr}");
}
