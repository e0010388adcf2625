//! Hostile inputs (`tests/data/hostile/`, made by `tools/gen_hostile.py`): every file gives
//! the reference's verdict within a time bound — a typed error where Pillow raises, the
//! reference tensor bit for bit where Pillow opens the file — and hostile texts give
//! `clip.tokenize`'s ids. Memory under a hard limit is checked on the `clip` binary by
//! `tests/hostile_cli.rs` at the workspace root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clip_preprocess::image::{ImageError, PreprocessConfig, Preprocessor};
use clip_preprocess::tokenizer::{Tokenizer, TokenizerError, MAX_CONTEXT_LENGTH};
use sha2::{Digest, Sha256};

/// Per input. Generous for debug builds on a loaded 2-core machine; the slowest file
/// (`big_canvas.gif`, a 13000 × 13000 canvas) takes about a second in release.
const TIME_BOUND: Duration = Duration::from_secs(30);

/// Files the reference opens and clip-rs refuses, with why. The test checks that they stay
/// typed "bad input" errors (and notices when one starts to decode). Listed in
/// `tests/data/hostile/README.md`.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "truncated_frame.gif",
    "the LZW data stops before the frame is complete; Pillow keeps the partial frame, \
         the gif crate refuses it",
)];

fn hostile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/hostile")
}

/// `images.tsv`: (name, accepted by the reference, detail, sha256 or "-").
fn verdicts() -> Vec<(String, bool, String, String)> {
    let text = std::fs::read_to_string(hostile().join("images.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "bad line {l}");
            let accept = match f[1] {
                "accept" => true,
                "reject" => false,
                other => panic!("bad verdict {other}"),
            };
            (f[0].into(), accept, f[2].into(), f[3].into())
        })
        .collect()
}

fn sha256(t: &ndarray::Array3<f32>) -> String {
    let bytes: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn hostile_corpus_is_small_and_complete() {
    let files = verdicts();
    assert!(files.len() >= 60, "{} files", files.len());
    let mut total = 0;
    for entry in std::fs::read_dir(hostile()).unwrap() {
        total += entry.unwrap().metadata().unwrap().len();
    }
    assert!(total < 1 << 20, "tests/data/hostile holds {total} bytes");
    for (name, ..) in &files {
        assert!(hostile().join(name).is_file(), "{name} missing");
    }
    // Both verdicts occur, and every family the corpus promises is there.
    assert!(files.iter().any(|f| f.1) && files.iter().any(|f| !f.1));
    for prefix in [
        "empty.",
        "text.",
        "garbage.",
        "magic_garbage.",
        "truncated_",
        "bitflip",
        "bomb",
        "1x1.",
        "1x100000.",
        "animated",
    ] {
        assert!(
            files.iter().any(|f| f.0.starts_with(prefix)),
            "no {prefix}* file"
        );
    }
}

#[test]
fn hostile_images_give_the_reference_verdict_in_bounded_time() {
    let pre = Preprocessor::new(PreprocessConfig::default());
    let mut failures = Vec::new();
    for (name, accept, detail, digest) in verdicts() {
        let path = hostile().join(&name);
        let start = Instant::now();
        let result = pre.preprocess_path(&path);
        let elapsed = start.elapsed();
        if elapsed > TIME_BOUND {
            failures.push(format!("{name}: took {elapsed:?}"));
        }
        if let Some((_, why)) = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == name) {
            assert!(
                accept,
                "{name}: listed as a known difference but Pillow rejects it"
            );
            match result {
                Err(e) if e.is_bad_input() => continue,
                other => failures.push(format!("{name} ({why}): now gives {other:?}")),
            }
            continue;
        }
        match (accept, result) {
            (true, Ok(t)) => {
                if sha256(&t) != digest {
                    failures.push(format!("{name}: tensor differs from the reference"));
                }
            }
            (true, Err(e)) => failures.push(format!(
                "{name}: Pillow opens it ({detail}), clip-rs: {e:?}"
            )),
            (false, Ok(_)) => {
                failures.push(format!("{name}: Pillow raises {detail}, clip-rs accepts"))
            }
            (false, Err(e)) => {
                // Typed, naming the file, and classified: bad input, too large, or (a
                // header announcing a 0-pixel side) invalid dimensions.
                let ImageError::File { path: p, source } = &e else {
                    panic!("{name}: error without the file: {e:?}");
                };
                assert_eq!(p, &path);
                let dims = matches!(**source, ImageError::InvalidDimensions { .. });
                if !(e.is_bad_input() || e.is_too_large() || dims) {
                    failures.push(format!("{name}: unexpected error kind {source:?}"));
                }
                // JPEG, PNG and GIF bombs are caught by the limits from the header (BMP,
                // TIFF and WebP headers are refused by the `image` crate's own checks).
                let own_decoder = [".jpg", ".png", ".gif"].iter().any(|x| name.ends_with(x));
                if detail == "DecompressionBombError" && own_decoder && !e.is_too_large() {
                    failures.push(format!(
                        "{name}: bomb not reported as too large: {source:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_texts_give_the_reference_ids() {
    let tok = Tokenizer::new();
    let table = std::fs::read_to_string(hostile().join("texts.tsv")).unwrap();
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let (name, expected) = line.split_once('\t').unwrap();
        let bytes = std::fs::read(hostile().join("text").join(name)).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            assert_eq!(expected, "invalid-utf8", "{name}");
            continue;
        };
        assert_ne!(
            expected, "invalid-utf8",
            "{name}: the reference did not decode it"
        );
        let mut lines: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            lines.pop();
        }
        let rows: Vec<&str> = expected.split(' ').collect();
        assert_eq!(lines.len(), rows.len(), "{name}");
        let start = Instant::now();
        let ids = tok.tokenize(&lines, 77, true).unwrap();
        assert!(
            start.elapsed() < TIME_BOUND,
            "{name}: {:?}",
            start.elapsed()
        );
        for (i, (row, want)) in ids.rows().into_iter().zip(&rows).enumerate() {
            let want: Vec<i32> = want.split(',').map(|v| v.parse().unwrap()).collect();
            let got: Vec<i32> = row.iter().copied().take(want.len()).collect();
            assert_eq!(got, want, "{name} line {}", i + 1);
            assert!(
                row.iter().skip(want.len()).all(|&v| v == 0),
                "{name} padding"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} text files checked");
}

#[test]
fn ten_megabyte_text_is_bounded() {
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hostile().join("long_text.json")).unwrap())
            .unwrap();
    let unit = spec["unit"].as_str().unwrap();
    let bytes = spec["bytes"].as_u64().unwrap() as usize;
    let want: Vec<i32> = spec["truncated_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    let mut text = unit.repeat(bytes / unit.len() + 1);
    let mut cut = bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    assert!(text.len() >= 10 * 1024 * 1024 - 4);
    let tok = Tokenizer::new();

    let start = Instant::now();
    let row = tok.tokenize(&[&text], 77, true).unwrap();
    let got: Vec<i32> = row.row(0).iter().copied().collect();
    assert_eq!(&got[..want.len()], &want[..]);
    assert!(
        start.elapsed() < TIME_BOUND,
        "truncate: {:?}",
        start.elapsed()
    );

    // Without truncation the reference raises; the CLI's bounded path stops early.
    let start = Instant::now();
    let err = tok.tokenize(&[&text], 77, false).unwrap_err();
    assert!(matches!(err, TokenizerError::TooLong { tokens, .. } if tokens > 77));
    let err = tok.tokenize_row(&text, 77, false).unwrap_err();
    assert!(matches!(err, TokenizerError::TooLong { .. }));
    assert!(
        start.elapsed() < TIME_BOUND,
        "no truncate: {:?}",
        start.elapsed()
    );
}

#[test]
fn absurd_sizes_are_typed_errors() {
    let tok = Tokenizer::new();
    // Empty batches are fine.
    assert_eq!(tok.tokenize::<&str>(&[], 77, false).unwrap().dim(), (0, 77));
    // Context lengths that cannot be allocated are refused, not attempted.
    for context_length in [0, 1, MAX_CONTEXT_LENGTH + 1, 1 << 40, usize::MAX] {
        assert!(
            matches!(
                tok.tokenize(&["a cat"], context_length, true),
                Err(TokenizerError::ContextLength { .. })
            ),
            "{context_length}"
        );
        assert!(matches!(
            tok.tokenize_row("a cat", context_length, false),
            Err(TokenizerError::ContextLength { .. })
        ));
    }
    assert_eq!(
        tok.tokenize(&["a cat"], MAX_CONTEXT_LENGTH, false)
            .unwrap()
            .dim(),
        (1, MAX_CONTEXT_LENGTH)
    );

    // Output sides beyond MAX_IMAGE_SIZE are a configuration error, not an allocation.
    let valid = std::fs::read(hostile().join("valid.png")).unwrap();
    for side in [0, clip_preprocess::image::MAX_IMAGE_SIZE + 1, u32::MAX] {
        let pre = Preprocessor::new(PreprocessConfig::new(side, [0.0; 3], [1.0; 3]));
        assert!(
            matches!(
                pre.preprocess_bytes(&valid),
                Err(ImageError::InvalidConfig { .. })
            ),
            "{side}"
        );
        assert!(matches!(
            pre.preprocess_bytes_batch(&[&valid]),
            Err(ImageError::InvalidConfig { .. })
        ));
    }
    let pre = Preprocessor::new(PreprocessConfig::default());
    let none: [&[u8]; 0] = [];
    assert_eq!(
        pre.preprocess_bytes_batch(&none).unwrap().dim(),
        (0, 3, 224, 224)
    );
    let no_paths: [&str; 0] = [];
    assert_eq!(
        pre.preprocess_paths(&no_paths).unwrap().dim(),
        (0, 3, 224, 224)
    );
    // A raw RGB buffer whose dimensions overflow is refused before any allocation.
    assert!(pre.preprocess_rgb(&[0; 3], u32::MAX, u32::MAX).is_err());
}
