//! The `clip` command line, end to end, against the PyTorch reference's goldens.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use ndarray::Array2;

use crate::support::{assert_close, model_dir, npy, TempDir};

fn clip() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip"))
}

fn run_with_stdin(mut command: Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The photos behind `tests/data/models/tiny-vit/inputs/pixel_values.npy`.
fn fixture_photos() -> Vec<PathBuf> {
    let names: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(model_dir("tiny-vit").join("inputs/photos.json")).unwrap(),
    )
    .unwrap();
    let images = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/images");
    names.iter().map(|n| images.join(n)).collect()
}

#[test]
fn embed_image_from_files_matches_the_reference() {
    // File bytes → exact preprocessing → ONNX Runtime, against
    // model.encode_image(preprocess(Image.open(f))) of the reference.
    let tmp = TempDir::new("cli-images");
    let out = tmp.join("images.npy");
    let output = clip()
        .args([
            "embed-image",
            "--quiet",
            "--device",
            "cpu",
            "--batch-size",
            "2",
            "--model",
        ])
        .arg(model_dir("tiny-vit"))
        .arg("--out")
        .arg(&out)
        .args(fixture_photos())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let actual: Array2<f32> = npy(out);
    let reference: Array2<f32> = npy(model_dir("tiny-vit").join("golden/image_embeds.npy"));
    assert_close(
        "embed-image",
        actual.view(),
        reference.view(),
        0.99999,
        1e-4,
    );
}

#[test]
fn embed_image_names_failures_and_keeps_going() {
    let tmp = TempDir::new("cli-partial");
    let out = tmp.join("partial.npy");
    let mut args = fixture_photos();
    args.insert(1, PathBuf::from("no/such/file.jpg"));
    let output = clip()
        .args(["embed-image", "--quiet", "--normalize", "--model"])
        .arg(model_dir("tiny-vit"))
        .arg("--out")
        .arg(&out)
        .args(&args)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no/such/file.jpg"), "{stderr}");
    let actual: Array2<f32> = npy(out);
    assert_eq!(actual.nrows(), 4);
    assert!(actual.row(1).iter().all(|v| v.is_nan()));
    for i in [0, 2, 3] {
        let norm: f32 = actual.row(i).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {i} norm {norm}");
    }
}

fn fixture_texts() -> Vec<String> {
    serde_json::from_str(
        &std::fs::read_to_string(model_dir("tiny-vit").join("inputs/texts.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn embed_text_matches_the_reference() {
    let texts = fixture_texts();
    let tmp = TempDir::new("cli-texts");
    let out = tmp.join("texts.npy");
    let mut command = clip();
    command
        .args([
            "embed-text",
            "--quiet",
            "--truncate",
            "--device",
            "cpu",
            "--model",
        ])
        .arg(model_dir("tiny-vit"))
        .arg("--out")
        .arg(&out);
    let output = run_with_stdin(command, format!("{}\n", texts.join("\n")).as_bytes());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let actual: Array2<f32> = npy(out);
    let reference: Array2<f32> = npy(model_dir("tiny-vit").join("golden/text_embeds.npy"));
    assert_close("embed-text", actual.view(), reference.view(), 0.99999, 1e-4);
}

#[test]
fn embed_text_without_truncate_names_the_long_line() {
    let texts = fixture_texts();
    let long_line = texts.iter().position(|t| t.len() > 300).unwrap() + 1;
    let tmp = TempDir::new("cli-texts-strict");
    let out = tmp.join("texts-strict.npy");
    let mut command = clip();
    command
        .args(["embed-text", "--quiet", "--model"])
        .arg(model_dir("tiny-vit"))
        .arg("--out")
        .arg(&out);
    let mut input = texts.join("\n").into_bytes();
    input.extend_from_slice(b"\n\xff\xfe not utf-8");
    let output = run_with_stdin(command, &input);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("line {long_line}:")), "{stderr}");
    assert!(
        stderr.contains(&format!("line {}: not valid UTF-8", texts.len() + 1)),
        "{stderr}"
    );
    let actual: Array2<f32> = npy(out);
    assert_eq!(actual.nrows(), texts.len() + 1);
    assert!(actual.row(long_line - 1).iter().all(|v| v.is_nan()));
    assert!(actual.row(0).iter().all(|v| v.is_finite()));
}

#[test]
fn missing_runtime_library_is_a_clear_error() {
    let tmp = TempDir::new("cli-never");
    let mut command = clip();
    command
        .args([
            "embed-text",
            "--quiet",
            "--ort-lib",
            "/nonexistent/libonnxruntime.so",
            "--model",
        ])
        .arg(model_dir("micro"))
        .arg("--out")
        .arg(tmp.join("never.npy"));
    let output = run_with_stdin(command, b"hello\n");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/libonnxruntime.so"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `clip demo` is the README's main command: on the bundled tiny model it embeds the six
/// bundled photos and captions and prints a 6 × 6 similarity matrix and a guess per photo.
#[test]
fn demo_runs_end_to_end_on_the_bundled_model() {
    let output = clip()
        .args(["demo", "--device", "cpu", "--threads", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("embedded 6 photos"), "{stdout}");
    assert!(stdout.contains("6 captions"), "{stdout}");
    // One matrix row of six signed cosines per photo, and one guess per photo.
    let matrix_rows = stdout
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .filter(|w| w.starts_with(['+', '-']))
                .count()
                == 6
        })
        .count();
    assert_eq!(matrix_rows, 6, "{stdout}");
    assert_eq!(stdout.matches(" → ").count(), 6, "{stdout}");
    assert!(
        stdout.contains("/6 photos matched their own caption"),
        "{stdout}"
    );
}
