//! Broken models and bad inputs give typed errors that say what to do, never panics.

use clip_rs::{Encoder, OrtEncoder, OrtError};
use ndarray::{Array2, Array4};

use crate::support::{chain, cpu_options, load, model_dir};

fn load_err(case: &str) -> OrtError {
    match OrtEncoder::load(model_dir(&format!("broken/{case}")), &cpu_options()) {
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
    assert!(chain(&load_err("unknown-format")).contains("clip-rs/999"));
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
