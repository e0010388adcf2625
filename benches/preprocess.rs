//! Criterion benches of CLIP image preprocessing (decode + exact resize + crop +
//! normalize), with the dispatched SIMD kernels and with the scalar oracle.
//!
//! `cargo bench --bench preprocess`. For the comparison with the Python
//! reference run `tools/bench_preprocess.py`.
#![forbid(unsafe_code)]
// A bench without its input files cannot run: failing loudly is the point.
#![allow(clippy::panic)]

use std::hint::black_box;
use std::path::Path;

use clip_preprocess::image::{PreprocessConfig, Preprocessor};
use criterion::{criterion_group, criterion_main, Criterion};

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/images")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn preprocess(c: &mut Criterion) {
    let auto = Preprocessor::new(PreprocessConfig::default());
    let scalar = auto.clone().with_scalar_kernels(true);
    let mut out = ndarray::Array3::<f32>::zeros((3, 224, 224));
    for name in [
        "china.jpg",
        "chelsea.png",
        "retina.jpg",
        "wide_2000x300.jpg",
        "rgba.png",
    ] {
        let bytes = read(name);
        // An error path would be timed as if it were the work: check one call first.
        for pre in [&auto, &scalar] {
            if let Err(e) = pre.preprocess_bytes_into(&bytes, out.view_mut()) {
                panic!("{name}: {e}");
            }
        }
        let mut group = c.benchmark_group(format!("preprocess/{name}"));
        group.bench_function("simd", |b| {
            b.iter(|| auto.preprocess_bytes_into(black_box(&bytes), out.view_mut()))
        });
        group.bench_function("scalar", |b| {
            b.iter(|| scalar.preprocess_bytes_into(black_box(&bytes), out.view_mut()))
        });
        group.finish();
    }
}

criterion_group!(benches, preprocess);
criterion_main!(benches);
