//! `clip index` and `clip search` end to end on the tiny-vit fixture: incremental
//! re-indexing, results equal to brute-force cosines of `clip embed-*`, damaged and
//! foreign databases, and another model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ndarray::{Array2, Axis};

use crate::support::{model_dir, npy};

/// Photos copied into the indexed folder (under these names).
const PHOTOS: [(&str, &str); 6] = [
    ("chelsea.png", "cat.png"),
    ("china.jpg", "temple.jpg"),
    ("flower.jpg", "flower.jpg"),
    ("horse.png", "sub/horse.png"),
    ("rocket.jpg", "sub/rocket.jpg"),
    ("coins.png", "sub/deeper/coins.png"),
];

fn clip() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clip"));
    command.stdin(Stdio::null());
    command
}

fn model_args(model: &str) -> Vec<String> {
    vec![
        "--quiet".into(),
        "--device".into(),
        "cpu".into(),
        "--threads".into(),
        "2".into(),
        "--batch-size".into(),
        "4".into(),
        "--model".into(),
        model_dir(model).display().to_string(),
    ]
}

fn images_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/images")
}

/// A fresh folder of photos and a path for the database beside it.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let base =
        std::env::temp_dir().join(format!("clip-rs-search-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let photos = base.join("photos");
    for (source, target) in PHOTOS {
        let target = photos.join(target);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(images_dir().join(source), target).unwrap();
    }
    // Not an image extension: ignored.
    std::fs::write(photos.join("notes.txt"), "not an image").unwrap();
    let photos = photos.canonicalize().unwrap();
    (base.clone(), photos, base.join("photos.clipidx"))
}

fn index(db: &Path, folder: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let output = clip()
        .arg("index")
        .args(model_args("tiny-vit"))
        .arg("--db")
        .arg(db)
        .args(extra)
        .arg(folder)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (output, summary)
}

fn counts(summary: &serde_json::Value) -> [u64; 6] {
    [
        "added", "updated", "skipped", "removed", "failed", "entries",
    ]
    .map(|key| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {summary}"))
    })
}

fn search(model: &str, db: &Path, query: &[&str]) -> Output {
    clip()
        .arg("search")
        .args(model_args(model))
        .arg("--db")
        .arg(db)
        .args(query)
        .output()
        .unwrap()
}

/// `(id, score)` per JSON line, checking the ranks.
fn hits(output: &Output) -> Vec<(String, f64)> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["rank"].as_u64(), Some(i as u64 + 1), "{line}");
            (
                v["id"].as_str().unwrap().to_owned(),
                v["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Unit-length embeddings of `files` from `clip embed-image --normalize`.
fn embed_images(files: &[PathBuf], out: &Path) -> Array2<f32> {
    let output = clip()
        .arg("embed-image")
        .args(model_args("tiny-vit"))
        .arg("--normalize")
        .arg("--out")
        .arg(out)
        .args(files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    npy(out.to_owned())
}

fn embed_text(text: &str, out: &Path) -> Array2<f32> {
    let mut child = clip()
        .arg("embed-text")
        .args(model_args("tiny-vit"))
        .arg("--normalize")
        .arg("--out")
        .arg(out)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    npy(out.to_owned())
}

/// Brute-force ranking of `files` by cosine with `query` (all unit length).
fn brute_force(
    files: &[PathBuf],
    embeds: &Array2<f32>,
    query: ndarray::ArrayView1<'_, f32>,
) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = files
        .iter()
        .zip(embeds.axis_iter(Axis(0)))
        .map(|(f, e)| {
            let dot = e
                .iter()
                .zip(query)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            (f.display().to_string(), dot)
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all
}

fn assert_same_ranking(actual: &[(String, f64)], expected: &[(String, f64)]) {
    let ids = |v: &[(String, f64)]| v.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(actual), ids(expected));
    for ((id, a), (_, e)) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 1e-5, "{id}: score {a} vs brute force {e}");
    }
}

#[test]
fn index_search_and_reindex_incrementally() {
    let (base, photos, db) = setup("main");
    let files: Vec<PathBuf> = PHOTOS.iter().map(|(_, t)| photos.join(t)).collect();

    let (output, summary) = index(&db, &photos, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(counts(&summary), [6, 0, 0, 0, 0, 6], "{summary}");
    assert!(summary["images_per_s"].as_f64().unwrap() > 0.0);

    // Unchanged: everything is skipped and the file is not rewritten.
    let before = std::fs::read(&db).unwrap();
    let (output, summary) = index(&db, &photos, &[]);
    assert!(output.status.success());
    assert_eq!(counts(&summary), [0, 0, 6, 0, 0, 6], "{summary}");
    assert_eq!(std::fs::read(&db).unwrap(), before);

    // Search by image and by text: the ranking and scores of brute-force cosines.
    let embeds = embed_images(&files, &base.join("embeds.npy"));
    let by_image = hits(&search(
        "tiny-vit",
        &db,
        &["-k", "6", "--image", files[3].to_str().unwrap()],
    ));
    assert_eq!(by_image[0].0, files[3].display().to_string());
    assert!((by_image[0].1 - 1.0).abs() < 1e-5, "{by_image:?}");
    assert_same_ranking(&by_image, &brute_force(&files, &embeds, embeds.row(3)));
    let text = embed_text("a photo of a cat", &base.join("text.npy"));
    let by_text = hits(&search("tiny-vit", &db, &["-k", "3", "a photo of a cat"]));
    assert_same_ranking(&by_text, &brute_force(&files, &embeds, text.row(0))[..3]);

    // Change one file, delete one, add a broken one: updated, removed, failed (named).
    std::fs::copy(images_dir().join("camera.png"), &files[0]).unwrap();
    std::fs::remove_file(&files[4]).unwrap();
    std::fs::write(
        photos.join("broken.jpg"),
        b"\xff\xd8\xff\xe0 not really a jpeg",
    )
    .unwrap();
    let (output, summary) = index(&db, &photos, &["--dtype", "f16"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    assert_eq!(counts(&summary), [0, 1, 4, 1, 1, 5], "{summary}");
    let all = hits(&search(
        "tiny-vit",
        &db,
        &["-k", "100", "--image", files[0].to_str().unwrap()],
    ));
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].0, files[0].display().to_string());
    assert!(all
        .iter()
        .all(|(id, _)| *id != files[4].display().to_string()));
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn damaged_foreign_and_other_model_databases_are_refused() {
    let (base, photos, db) = setup("damaged");
    let (output, _) = index(&db, &photos, &["--dtype", "f16"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let good = std::fs::read(&db).unwrap();

    // Another model with the same configuration but other weights.
    let output = search("tiny-vit-fp16", &db, &["a cat"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("built with model"), "{stderr}");

    // A flipped byte in the embeddings, a cut-off file, a foreign file.
    let mut flipped = good.clone();
    let at = flipped.len() - 20;
    flipped[at] ^= 0x10;
    let cut = good[..good.len() / 2].to_vec();
    let foreign = std::fs::read(images_dir().join("chelsea.png")).unwrap();
    for (what, bytes, message) in [
        ("flipped", flipped, "checksum"),
        ("truncated", cut, "truncated"),
        ("foreign", foreign, "not a clip-rs search index"),
    ] {
        std::fs::write(&db, &bytes).unwrap();
        let output = search("tiny-vit", &db, &["a cat"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}");
        assert!(
            output.stdout.is_empty(),
            "{what}: no results from a damaged index"
        );
        assert!(stderr.contains(message), "{what}: {stderr}");
        // Indexing refuses too, and leaves the file as it was.
        let (output, _) = index(&db, &photos, &[]);
        assert_eq!(output.status.code(), Some(1), "{what}");
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes,
            "{what}: the file was changed"
        );
    }
    std::fs::remove_dir_all(&base).unwrap();
}

/// The image tower is created beside the first images' decoding: a broken one fails the
/// run naming its file, and a new database is not written (nothing was embedded).
#[test]
fn broken_image_tower_fails_without_writing_a_new_database() {
    let (base, photos, db) = setup("broken-tower");
    let output = clip()
        .arg("index")
        .args(model_args("broken/not-onnx"))
        .arg("--db")
        .arg(&db)
        .arg(&photos)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("visual.onnx"), "{stderr}");
    assert!(!db.exists(), "a database was written for a broken model");
    std::fs::remove_dir_all(&base).unwrap();
}
