//! One `Clip` shared by 8 threads making 2,000 mixed calls gives exactly the results of a
//! sequential run, without deadlock, and its throughput does not collapse.

use std::sync::Arc;
use std::time::Instant;

use clip_rs::Clip;
use ndarray::Array2;

use crate::support::{load, model_dir};

/// The kinds of call a service makes.
#[derive(Clone, Copy, Debug)]
enum Call {
    ImageFile(usize),
    ImageBytes(usize),
    ImageBatch,
    Text(usize),
    TextBatch,
}

const PHOTOS: &[&str] = &["chelsea.png", "rocket.jpg", "camera.png", "china.jpg"];
const TEXTS: &[&str] = &[
    "a photo of a cat",
    "a rocket",
    "",
    "日本語 and emoji 🚀",
    "a man with a camera",
];

fn photo(i: usize) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/images")
        .join(PHOTOS[i])
}

fn call(clip: &Clip, bytes: &[Vec<u8>], what: Call) -> Array2<f32> {
    match what {
        Call::ImageFile(i) => clip.encode_images(&[photo(i)]).unwrap(),
        Call::ImageBytes(i) => clip.encode_images(&[&bytes[i]]).unwrap(),
        Call::ImageBatch => clip
            .encode_images(&(0..PHOTOS.len()).map(photo).collect::<Vec<_>>())
            .unwrap(),
        Call::Text(i) => clip.encode_texts(&[TEXTS[i]]).unwrap(),
        Call::TextBatch => clip.encode_texts(TEXTS).unwrap(),
    }
}

fn schedule(n: usize) -> Vec<Call> {
    (0..n)
        .map(|i| match i % 7 {
            0 => Call::ImageFile(i % PHOTOS.len()),
            1 => Call::ImageBytes((i / 7) % PHOTOS.len()),
            2 => Call::ImageBatch,
            3 | 4 => Call::Text(i % TEXTS.len()),
            5 => Call::TextBatch,
            _ => Call::Text((i / 7) % TEXTS.len()),
        })
        .collect()
}

#[test]
fn shared_clip_is_deterministic_under_concurrency() {
    const THREADS: usize = 8;
    const CALLS: usize = 2_000;
    let clip = Arc::new(Clip::new(load("tiny-vit")).with_truncation(true));
    let bytes: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..PHOTOS.len())
            .map(|i| std::fs::read(photo(i)).unwrap())
            .collect(),
    );
    let calls = schedule(CALLS);

    // Sequential run: the expected answer for every call, and the single-thread rate.
    let start = Instant::now();
    let expected: Vec<Array2<f32>> = calls.iter().map(|&c| call(&clip, &bytes, c)).collect();
    let sequential = start.elapsed();
    let expected = Arc::new(expected);

    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (clip, bytes, expected, calls) =
                (clip.clone(), bytes.clone(), expected.clone(), &calls);
            scope.spawn(move || {
                for i in (t..CALLS).step_by(THREADS) {
                    let got = call(&clip, &bytes, calls[i]);
                    assert_eq!(
                        got, expected[i],
                        "call {i} ({:?}) differs from the sequential run",
                        calls[i]
                    );
                }
            });
        }
    });
    let concurrent = start.elapsed();
    // The model runs one batch at a time per session, so concurrency cannot beat the
    // sequential rate by much on two cores; it must not collapse either (lock convoys,
    // oversubscription).
    assert!(
        concurrent.as_secs_f64() < 3.0 * sequential.as_secs_f64(),
        "8 threads took {concurrent:?} for what one thread did in {sequential:?}"
    );
    eprintln!("{CALLS} calls: sequential {sequential:?}, {THREADS} threads {concurrent:?}");
}

#[test]
fn a_session_pool_serves_threads_in_parallel_with_identical_results() {
    let encoder = clip_rs::OrtEncoder::load(
        model_dir("tiny-vit"),
        &crate::support::cpu_options()
            .with_intra_threads(1)
            .with_sessions(2),
    )
    .unwrap();
    let clip = Arc::new(Clip::new(encoder));
    let bytes: Vec<Vec<u8>> = (0..PHOTOS.len())
        .map(|i| std::fs::read(photo(i)).unwrap())
        .collect();
    let expected: Vec<Array2<f32>> = (0..PHOTOS.len())
        .map(|i| call(&clip, &bytes, Call::ImageBytes(i)))
        .collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (clip, bytes, expected) = (clip.clone(), &bytes, &expected);
            scope.spawn(move || {
                for i in 0..40 {
                    let k = (t + i) % PHOTOS.len();
                    assert_eq!(call(&clip, bytes, Call::ImageBytes(k)), expected[k]);
                }
            });
        }
    });
}
