//! Broken models and bad inputs give typed errors that say what to do, never panics.
//!
//! Towers are created on first use by default; with `with_eager_loading(true)` every error
//! comes from `OrtEncoder::load` (the contract these tests held before lazy loading), and
//! in the default mode the same typed errors come from `load_image_tower` /
//! `load_text_tower` or from the first call that needs the broken tower.

use clip_rs::{Encoder, OrtEncoder, OrtError};
use ndarray::{Array2, Array4};

use crate::support::{chain, cpu_options, load, model_dir};

fn load_err(case: &str) -> OrtError {
    let options = cpu_options().with_eager_loading(true);
    match OrtEncoder::load(model_dir(&format!("broken/{case}")), &options) {
        Ok(_) => panic!("broken/{case} loaded"),
        Err(err) => err,
    }
}

#[test]
fn corrupt_or_missing_model_files() {
    for case in ["truncated-onnx", "not-onnx"] {
        let err = load_err(case);
        assert!(
            matches!(err, OrtError::Session { .. }),
            "{case}: {}",
            chain(&err)
        );
        assert!(
            chain(&err).contains("visual.onnx"),
            "{case}: {}",
            chain(&err)
        );
    }
    let err = load_err("missing-textual");
    assert!(
        matches!(err, OrtError::UnknownLayout { .. }),
        "{}",
        chain(&err)
    );
    assert!(chain(&err).contains("textual.onnx"));
    let err = load_err("missing-config");
    assert!(
        matches!(err, OrtError::UnknownLayout { .. }),
        "{}",
        chain(&err)
    );
    let err = OrtEncoder::load(model_dir("does-not-exist"), &cpu_options()).unwrap_err();
    assert!(
        matches!(err, OrtError::UnknownLayout { .. }),
        "{}",
        chain(&err)
    );
}

#[test]
fn bad_configs() {
    for case in ["invalid-config-json", "unknown-format"] {
        let err = load_err(case);
        assert!(
            matches!(err, OrtError::Config(_)),
            "{case}: {}",
            chain(&err)
        );
    }
    // Which file holds the bad value is part of the message.
    let unknown = chain(&load_err("unknown-format"));
    assert!(unknown.contains("clip-rs/999"), "{unknown}");
    assert!(
        unknown.contains("unknown-format/clip_config.json"),
        "{unknown}"
    );
    for (case, word) in [
        ("config-embed-dim-mismatch", "embed_dim"),
        ("config-image-size-mismatch", "image_size"),
    ] {
        let err = load_err(case);
        assert!(
            matches!(err, OrtError::ConfigMismatch { .. }),
            "{case}: {}",
            chain(&err)
        );
        assert!(chain(&err).contains(word), "{case}: {}", chain(&err));
    }
}

#[test]
fn unexpected_signatures() {
    for (case, word) in [
        ("wrong-input-name", "pixel_values"),
        ("wrong-output-name", "text_embeds"),
        ("wrong-input-rank", "rank"),
    ] {
        let err = load_err(case);
        assert!(
            matches!(err, OrtError::ModelSignature { .. }),
            "{case}: {}",
            chain(&err)
        );
        assert!(chain(&err).contains(word), "{case}: {}", chain(&err));
    }
}

/// In the default (lazy) mode, layout and configuration errors still come from `load`; a
/// broken tower fails `load_*_tower` and every call that needs it with the same typed error,
/// and does not stop the other tower from working.
#[test]
fn lazy_towers_report_the_same_typed_errors_at_first_use() {
    for case in [
        "missing-textual",
        "missing-config",
        "invalid-config-json",
        "unknown-format",
    ] {
        assert!(
            OrtEncoder::load(model_dir(&format!("broken/{case}")), &cpu_options()).is_err(),
            "{case}"
        );
    }
    let backend_error = |err: clip_rs::Error| -> OrtError {
        match err {
            clip_rs::Error::Backend(inner) => match inner.downcast::<OrtError>() {
                Ok(ort) => *ort,
                Err(other) => panic!("not an OrtError: {other}"),
            },
            other => panic!("not a backend error: {other}"),
        }
    };
    let mut tokens = Array2::<i32>::zeros((1, 77));
    tokens[[0, 1]] = 9;
    for (case, image_broken) in [
        ("truncated-onnx", true),
        ("wrong-input-name", true),
        ("config-image-size-mismatch", true),
        ("wrong-output-name", false),
    ] {
        let encoder = OrtEncoder::load(model_dir(&format!("broken/{case}")), &cpu_options())
            .unwrap_or_else(|e| panic!("{case}: lazy load failed: {}", chain(&e)));
        let size = encoder.config().image_size as usize;
        let pixels = Array4::<f32>::zeros((1, 3, size, size));
        let eager = load_err(case);
        let same_kind = |err: &OrtError| {
            assert_eq!(
                std::mem::discriminant(err),
                std::mem::discriminant(&eager),
                "{case}: {} vs {}",
                chain(err),
                chain(&eager)
            );
        };
        let (broken, working) = if image_broken {
            (encoder.load_image_tower(), encoder.load_text_tower())
        } else {
            (encoder.load_text_tower(), encoder.load_image_tower())
        };
        same_kind(
            &broken
                .err()
                .unwrap_or_else(|| panic!("{case}: broken tower loaded")),
        );
        assert!(working.is_ok(), "{case}: the other tower must load");
        // Every call that needs the broken tower gets the same error (a failed creation is
        // retried, never remembered as success).
        for _ in 0..2 {
            let call = if image_broken {
                encoder.encode_image_batch(pixels.view()).map(|_| ())
            } else {
                encoder.encode_text_batch(tokens.view()).map(|_| ())
            };
            same_kind(&backend_error(
                call.err().unwrap_or_else(|| panic!("{case}: ran")),
            ));
        }
    }
}

/// The optimized-model cache: a second load is served from it with identical results, and
/// a corrupt or stale entry is never used.
#[test]
fn model_cache_gives_identical_results_and_survives_corruption() {
    let cache = std::env::temp_dir().join(format!("clip-rs-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let options = cpu_options().with_model_cache(&cache);
    let pixels = Array4::<f32>::from_shape_fn((2, 3, 32, 32), |(n, c, y, x)| {
        ((n * 7 + c * 5 + y * 3 + x) % 17) as f32 / 17.0 - 0.5
    });
    let mut tokens = Array2::<i32>::zeros((2, 77));
    for (row, eot) in [(0, 3), (1, 6)] {
        for col in 1..eot {
            tokens[[row, col]] = (row + col) as i32 % 8 + 1;
        }
        tokens[[row, eot]] = 9;
    }
    let run = |options: &clip_rs::OrtOptions| {
        let encoder = OrtEncoder::load(model_dir("micro"), options).unwrap();
        (
            encoder.encode_image_batch(pixels.view()).unwrap(),
            encoder.encode_text_batch(tokens.view()).unwrap(),
        )
    };
    let reference = run(&cpu_options());
    let entries = |ext: &str| -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(&cache)
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == ext))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    };
    // First load writes one entry per tower; the second is served from them.
    assert_eq!(run(&options), reference);
    assert_eq!(entries("onnx").len(), 2, "{:?}", entries("onnx"));
    assert_eq!(entries("json").len(), 2);
    assert_eq!(run(&options), reference);
    // Corrupt one cached graph (same size, one byte flipped) and truncate the other: both
    // are detected by their checksums, the model loads normally, and the entries are rewritten.
    let graphs = entries("onnx");
    let mut bytes = std::fs::read(&graphs[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&graphs[0], &bytes).unwrap();
    let other = std::fs::read(&graphs[1]).unwrap();
    std::fs::write(&graphs[1], &other[..other.len() / 3]).unwrap();
    assert_eq!(run(&options), reference);
    assert_eq!(
        std::fs::metadata(&graphs[1]).unwrap().len(),
        other.len() as u64,
        "entry rewritten"
    );
    // A manifest that is not JSON is ignored too.
    for manifest in entries("json") {
        std::fs::write(manifest, "{").unwrap();
    }
    assert_eq!(run(&options), reference);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn bad_inputs_are_rejected_before_running() {
    let encoder = load("micro");
    let wrong_size = Array4::<f32>::zeros((1, 3, 16, 16));
    assert!(matches!(
        encoder.encode_image_batch(wrong_size.view()),
        Err(clip_rs::Error::InvalidInput { .. })
    ));
    let out_of_vocab = Array2::<i32>::from_elem((1, 77), 10);
    assert!(matches!(
        encoder.encode_text_batch(out_of_vocab.view()),
        Err(clip_rs::Error::InvalidInput { .. })
    ));
    let too_wide = Array2::<i32>::zeros((1, 78));
    assert!(matches!(
        encoder.encode_text_batch(too_wide.view()),
        Err(clip_rs::Error::InvalidInput { .. })
    ));
    let empty = Array4::<f32>::zeros((0, 3, 32, 32));
    assert_eq!(
        encoder.encode_image_batch(empty.view()).unwrap().dim(),
        (0, 8)
    );
}

#[test]
fn strict_devices_fail_clearly_on_a_cpu_only_runtime() {
    use clip_rs::{Device, Provider};
    // With PyPI's CPU-only onnxruntime (CI), a strict GPU device is a clear error; with a
    // GPU build that works, it must report that very provider.
    for (device, provider) in [
        (Device::Cuda, Provider::Cuda),
        (Device::TensorRt, Provider::TensorRt),
    ] {
        match OrtEncoder::load(model_dir("micro"), &cpu_options().with_device(device)) {
            Ok(encoder) => assert_eq!(encoder.provider(), provider),
            Err(err) => {
                assert!(
                    matches!(err, OrtError::ProviderUnavailable { .. }),
                    "{}",
                    chain(&err)
                );
                assert!(chain(&err).contains(provider.name()), "{}", chain(&err));
            }
        }
    }
    let auto =
        OrtEncoder::load(model_dir("micro"), &cpu_options().with_device(Device::Auto)).unwrap();
    assert!(auto.describe().contains(auto.provider().name()));
}

/// A process loads ONNX Runtime once: an encoder naming another library file afterwards is
/// refused (it used to be ignored silently); the same file is fine.
#[test]
fn a_second_runtime_library_is_refused() {
    let _loaded = load("micro");
    let other = model_dir("micro").join("visual.onnx");
    let err =
        OrtEncoder::load(model_dir("micro"), &cpu_options().with_library_path(&other)).unwrap_err();
    assert!(
        matches!(err, OrtError::RuntimeLoad { .. }),
        "{}",
        chain(&err)
    );
    assert!(chain(&err).contains("already loaded"), "{}", chain(&err));
    if let Some(lib) = std::env::var_os("ORT_DYLIB_PATH") {
        OrtEncoder::load(model_dir("micro"), &cpu_options().with_library_path(lib))
            .unwrap_or_else(|e| panic!("{}", chain(&e)));
    }
}
