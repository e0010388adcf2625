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
