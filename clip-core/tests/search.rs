//! `clip_core::search`: exact top-k against brute force, editing, the file format's
//! round trip and damage detection, and a writer killed mid-save.

// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use clip_core::search::{format, Dtype, FileMeta, Index, IndexError, ModelId, Upsert};
use ndarray::{Array1, ArrayView1};

/// SplitMix64: a tiny deterministic generator, so the test data is the same everywhere.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vector(&mut self, dim: usize) -> Array1<f32> {
        (0..dim).map(|_| self.uniform()).collect()
    }
}

fn model(dim: usize) -> ModelId {
    ModelId::new("test", dim, 0x1234_5678_9abc_def0)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-search-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn random_index(dtype: Dtype, n: usize, dim: usize, seed: u64) -> Index {
    let mut rng = Rng(seed);
    let mut index = Index::new(model(dim), dtype);
    for i in 0..n {
        let meta = FileMeta::new(
            i as u64 * 1000,
            SystemTime::UNIX_EPOCH + Duration::from_nanos(i as u64 * 1_000_000_007),
        );
        index
            .upsert(
                format!("img/{i:06}.jpg"),
                rng.vector(dim).view(),
                Some(meta),
            )
            .unwrap();
    }
    index
}

/// The brute-force answer: every stored vector (as stored, so f16 rounding included)
/// against the unit query, dot products in f64, sorted by score then storage order.
fn brute_force(index: &Index, query: ArrayView1<'_, f32>, k: usize) -> Vec<(String, f64)> {
    let norm = query
        .iter()
        .map(|&x| f64::from(x).powi(2))
        .sum::<f64>()
        .sqrt();
    let q: Vec<f32> = query
        .iter()
        .map(|&x| (f64::from(x) / norm) as f32)
        .collect();
    let mut all: Vec<(usize, String, f64)> = index
        .ids()
        .enumerate()
        .map(|(pos, id)| {
            let v = index.embedding(id).unwrap();
            let dot = v
                .iter()
                .zip(&q)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            (pos, id.to_owned(), dot)
        })
        .collect();
    all.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    all.into_iter().take(k).map(|(_, id, s)| (id, s)).collect()
}

fn assert_matches_brute_force(index: &Index, seed: u64) {
    let mut rng = Rng(seed);
    for k in [1usize, 10, 100] {
        let query = rng.vector(index.dim());
        let expected = brute_force(index, query.view(), k);
        for threads in [1, 2] {
            let hits = index.search_with_threads(query.view(), k, threads).unwrap();
            assert_eq!(hits.len(), k);
            let got: Vec<&str> = hits.iter().map(|h| h.id).collect();
            let want: Vec<&str> = expected.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(got, want, "{:?} k={k} threads={threads}", index.dtype());
            for (hit, (_, score)) in hits.iter().zip(&expected) {
                assert!(
                    (f64::from(hit.score) - score).abs() < 1e-5,
                    "{} vs {score}",
                    hit.score
                );
            }
        }
    }
}

#[test]
fn top_k_equals_brute_force_on_100k_f32() {
    let index = random_index(Dtype::F32, 100_000, 512, 1);
    assert_eq!(index.len(), 100_000);
    assert_matches_brute_force(&index, 101);
}

#[test]
fn top_k_equals_brute_force_on_100k_f16() {
    let index = random_index(Dtype::F16, 100_000, 512, 2);
    // Storage is the f16 rounding of the unit vector.
    let mut rng = Rng(2);
    let v = rng.vector(512);
    let norm = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let stored = index.embedding("img/000000.jpg").unwrap();
    for (s, x) in stored.iter().zip(&v) {
        assert_eq!(
            *s,
            half::f16::from_f32((f64::from(*x) / norm) as f32).to_f32()
        );
    }
    assert_matches_brute_force(&index, 202);
}

#[test]
fn upsert_and_remove_keep_ids_and_vectors_together() {
    let dim = 8;
    let mut index = Index::new(model(dim), Dtype::F32);
    let basis = |i: usize| {
        let mut v = Array1::<f32>::zeros(dim);
        v[i % dim] = 1.0 + i as f32; // normalised away
        v
    };
    for i in 0..6 {
        assert_eq!(
            index
                .upsert(format!("e{i}"), basis(i).view(), None)
                .unwrap(),
            Upsert::Added
        );
    }
    assert_eq!(index.len(), 6);
    // Update e1 to point where e5 points.
    assert_eq!(
        index.upsert("e1", basis(5).view(), None).unwrap(),
        Upsert::Updated
    );
    assert_eq!(index.len(), 6);
    let hits = index.search(basis(5).view(), 2).unwrap();
    assert_eq!(hits[0].id, "e1", "ties go to the earlier entry");
    assert_eq!(hits[1].id, "e5");
    assert!((hits[0].score - 1.0).abs() < 1e-6);
    // Remove from the middle (e5, the last, moves into its place) and the end.
    assert!(index.remove("e2"));
    assert!(!index.remove("e2"));
    assert!(index.remove("e4"));
    assert_eq!(index.len(), 4);
    assert!(!index.contains("e2"));
    let ids: Vec<&str> = index.ids().collect();
    assert_eq!(ids, ["e0", "e1", "e5", "e3"]);
    // Each id still finds its own vector first.
    for (id, axis) in [("e0", 0), ("e3", 3), ("e5", 5)] {
        let hits = index.search(basis(axis).view(), 1).unwrap();
        assert_eq!(hits[0].id, if id == "e5" { "e1" } else { id });
        assert_eq!(index.embedding(id).unwrap()[axis], 1.0, "{id}");
    }
    assert_eq!(index.retain(|id| id != "e0"), 1);
    assert_eq!(index.len(), 3);
    // k beyond the size returns everything, best first.
    let all = index.search(basis(3).view(), 100).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].id, "e3");
    assert!(index.search(basis(3).view(), 0).unwrap().is_empty());
}

#[test]
fn bad_embeddings_and_ids_are_typed_errors() {
    let mut index = Index::new(model(4), Dtype::F16);
    let err = index
        .upsert("a", ndarray::array![1.0f32, 2.0].view(), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::DimensionMismatch {
                expected: 4,
                actual: 2
            }
        ),
        "{err}"
    );
    let err = index
        .upsert("a", ndarray::array![0.0f32, 0.0, 0.0, 0.0].view(), None)
        .unwrap_err();
    assert!(matches!(err, IndexError::InvalidEmbedding { .. }), "{err}");
    let err = index
        .upsert("a", ndarray::array![f32::NAN, 0.0, 0.0, 1.0].view(), None)
        .unwrap_err();
    assert!(matches!(err, IndexError::InvalidEmbedding { .. }), "{err}");
    let err = index
        .upsert("", ndarray::array![1.0f32, 0.0, 0.0, 1.0].view(), None)
        .unwrap_err();
    assert!(matches!(err, IndexError::InvalidId { len: 0, .. }), "{err}");
    let err = index.search(ndarray::array![1.0f32].view(), 3).unwrap_err();
    assert!(matches!(err, IndexError::DimensionMismatch { .. }), "{err}");
    assert!(index.is_empty());
}

#[test]
fn save_and_load_round_trip_both_dtypes() {
    let dir = temp_dir("roundtrip");
    for dtype in [Dtype::F32, Dtype::F16] {
        let mut index = random_index(dtype, 300, 64, 3);
        index
            .upsert("no-meta ✓ ünïcode", Rng(9).vector(64).view(), None)
            .unwrap();
        index.remove("img/000010.jpg");
        let path = dir.join(format!("{dtype}.clipidx"));
        index.save(&path).unwrap();
        let loaded = Index::load_for(&path, &model(64)).unwrap();
        assert_eq!(loaded, index);
        assert_eq!(loaded.dtype(), dtype);
        assert_eq!(
            loaded.file_meta("img/000005.jpg"),
            index.file_meta("img/000005.jpg")
        );
        assert!(loaded.file_meta("img/000005.jpg").is_some());
        assert_eq!(loaded.file_meta("no-meta ✓ ünïcode"), None);
        let q = Rng(4).vector(64);
        assert_eq!(
            loaded.search(q.view(), 5).unwrap(),
            index.search(q.view(), 5).unwrap()
        );
        // Saving over an existing file replaces it and leaves no temporary file behind.
        loaded.save(&path).unwrap();
    }
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // An empty index round-trips too.
    let empty = Index::new(ModelId::new("ViT-B/32", 512, 7), Dtype::F16);
    empty.save(dir.join("empty")).unwrap();
    assert_eq!(Index::load(dir.join("empty")).unwrap(), empty);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn another_model_is_refused() {
    let dir = temp_dir("model");
    let path = dir.join("db");
    random_index(Dtype::F32, 3, 16, 5).save(&path).unwrap();
    let other = ModelId::new("test", 16, 1);
    let err = Index::load_for(&path, &other).unwrap_err();
    assert!(matches!(err, IndexError::ModelMismatch { .. }), "{err}");
    let config = clip_core::ModelConfig::new(16, 224, 2.0);
    assert_ne!(ModelId::from_config(&config), model(16));
    // Every field the embeddings depend on is part of the identity.
    let id = ModelId::from_config(&config);
    let mut other = config.clone();
    other.image_mean[2] += 1e-6;
    assert_ne!(ModelId::from_config(&other), id);
    let mut other = config.clone();
    other.context_length = 76;
    assert_ne!(ModelId::from_config(&other), id);
    let mut other = config.clone();
    other.logit_scale = 2.5;
    assert_ne!(ModelId::from_config(&other), id);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What `load` would refuse is refused by `save`, before anything is written: an
/// architecture name longer than the format holds (it used to be cut, possibly inside a
/// UTF-8 character, and the file then read back as another model or as damaged).
#[test]
fn save_refuses_what_load_would_refuse() {
    let dir = temp_dir("save-limits");
    let long = "é".repeat(600); // 1,200 bytes
    let index = Index::new(ModelId::new(long, 4, 1), Dtype::F32);
    let err = index.save(dir.join("db")).unwrap_err();
    assert!(err.to_string().contains("db"), "{err}");
    assert!(
        clip_core::error_chain(&err).contains("1200 bytes"),
        "{}",
        clip_core::error_chain(&err)
    );
    assert!(!dir.join("db").exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file left"
    );
    let fits = Index::new(ModelId::new("é".repeat(512), 4, 1), Dtype::F32);
    fits.save(dir.join("db")).unwrap();
    assert_eq!(Index::load(dir.join("db")).unwrap(), fits);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn small_file(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("small.clipidx");
    let mut index = random_index(Dtype::F16, 3, 8, 6);
    index.upsert("x", Rng(1).vector(8).view(), None).unwrap();
    index.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn truncated_files_are_detected() {
    let dir = temp_dir("truncated");
    let (path, bytes) = small_file(&dir);
    let cut = dir.join("cut");
    for len in (0..bytes.len()).step_by(1) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let err = Index::load(&cut).unwrap_err();
        assert!(
            matches!(err, IndexError::Truncated { .. }),
            "length {len}: {err}"
        );
        assert!(err.is_damaged());
    }
    // A byte too many is damage, too.
    let mut long = bytes.clone();
    long.push(0);
    std::fs::write(&cut, &long).unwrap();
    assert!(Index::load(&cut).unwrap_err().is_damaged());
    assert!(Index::load(&path).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn foreign_files_and_other_versions_are_detected() {
    let dir = temp_dir("foreign");
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/images/chelsea.png");
    let err = Index::load(&photo).unwrap_err();
    assert!(matches!(err, IndexError::NotAnIndex { .. }), "{err}");
    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "just some text, longer than a header would be ...........",
    )
    .unwrap();
    assert!(matches!(
        Index::load(&text).unwrap_err(),
        IndexError::NotAnIndex { .. }
    ));
    std::fs::write(&text, "x").unwrap();
    assert!(matches!(
        Index::load(&text).unwrap_err(),
        IndexError::NotAnIndex { .. }
    ));
    let err = Index::load(dir.join("missing")).unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let (_, bytes) = small_file(&dir);
    assert_eq!(bytes[..8], format::MAGIC);
    let mut v2 = bytes.clone();
    v2[8..12].copy_from_slice(&(format::FORMAT_VERSION + 1).to_le_bytes());
    std::fs::write(&text, &v2).unwrap();
    let err = Index::load(&text).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_flipped_byte_is_detected() {
    let dir = temp_dir("flip");
    let (_, bytes) = small_file(&dir);
    let damaged = dir.join("damaged");
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut copy = bytes.clone();
            copy[at] ^= mask;
            std::fs::write(&damaged, &copy).unwrap();
            let err = match Index::load(&damaged) {
                Ok(_) => panic!("byte {at} ^ {mask:#04x} was not detected"),
                Err(err) => err,
            };
            match at {
                0..8 => assert!(matches!(err, IndexError::NotAnIndex { .. }), "{at}: {err}"),
                8..12 => assert!(
                    matches!(err, IndexError::UnsupportedVersion { .. }),
                    "{at}: {err}"
                ),
                _ => assert!(err.is_damaged(), "byte {at} ^ {mask:#04x}: {err}"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Entries of the index the crash test's child writes (200 MB as f32 at dimension 512).
const CRASH_ROWS: usize = 100_000;
const CRASH_DIM: usize = 512;
const CRASH_ENV: &str = "CLIP_SEARCH_CRASH_DB";

/// Run by `a_writer_killed_mid_save_leaves_the_previous_index` as a child process: saves a
/// large index to `$CLIP_SEARCH_CRASH_DB`. Run alone (without the variable), it saves to a
/// temporary file and checks the round trip.
#[test]
#[ignore = "child process of a_writer_killed_mid_save_leaves_the_previous_index"]
fn crash_writer_child() {
    let index = random_index(Dtype::F32, CRASH_ROWS, CRASH_DIM, 77);
    match std::env::var_os(CRASH_ENV) {
        Some(path) => {
            eprintln!("child: saving");
            index.save(PathBuf::from(path)).unwrap();
        }
        None => {
            let dir = temp_dir("child");
            index.save(dir.join("db")).unwrap();
            assert_eq!(Index::load(dir.join("db")).unwrap(), index);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}

/// The temporary files a save leaves in `dir` while it runs, with their sizes.
fn temp_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
        .collect()
}

#[test]
fn a_writer_killed_mid_save_leaves_the_previous_index() {
    let dir = temp_dir("crash");
    let path = dir.join("photos.clipidx");
    let previous = random_index(Dtype::F32, 1_000, CRASH_DIM, 78);
    previous.save(&path).unwrap();
    // Bytes of the child's complete file: header (48 + 4 + 4) + entries + data + CRC.
    let full: u64 = 56
        + 4
        + (CRASH_ROWS * (25 + "img/000000.jpg".len())) as u64
        + (CRASH_ROWS * CRASH_DIM * 4) as u64
        + 4;
    // Kill at several moments: as soon as the temporary file appears, and a little later.
    for delay_ms in [0u64, 3, 15] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        let seen = loop {
            let temps = temp_files(&dir);
            if temps.iter().any(|(_, len)| *len > 0) {
                break temps;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child ended before writing"
            );
            assert!(Instant::now() < deadline, "the child never started writing");
            std::thread::sleep(Duration::from_micros(200));
        };
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs
        child.wait().unwrap();
        let (_, seen_len) = seen[0];
        assert!(
            seen_len < full,
            "the temporary file was complete before the kill"
        );
        // The kill landed before the rename: the target is the previous index, intact.
        let loaded =
            Index::load(&path).unwrap_or_else(|e| panic!("after kill at +{delay_ms} ms: {e}"));
        assert_eq!(loaded, previous, "after kill at +{delay_ms} ms");
        for (temp, _) in temp_files(&dir) {
            std::fs::remove_file(temp).unwrap();
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
