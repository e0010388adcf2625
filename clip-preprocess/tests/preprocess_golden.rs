//! Golden test: every image of `tests/data/images` must give the reference's
//! tensor bit for bit (SHA-256 of the little-endian f32 bytes, see
//! `tests/data/preprocess/README.md`). On failure the actual tensors are written
//! to a temporary folder and the first differing image is named with its maximum
//! difference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use clip_preprocess::image::{ImageError, Limits, PreprocessConfig, Preprocessor};
use ndarray::Array3;
use sha2::{Digest, Sha256};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

struct Golden {
    name: String,
    size: u32,
    mode: String,
    sha256: String,
}

fn goldens() -> Vec<Golden> {
    let path = data_dir().join("preprocess/goldens.tsv");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "bad goldens line: {l}");
            Golden {
                name: f[0].to_string(),
                size: f[1]
                    .parse()
                    .unwrap_or_else(|e| panic!("bad size in {l}: {e}")),
                mode: f[2].to_string(),
                sha256: f[4].to_string(),
            }
        })
        .collect()
}

fn le_bytes(t: &Array3<f32>) -> Vec<u8> {
    t.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn sha256_hex(t: &Array3<f32>) -> String {
    Sha256::digest(le_bytes(t))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn out_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-preprocess-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn config(size: u32) -> PreprocessConfig {
    let mut c = PreprocessConfig::default();
    c.image_size = size;
    c
}

/// Runs the whole corpus with one preprocessor configuration.
fn check_corpus(scalar: bool, jpeg_column_window: bool) {
    let goldens = goldens();
    assert!(goldens.len() >= 50, "corpus too small: {}", goldens.len());
    let mut failures = Vec::new();
    let mut identical = 0;
    for g in &goldens {
        let pre = Preprocessor::new(config(g.size))
            .with_scalar_kernels(scalar)
            .with_jpeg_column_window(jpeg_column_window);
        let path = data_dir().join("images").join(&g.name);
        let actual = match pre.preprocess_path(&path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!(
                    "{} (mode {}, size {}): error: {e} ({e:?})",
                    g.name, g.mode, g.size
                ));
                continue;
            }
        };
        assert_eq!(actual.shape(), &[3, g.size as usize, g.size as usize]);
        if sha256_hex(&actual) == g.sha256 {
            identical += 1;
            continue;
        }
        let written = out_dir().join(format!("{}.{}.npy", g.name, g.size));
        ndarray_npy::write_npy(&written, &actual)
            .unwrap_or_else(|e| panic!("write {}: {e}", written.display()));
        let full = data_dir().join(format!("preprocess/full/{}.npy", g.name));
        let max = if g.size == 224 && full.exists() {
            let reference: Array3<f32> = ndarray_npy::read_npy(&full)
                .unwrap_or_else(|e| panic!("read {}: {e}", full.display()));
            let d = reference
                .iter()
                .zip(actual.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            format!("max |difference| {d}")
        } else {
            format!(
                "for the max difference run `tools/gen_preprocess_goldens.py diff tests/data/images/{} {} --size {}`",
                g.name,
                written.display(),
                g.size
            )
        };
        failures.push(format!(
            "{} (mode {}, size {}): tensor differs; {max}; actual written to {}",
            g.name,
            g.mode,
            g.size,
            written.display()
        ));
    }
    eprintln!(
        "preprocess golden ({} kernels, JPEG column window {}): {identical}/{} bit-identical",
        if scalar { "scalar" } else { "auto" },
        if jpeg_column_window { "on" } else { "off" },
        goldens.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} images differ from the reference; first: {}\nall:\n{}",
        failures.len(),
        goldens.len(),
        failures[0],
        failures.join("\n")
    );
}

#[test]
fn corpus_is_bit_identical_to_reference() {
    check_corpus(false, true);
}

#[test]
fn corpus_is_bit_identical_with_scalar_kernels() {
    check_corpus(true, true);
}

/// The default decodes only the JPEG columns the resize reads; the whole-width decode
/// must match the reference too (it is the fallback when TurboJPEG refuses a window).
#[test]
fn corpus_is_bit_identical_with_whole_width_jpeg_decoding() {
    check_corpus(false, false);
}

#[test]
fn simd_kernels_match_scalar_on_many_sizes() {
    // The scalar resize is the oracle: the dispatched (SIMD) output must be
    // byte-identical on whole tensors, over many ratios, both pass orders, up and down.
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(
            Preprocessor::resize_kernels().starts_with("avx2"),
            "AVX2 CPU but the AVX2 kernels are not dispatched: {}",
            Preprocessor::resize_kernels()
        );
    }
    eprintln!(
        "resize kernels under test: {}",
        Preprocessor::resize_kernels()
    );
    for name in ["china.jpg", "rgba.png", "wide_2000x300.jpg", "l.png"] {
        let path = data_dir().join("images").join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for size in [1u32, 7, 64, 100, 213, 224, 225, 300, 427, 500, 641, 900] {
            let auto = Preprocessor::new(config(size)).preprocess_bytes(&bytes);
            let scalar = Preprocessor::new(config(size))
                .with_scalar_kernels(true)
                .preprocess_bytes(&bytes);
            let (auto, scalar) = match (auto, scalar) {
                (Ok(a), Ok(s)) => (a, s),
                (a, s) => panic!("{name} size {size}: {a:?} / {s:?}"),
            };
            assert_eq!(
                le_bytes(&auto),
                le_bytes(&scalar),
                "{name} size {size}: SIMD differs from scalar"
            );
        }
    }
}

fn bad(name: &str) -> Result<Array3<f32>, ImageError> {
    Preprocessor::new(PreprocessConfig::default())
        .preprocess_path(data_dir().join("images/bad").join(name))
}

#[test]
fn bad_inputs_give_typed_errors() {
    for name in [
        "empty.jpg",
        "text.jpg",
        "truncated.jpg",
        "header_only.jpg",
        "truncated.png",
        "corrupt.png",
    ] {
        let e = bad(name).expect_err(name);
        assert!(e.is_bad_input(), "{name}: {e:?}");
        assert!(
            e.to_string().contains(name),
            "{name}: the message must name the file: {e}"
        );
    }
    let pre = Preprocessor::new(PreprocessConfig::default());
    assert!(matches!(pre.preprocess_bytes(b""), Err(ImageError::Empty)));
    assert!(matches!(
        pre.preprocess_bytes(b"GIF89a"),
        Err(ImageError::Decode { .. })
    ));
    assert!(matches!(
        pre.preprocess_bytes(b"hello"),
        Err(ImageError::UnsupportedFormat { .. })
    ));
    let e = bad("missing.jpg").expect_err("missing");
    assert!(matches!(e, ImageError::Io { .. }), "{e:?}");
}

#[test]
fn decompression_bomb_is_refused_from_the_header() {
    let start = std::time::Instant::now();
    let e = bad("bomb_100000x100000.png").expect_err("bomb");
    assert!(e.is_too_large(), "{e:?}");
    let ImageError::File { source, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(
            **source,
            ImageError::TooLarge {
                width: 100_000,
                height: 100_000,
                limit: Limits::PILLOW_MAX_PIXELS
            }
        ),
        "{source:?}"
    );
    assert!(
        start.elapsed().as_secs_f64() < 1.0,
        "took {:?}",
        start.elapsed()
    );
    // The limit is configurable: a tight limit refuses an ordinary photo.
    let tight = Preprocessor::new(PreprocessConfig::default())
        .with_limits(Limits::new().with_max_pixels(1000));
    let e = tight
        .preprocess_path(data_dir().join("images/china.jpg"))
        .expect_err("limit");
    assert!(e.is_too_large(), "{e:?}");
}

#[test]
fn rgb_buffer_and_dynamic_image_match_the_file_path() {
    let path = data_dir().join("images/rgb.png");
    let pre = Preprocessor::new(PreprocessConfig::default());
    let from_file = pre.preprocess_path(&path).unwrap();
    let img = image::open(&path).unwrap();
    let rgb = img.to_rgb8();
    let from_rgb = pre
        .preprocess_rgb(rgb.as_raw(), rgb.width(), rgb.height())
        .unwrap();
    let from_img = pre.preprocess_image(&img).unwrap();
    assert_eq!(le_bytes(&from_file), le_bytes(&from_rgb));
    assert_eq!(le_bytes(&from_file), le_bytes(&from_img));
    assert!(matches!(
        pre.preprocess_rgb(&[0u8; 5], 2, 1),
        Err(ImageError::BufferSize {
            expected: 6,
            actual: 5,
            ..
        })
    ));
    let mut wrong = Array3::<f32>::zeros((3, 10, 10));
    let bytes = std::fs::read(&path).unwrap();
    assert!(matches!(
        pre.preprocess_bytes_into(&bytes, wrong.view_mut()),
        Err(ImageError::BufferSize { .. })
    ));
}

#[test]
fn batch_rows_equal_single_images() {
    let dir = data_dir().join("images");
    let paths: Vec<PathBuf> = ["china.jpg", "p.png", "cmyk.jpg"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    let pre = Preprocessor::new(PreprocessConfig::default());
    let batch = pre.preprocess_paths(&paths).unwrap();
    assert_eq!(batch.shape(), &[3, 3, 224, 224]);
    for (i, p) in paths.iter().enumerate() {
        let one = pre.preprocess_path(p).unwrap();
        assert_eq!(batch.index_axis(ndarray::Axis(0), i), one);
    }
}

/// Max and mean absolute difference between two tensors.
fn deviation(a: &Array3<f32>, b: &Array3<f32>) -> (f32, f64) {
    let mut max = 0.0f32;
    let mut sum = 0.0f64;
    for (x, y) in a.iter().zip(b.iter()) {
        let d = (x - y).abs();
        max = max.max(d);
        sum += f64::from(d);
    }
    (max, sum / a.len() as f64)
}

#[test]
fn throughput_mode_deviation_is_bounded() {
    use clip_preprocess::image::Fidelity;
    let exact = Preprocessor::new(PreprocessConfig::default());
    let fast = exact.clone().with_fidelity(Fidelity::Throughput);
    // A large photo: china.jpg upscaled to 2816x1880 and re-encoded (q90, 4:2:0).
    let decoded = turbojpeg::decompress(
        &std::fs::read(data_dir().join("images/china.jpg")).unwrap(),
        turbojpeg::PixelFormat::RGB,
    )
    .unwrap();
    let china =
        image::RgbImage::from_raw(decoded.width as u32, decoded.height as u32, decoded.pixels)
            .unwrap();
    let big = image::imageops::resize(&china, 2816, 1880, image::imageops::FilterType::CatmullRom);
    let big_jpeg = turbojpeg::compress(
        turbojpeg::Image {
            pixels: big.as_raw().as_slice(),
            width: 2816,
            pitch: 2816 * 3,
            height: 1880,
            format: turbojpeg::PixelFormat::RGB,
        },
        90,
        turbojpeg::Subsamp::Sub2x2,
    )
    .unwrap();
    let retina = std::fs::read(data_dir().join("images/retina.jpg")).unwrap();
    for (name, bytes) in [
        ("retina.jpg (1/2)", retina.as_slice()),
        ("2816x1880 (1/4)", &big_jpeg[..]),
    ] {
        let e = exact.preprocess_bytes(bytes).unwrap();
        let f = fast.preprocess_bytes(bytes).unwrap();
        let (max, mean) = deviation(&e, &f);
        eprintln!("throughput vs exact, {name}: max |diff| {max:.4}, mean |diff| {mean:.5}");
        assert!(
            max > 0.0,
            "{name}: throughput mode should take the downscaled path"
        );
        assert!(
            max < 1.0 && mean < 0.02,
            "{name}: deviation too large: max {max}, mean {mean}"
        );
    }
    // Small inputs are untouched: still exact.
    let small = std::fs::read(data_dir().join("images/china.jpg")).unwrap();
    assert_eq!(
        le_bytes(&exact.preprocess_bytes(&small).unwrap()),
        le_bytes(&fast.preprocess_bytes(&small).unwrap())
    );
}

#[test]
fn mutated_files_never_panic() {
    // Deterministic byte mutations and truncations of one file per format: every
    // outcome must be a tensor or a typed error (a panic fails the test).
    let pre = Preprocessor::new(PreprocessConfig::default());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0, 0);
    for name in [
        "china_420.jpg",
        "cmyk.jpg",
        "p_trns.png",
        "rgb16.png",
        "p.gif",
        "rgb.bmp",
        "rgb.tif",
        "lossless.webp",
    ] {
        let original = std::fs::read(data_dir().join("images").join(name)).unwrap();
        for i in 0..60 {
            let mut bytes = original.clone();
            if i % 3 == 0 {
                let cut = (next() as usize) % bytes.len();
                bytes.truncate(cut);
            } else {
                for _ in 0..1 + i % 8 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
            }
            match pre.preprocess_bytes(&bytes) {
                Ok(t) => {
                    assert_eq!(t.shape(), &[3, 224, 224]);
                    ok += 1;
                }
                Err(_) => err += 1,
            }
        }
    }
    eprintln!("mutated inputs: {ok} decoded, {err} typed errors");
    assert!(err > 0);
}
