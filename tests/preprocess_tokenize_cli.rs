//! `clip preprocess` and `clip tokenize` end to end. The library paths they call are checked
//! bit for bit against the reference's goldens in clip-preprocess's own tests; these check
//! that the command lines deliver exactly those results, and their error contracts.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clip_rs::preprocess::image::{PreprocessConfig, Preprocessor};
use clip_rs::Tokenizer;
use ndarray::Array3;

use crate::support::{npy, TempDir};

fn clip() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip"))
}

fn image(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/images")
        .join(name)
}

#[test]
fn preprocess_writes_exact_tensors_and_names_failures() {
    let tmp = TempDir::new("preprocess");
    // Not created beforehand: `clip preprocess` makes its --out directory.
    let out = tmp.join("out");
    let output = clip()
        .args(["preprocess", "--threads", "2", "--out"])
        .arg(&out)
        .arg(image("china.jpg"))
        .arg(image("missing.jpg"))
        .arg(image("thin_3x900.png"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.jpg"), "{stderr}");
    let pre = Preprocessor::new(PreprocessConfig::default());
    for name in ["china.jpg", "thin_3x900.png"] {
        let written: Array3<f32> = npy(out.join(format!("{name}.npy")));
        let expected = pre.preprocess_path(image(name)).unwrap();
        assert_eq!(written, expected, "{name}");
    }
    assert!(!out.join("missing.jpg.npy").exists());
}

/// Two inputs with one file name cannot share the output: the first keeps it, the second
/// is a named failure (before: with threads both wrote the same file at once, silently).
/// No temporary file is left behind.
#[test]
fn preprocess_refuses_a_second_input_with_the_same_file_name() {
    let tmp = TempDir::new("preprocess-same-name");
    let other = tmp.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(image("thin_3x900.png"), other.join("china.jpg")).unwrap();
    for threads in ["1", "2"] {
        // A fresh folder each time, so one run's outputs cannot stand in for the other's.
        let out = tmp.join(&format!("out{threads}"));
        let output = clip()
            .args(["preprocess", "--threads", threads, "--out"])
            .arg(&out)
            .arg(image("china.jpg"))
            .arg(other.join("china.jpg"))
            .output()
            .unwrap();
        assert!(!output.status.success(), "threads {threads}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&other.join("china.jpg").display().to_string())
                && stderr.contains("same file name"),
            "{stderr}"
        );
        let written: Array3<f32> = npy(out.join("china.jpg.npy"));
        let expected = Preprocessor::new(PreprocessConfig::default())
            .preprocess_path(image("china.jpg"))
            .unwrap();
        assert_eq!(written, expected, "threads {threads}");
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["china.jpg.npy"], "threads {threads}");
    }
}

fn tokenize(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = clip()
        .arg("tokenize")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn tokenize_prints_one_json_row_per_line() {
    let texts = [
        "a photo of a cat",
        "",
        "“Curly” &amp;amp; ﬁne ＡＢＣ",
        &"word ".repeat(100),
    ];
    let output = tokenize(
        &["--truncate"],
        format!("{}\n", texts.join("\n")).as_bytes(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Vec<i64>> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = Tokenizer::new().tokenize(&texts, 77, true).unwrap();
    assert_eq!(rows.len(), texts.len());
    for (row, want) in rows.iter().zip(expected.rows()) {
        assert_eq!(row.len(), 77);
        assert!(row
            .iter()
            .zip(want.iter())
            .all(|(a, b)| *a == i64::from(*b)));
    }
}

#[test]
fn tokenize_errors_name_the_line() {
    let long = "word ".repeat(100);
    let output = tokenize(&[], format!("fine\n{long}\n").as_bytes());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2"));
    let output = tokenize(&["--truncate"], b"fine\n\xff\xfe\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2"));
    let output = tokenize(
        &["--context-length", "10", "--truncate"],
        b"a b c d e f g h i j k l\n",
    );
    assert!(output.status.success());
    let row: Vec<i64> =
        serde_json::from_str(String::from_utf8(output.stdout).unwrap().trim()).unwrap();
    assert_eq!(row.len(), 10);
    assert_eq!(row[9], 49407);
}

/// A path to an endless stream that is no image is refused from its first bytes, not read
/// into memory until the process dies.
#[test]
fn preprocess_refuses_an_endless_non_image_stream_quickly() {
    let tmp = TempDir::new("preprocess-dev-zero");
    let mut child = clip()
        .args(["preprocess", "--threads", "1", "--out"])
        .arg(tmp.join("out"))
        .arg("/dev/zero")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("clip preprocess /dev/zero still running after 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("/dev/zero"), "{stderr}");
}
