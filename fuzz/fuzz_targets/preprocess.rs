//! Image bytes → `Preprocessor::preprocess_bytes`, the whole exact path (format detection,
//! header checks, decode, resize, crop, RGB conversion, normalisation), plus
//! `Fidelity::Throughput` for JPEGs, the scalar resize kernels as an oracle of the SIMD
//! ones, and the whole-width JPEG decode as the oracle of the column-window one.
//!
//! Invariants: no panic, no hang, no huge allocation; a tensor comes back with the requested
//! shape and only finite values; the scalar kernels give the same bits as the dispatched ones;
//! the output does not depend on what the reused scratch buffers held; decoding a JPEG's
//! needed columns only gives the whole-width decode's bits and verdict.
#![no_main]

use clip_preprocess::image::{Fidelity, Limits, PreprocessConfig, Preprocessor};
use libfuzzer_sys::fuzz_target;
use ndarray::Array3;

/// Pixels a fuzzed header may announce. The library's default is Pillow's 178,956,970; a
/// lower limit keeps each execution fast (the check itself is the same code).
const MAX_PIXELS: u64 = 1 << 22;

/// Two ways of computing the same tensor: the same bits, or both an error.
fn assert_same<E>(a: &Result<Array3<f32>, E>, b: &Result<Array3<f32>, E>, what: &str) {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            let same = a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{what} differ");
        }
        (Err(_), Err(_)) => {}
        _ => panic!("{what} disagree on success"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Output side from the input's length: small sides keep executions fast, and every
    // 97th length uses CLIP's real 224.
    let side = if data.len() % 97 == 0 {
        224
    } else {
        1 + (data.len() % 48) as u32
    };
    let config = PreprocessConfig::new(
        side,
        clip_preprocess::image::CLIP_MEAN,
        clip_preprocess::image::CLIP_STD,
    );
    let limits = Limits::new().with_max_pixels(MAX_PIXELS);
    let exact = Preprocessor::new(config).with_limits(limits);
    let n = side as usize;

    let result = exact.preprocess_bytes(data);
    if let Ok(tensor) = &result {
        assert_eq!(tensor.shape(), &[3, n, n]);
        assert!(tensor.iter().all(|v| v.is_finite()), "non-finite output");
    }

    // The scalar kernels are the SIMD kernels' oracle: same bits, same verdict.
    if data.len() % 4 == 0 {
        let scalar = exact
            .clone()
            .with_scalar_kernels(true)
            .preprocess_bytes(data);
        assert_same(&result, &scalar, "scalar and dispatched kernels");
    }

    // Reused buffers are not zeroed before the decoder and the resize passes overwrite
    // them: the result must not depend on what they held (one input in eight, to keep
    // executions fast).
    if data.len() % 8 == 1 {
        let runs: Vec<_> = [0x00u8, 0xff]
            .into_iter()
            .map(|byte| {
                Preprocessor::poison_thread_buffers(byte, 1 << 20);
                exact
                    .preprocess_bytes(data)
                    .map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                    .ok()
            })
            .collect();
        assert_eq!(runs[0], runs[1], "output depends on reused buffer contents");
        assert_eq!(runs[0].is_some(), result.is_ok(), "verdict depends on reused buffers");
    }

    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        // Exact JPEG decoding of only the columns the resize reads (a column window) must
        // give the whole-width decode's bits and verdict.
        let whole = exact
            .clone()
            .with_jpeg_column_window(false)
            .preprocess_bytes(data);
        assert_same(&result, &whole, "column-window and whole-width JPEG decoding");

        // Throughput mode differs from the exact one only for JPEGs.
        let fast = exact.clone().with_fidelity(Fidelity::Throughput);
        if let Ok(tensor) = fast.preprocess_bytes(data) {
            assert_eq!(tensor.shape(), &[3, n, n]);
            assert!(tensor.iter().all(|v| v.is_finite()), "non-finite output");
        }
    }
});
