//! Absurd requests to the `Clip` API: empty batches, huge batch sizes, hostile files in a
//! batch, out-of-range tensors. Each gives a correct result or a typed error.

use std::path::PathBuf;

use clip_rs::{Clip, Error};
use ndarray::{Array2, Array4};

use crate::support::load;

fn hostile(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hostile")
        .join(name)
}

#[test]
fn empty_batches_give_empty_results() {
    let clip = Clip::new(load("tiny-vit"));
    let dim = clip.config().embed_dim;
    let none: [&str; 0] = [];
    assert_eq!(clip.encode_images(&none).unwrap().dim(), (0, dim));
    assert_eq!(clip.encode_texts(&none).unwrap().dim(), (0, dim));
    assert_eq!(clip.preprocess_images(&none).unwrap().dim().0, 0);
    assert_eq!(clip.tokenize(&none).unwrap().dim(), (0, 77));
    let size = clip.config().image_size as usize;
    assert_eq!(
        clip.encode_pixels(Array4::<f32>::zeros((0, 3, size, size)).view())
            .unwrap()
            .dim(),
        (0, dim)
    );
    assert_eq!(
        clip.encode_tokens(Array2::<i32>::zeros((0, 77)).view())
            .unwrap()
            .dim(),
        (0, dim)
    );
}

#[test]
fn huge_batch_sizes_are_clamped_to_the_input() {
    let files = [
        hostile("valid.png"),
        hostile("1x100000.png"),
        hostile("animated.gif"),
    ];
    let one_by_one = Clip::new(load("tiny-vit")).with_batch_size(1);
    let expected = one_by_one.encode_images(&files).unwrap();
    for batch in [0, usize::MAX / 2, usize::MAX] {
        let clip = Clip::new(load("tiny-vit")).with_batch_size(batch);
        let got = clip.encode_images(&files).unwrap();
        let diff = (&got - &expected)
            .mapv(f32::abs)
            .fold(0f32, |m, &v| m.max(v));
        assert!(diff < 1e-4, "batch size {batch}: max diff {diff}");
        let texts = clip.encode_texts(&["a", "", "b c"]).unwrap();
        assert_eq!(texts.dim(), (3, clip.config().embed_dim));
    }
}

#[test]
fn a_hostile_file_in_a_batch_is_named() {
    let clip = Clip::new(load("tiny-vit")).with_batch_size(2);
    let files = [
        hostile("valid.png"),
        hostile("valid.jpg"),
        hostile("bomb.png"),
        hostile("valid.gif"),
    ];
    let err = clip.encode_images(&files).unwrap_err();
    let Error::Image { input, source } = &err else {
        panic!("{err:?}");
    };
    assert!(input.contains("bomb.png"), "{input}");
    assert!(source.is_too_large(), "{source:?}");
    for name in [
        "empty.jpg",
        "truncated_half.png",
        "text.jpg",
        "magic_garbage.png",
    ] {
        let bytes = std::fs::read(hostile(name)).unwrap();
        let err = clip.encode_images(&[&bytes]).unwrap_err();
        assert!(
            matches!(&err, Error::Image { source, .. } if source.is_bad_input()),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn out_of_range_tensors_are_typed_errors() {
    let clip = Clip::new(load("tiny-vit"));
    // Token ids outside the vocabulary, and pixels of the wrong shape.
    for bad in [-1, i32::MAX, 49408] {
        let mut tokens = Array2::<i32>::zeros((2, 77));
        tokens[[1, 3]] = bad;
        let err = clip.encode_tokens(tokens.view()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{bad}: {err:?}");
    }
    let err = clip
        .encode_pixels(Array4::<f32>::zeros((1, 3, 7, 7)).view())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}
