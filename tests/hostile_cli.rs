//! The `clip` binary on every hostile input (`tests/data/hostile/`) under a hard address
//! space limit (`prlimit --as`, 2 GiB) and a wall-clock limit (`timeout 20`): it must exit
//! normally (0 or 1) — never killed by a signal, the memory limit or the timeout — and reject
//! every file the reference (Pillow) rejects. Linux only; skipped with a message when
//! `prlimit` or `timeout` is missing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ndarray::Array3;
use ndarray_npy::ReadNpyExt;

const ADDRESS_SPACE: &str = "--as=2147483648";
const SECONDS: &str = "20";

/// Files Pillow opens and clip-rs refuses with a typed error (tests/data/hostile/README.md,
/// "Known differences"; checked in detail by clip-preprocess/tests/hostile.rs).
const KNOWN_DIFFERENCES: &[&str] = &["truncated_frame.gif"];

fn hostile() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile")
}

/// `prlimit` and `timeout` are usable (util-linux and coreutils).
fn limits_available() -> bool {
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: the limit test is Linux only");
        return false;
    }
    let ok = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for tool in ["prlimit", "timeout"] {
        if !ok(tool) {
            eprintln!("skipped: `{tool}` not found (install util-linux / coreutils)");
            return false;
        }
    }
    true
}

/// `prlimit --as=2GiB -- timeout 20 clip ARGS...`, with `stdin` piped in.
fn limited_clip(args: &[&str], files: &[&Path], stdin: &[u8]) -> Output {
    let mut child = Command::new("prlimit")
        .args([ADDRESS_SPACE, "--", "timeout", SECONDS])
        .arg(env!("CARGO_BIN_EXE_clip"))
        .args(args)
        .args(files)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // A child that exits early closes the pipe; that is not the test's concern.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// 0 or 1, and not the status of a signal, the timeout (124) or a SIGKILL (137).
fn normal_exit(what: &str, output: &Output) -> i32 {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some(code) = output.status.code() else {
        panic!(
            "{what}: killed by a signal ({:?}); stderr: {stderr}",
            output.status
        );
    };
    assert!(
        code == 0 || code == 1,
        "{what}: exit status {code} (124 = timeout, 128+n = signal n); stderr: {stderr}"
    );
    code
}

fn verdicts() -> Vec<(String, bool)> {
    std::fs::read_to_string(hostile().join("images.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_owned(), f[1] == "accept")
        })
        .collect()
}

#[test]
fn clip_preprocess_survives_hostile_images_under_limits() {
    if !limits_available() {
        return;
    }
    let out = std::env::temp_dir().join(format!("clip-rs-hostile-{}", std::process::id()));
    let pre = clip_rs::Preprocessor::new(Default::default());
    for (name, accept) in verdicts() {
        let path = hostile().join(&name);
        let output = limited_clip(
            &[
                "preprocess",
                "--threads",
                "2",
                "--out",
                out.to_str().unwrap(),
            ],
            &[&path],
            b"",
        );
        let code = normal_exit(&name, &output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if KNOWN_DIFFERENCES.contains(&name.as_str()) {
            assert_eq!(
                code, 1,
                "{name}: a known difference now decodes: update the lists"
            );
        } else if accept {
            assert_eq!(code, 0, "{name}: Pillow opens it, clip fails: {stderr}");
            // The written tensor is the library's (checked bit for bit against the
            // reference in clip-preprocess/tests/hostile.rs).
            let file = std::fs::File::open(out.join(format!("{name}.npy"))).unwrap();
            let written = Array3::<f32>::read_npy(file).unwrap();
            assert_eq!(written, pre.preprocess_path(&path).unwrap(), "{name}");
        } else {
            assert_eq!(code, 1, "{name}: Pillow rejects it, clip accepts it");
            assert!(
                stderr.contains(&name),
                "{name}: not named on stderr: {stderr}"
            );
        }
    }
    // Extreme aspect ratios resize to 224 × 22,400,000 before the crop; only the crop
    // window's resampling coefficients are computed, so they fit in 256 MiB of address space
    // (computing all of them took 1.7 GB and 5 s).
    for name in ["1x100000.png", "100000x1.png"] {
        let output = Command::new("prlimit")
            .args(["--as=268435456", "--", "timeout", "5"])
            .arg(env!("CARGO_BIN_EXE_clip"))
            .args([
                "preprocess",
                "--threads",
                "1",
                "--out",
                out.to_str().unwrap(),
            ])
            .arg(hostile().join(name))
            .output()
            .unwrap();
        assert_eq!(normal_exit(name, &output), 0, "{name} in 256 MiB / 5 s");
    }
    // Absurd sizes are refused up front.
    let valid = hostile().join("valid.png");
    for size in ["0", "4097", "4294967295"] {
        let output = limited_clip(
            &["preprocess", "--size", size, "--out", out.to_str().unwrap()],
            &[&valid],
            b"",
        );
        assert_eq!(normal_exit(size, &output), 1, "--size {size}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// The reference's rows for a text file (`texts.tsv`), padded to 77, as `clip tokenize`
/// prints them; `None` for invalid UTF-8.
fn expected_rows(name: &str) -> Option<String> {
    let table = std::fs::read_to_string(hostile().join("texts.tsv")).unwrap();
    let line = table
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .unwrap();
    let rows = line.split_once('\t').unwrap().1;
    if rows == "invalid-utf8" {
        return None;
    }
    let mut text = String::new();
    for row in rows.split(' ') {
        let mut ids: Vec<&str> = row.split(',').collect();
        ids.resize(77, "0");
        text.push('[');
        text.push_str(&ids.join(","));
        text.push_str("]\n");
    }
    Some(text)
}

#[test]
fn clip_tokenize_survives_hostile_texts_under_limits() {
    if !limits_available() {
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(hostile().join("text"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    for name in &names {
        let input = std::fs::read(hostile().join("text").join(name)).unwrap();
        let output = limited_clip(&["tokenize", "--truncate"], &[], &input);
        let code = normal_exit(name, &output);
        match expected_rows(name) {
            Some(rows) => {
                assert_eq!(
                    code,
                    0,
                    "{name}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                assert_eq!(String::from_utf8_lossy(&output.stdout), rows, "{name}");
            }
            None => {
                assert_eq!(code, 1, "{name}: invalid UTF-8 accepted");
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(stderr.contains("not valid UTF-8"), "{name}: {stderr}");
            }
        }
    }

    // A 10 MB line: truncated, the reference's row; untruncated, a "too long" error.
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hostile().join("long_text.json")).unwrap())
            .unwrap();
    let unit = spec["unit"].as_str().unwrap();
    let mut text = unit.repeat(10 * 1024 * 1024 / unit.len() + 1);
    text.push('\n');
    let output = limited_clip(&["tokenize", "--truncate"], &[], text.as_bytes());
    assert_eq!(normal_exit("10 MB --truncate", &output), 0);
    let mut want: Vec<String> = spec["truncated_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    want.resize(77, "0".into());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("[{}]\n", want.join(","))
    );
    let output = limited_clip(&["tokenize"], &[], text.as_bytes());
    assert_eq!(normal_exit("10 MB", &output), 1);
    assert!(String::from_utf8_lossy(&output.stderr).contains("too long"));

    // Context lengths that cannot be allocated are refused.
    for n in ["0", "1", "65537", "1000000000000", "18446744073709551615"] {
        let output = limited_clip(&["tokenize", "--context-length", n], &[], b"a cat\n");
        assert_eq!(normal_exit(n, &output), 1, "--context-length {n}");
    }
}
