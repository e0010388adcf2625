//! CLIP preprocessing that is bit-exact with OpenAI's reference code.
//!
//! * [`image`]: decode, resize (a port of Pillow's `Resample.c`), center-crop,
//!   convert to RGB and normalize, exactly as `clip.load(...)[1]` (`preprocess`).
//! * [`tokenizer`]: ftfy cleaning, HTML unescaping and CLIP's byte-level BPE,
//!   exactly as `clip.tokenize`.
#![deny(missing_docs)]
// Unsafe code lives only in the measured AVX2 resize kernels (`image::resize::simd`), which opt
// back in and are tested byte for byte against the scalar path, and in the few TurboJPEG
// calls of `image::jpeg_window` (a cropping region, which the `turbojpeg` crate does not
// wrap), tested pixel for pixel against the whole-width decode.
#![deny(unsafe_code)]

pub mod image;
pub mod tokenizer;
