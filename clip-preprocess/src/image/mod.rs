//! Image preprocessing: decode → resize → center-crop → RGB → normalize, bit-exact
//! with OpenAI CLIP's `preprocess` (Pillow 13.0.0 + torchvision 0.29).
//!
//! ```text
//! Resize(n, BICUBIC) → CenterCrop(n) → convert("RGB") → ToTensor() → Normalize(mean, std)
//! ```
//!
//! Each stage has its own module: [`decode`](self) (file bytes → pixels in
//! Pillow's mode), `resize` (a port of Pillow's `Resample.c`), `crop`,
//! `convert` (Pillow's `convert("RGB")`), `normalize`. Resize and crop run in the
//! image's original Pillow mode (`L`, `LA`, `P`, `1`, `RGB`, `RGBA`, `CMYK`,
//! `I;16`); the conversion to RGB comes after the crop, as in the reference. Since
//! the crop discards columns, JPEGs are decoded only over the columns the resize
//! reads (`jpeg_window`; same pixels there, same verdict on damaged files).
//!
//! # Exactness
//!
//! Bit-identical to the reference, tested on the corpus in `tests/data/images`:
//! * JPEG: baseline, progressive, arithmetic, every chroma subsampling,
//!   grayscale, CMYK and YCCK (decoded by libjpeg-turbo, as Pillow does);
//! * PNG: every colour type and bit depth (1/2/4/8-bit gray, palette with or
//!   without `tRNS`, RGB, RGBA, gray+alpha, 16-bit);
//! * GIF: the first frame, as Pillow opens it (mode `P`, or `L`);
//! * BMP and TIFF (8-bit RGB), lossless WebP;
//! * raw RGB buffers ([`Preprocessor::preprocess_rgb`]) and
//!   [`image::DynamicImage`]s, treated as the Pillow image of the same pixels.
//!
//! Decoded by the `image` crate and *not* guaranteed exact: palette BMPs (Pillow
//! keeps mode `P`), other TIFF variants and lossy WebP (libwebp vs. `image`'s
//! decoder). Arithmetic-coded JPEGs decode here but not in Pillow 13.0.0's wheel.
//!
//! EXIF orientation is not applied (the reference's `Image.open` does not).
//!
//! Verdicts (which files open and which fail) follow Pillow's, including its rules for
//! PNG `iCCP`/`zTXt`/`tEXt`/`iTXt` chunks (`png_chunks`) and its JPEG decoder's (damaged
//! JPEGs: `jpeg_pillow`), except that a GIF with a truncated LZW stream is refused
//! (Pillow opens it).
//!
//! # Untrusted input
//!
//! The format comes from the bytes, never the file name. Dimensions are checked
//! against [`Limits`] from the header before any pixel buffer is allocated
//! (Pillow's decompression-bomb check). Errors are typed ([`ImageError`]); no
//! input makes the library panic.

mod convert;
mod crop;
mod decode;
mod error;
mod jpeg_markers;
mod jpeg_pillow;
mod jpeg_window;
mod normalize;
mod png_chunks;
mod raster;
mod resize;
mod scratch;

use std::path::Path;

use ndarray::{Array3, Array4, ArrayViewMut3, Axis};

pub use error::ImageError;

use crop::{center_offset, resized_size, Window};
use normalize::NormalizeTable;
use raster::{Decoded, Mode, Raster};
use resize::Kernels;

/// CLIP's per-channel mean (RGB), as in `clip/clip.py`'s `_transform`.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's per-channel standard deviation (RGB), as in `clip/clip.py`.
// The decimal digits are the reference's, verbatim (they round to the same f32).
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The largest output side accepted ([`PreprocessConfig::image_size`]): CLIP models use 224
/// to 448, and a `[3, n, n]` f32 tensor of this side is already 192 MiB. Larger sides are an
/// [`ImageError::InvalidConfig`] instead of an allocation that cannot succeed.
pub const MAX_IMAGE_SIZE: u32 = 4096;

/// What the preprocessor produces: an `image_size × image_size` crop,
/// normalised with `mean` and `std`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PreprocessConfig {
    /// Side of the square output (the model's input resolution, e.g. 224 or 336);
    /// 1..=[`MAX_IMAGE_SIZE`].
    pub image_size: u32,
    /// Per-channel mean subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by afterwards.
    pub std: [f32; 3],
}

impl PreprocessConfig {
    /// A configuration from the model's input resolution, mean and std.
    pub fn new(image_size: u32, mean: [f32; 3], std: [f32; 3]) -> Self {
        PreprocessConfig {
            image_size,
            mean,
            std,
        }
    }
}

impl Default for PreprocessConfig {
    /// 224 pixels with CLIP's mean and std (ViT-B/32, ViT-B/16, ViT-L/14, RN50, RN101).
    fn default() -> Self {
        PreprocessConfig::new(224, CLIP_MEAN, CLIP_STD)
    }
}

/// Exactness versus speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fidelity {
    /// Bit-identical to the reference (the default).
    #[default]
    Exact,
    /// Faster on large JPEGs, not bit-exact: a JPEG whose short side is at least
    /// 4 × `image_size` is decoded with libjpeg-turbo's DCT-domain downscaling
    /// (by 1/2, 1/4 or 1/8, keeping the short side ≥ 2 × `image_size`), then
    /// resized exactly as usual. Other inputs are unchanged (still exact).
    ///
    /// Measured deviation from the exact tensor, in normalised units (one 8-bit
    /// level ≈ 0.015): `retina.jpg` (1411×1411, decoded at ½) max 0.53, mean
    /// 0.0066; a 2816×1880 photo (decoded at ¼) max 0.088, mean 0.0074. The
    /// test `throughput_mode_deviation_is_bounded` keeps max < 1.0, mean < 0.02.
    Throughput,
}

/// Decoding limits: a guard against decompression bombs, checked from the
/// header before any pixel buffer is allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted `width × height`; `None` disables the check.
    ///
    /// Default: [`Limits::PILLOW_MAX_PIXELS`], the size at which Pillow raises
    /// `DecompressionBombError`.
    pub max_pixels: Option<u64>,
}

impl Limits {
    /// Pillow's error threshold: `2 * Image.MAX_IMAGE_PIXELS` =
    /// `2 * (1024 * 1024 * 1024 // 4 // 3)` = 178,956,970 pixels. (Pillow only
    /// warns between `MAX_IMAGE_PIXELS` and twice that; we accept those.)
    pub const PILLOW_MAX_PIXELS: u64 = 2 * (1024 * 1024 * 1024 / 4 / 3);

    /// Pillow's default limits.
    pub fn new() -> Self {
        Limits {
            max_pixels: Some(Self::PILLOW_MAX_PIXELS),
        }
    }

    /// No pixel limit (only for trusted input).
    pub fn unlimited() -> Self {
        Limits { max_pixels: None }
    }

    /// Sets the largest accepted number of pixels.
    #[must_use]
    pub fn with_max_pixels(mut self, max_pixels: u64) -> Self {
        self.max_pixels = Some(max_pixels);
        self
    }

    pub(crate) fn check(&self, width: u64, height: u64) -> Result<(), ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::InvalidDimensions { width, height });
        }
        if let Some(limit) = self.max_pixels {
            if width.saturating_mul(height) > limit {
                return Err(ImageError::TooLarge {
                    width,
                    height,
                    limit,
                });
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

/// CLIP's image preprocessing, bit-exact with the reference.
///
/// Cheap to clone, `Send + Sync`: share one across threads.
///
/// ```no_run
/// use clip_preprocess::image::{PreprocessConfig, Preprocessor};
/// let pre = Preprocessor::new(PreprocessConfig::default());
/// let tensor = pre.preprocess_path("photo.jpg")?; // [3, 224, 224] f32
/// assert_eq!(tensor.shape(), &[3, 224, 224]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Preprocessor {
    config: PreprocessConfig,
    limits: Limits,
    kernels: Kernels,
    fidelity: Fidelity,
    table: NormalizeTable,
    /// Exact mode: decode only the JPEG columns the resize reads (`jpeg_window`).
    jpeg_column_window: bool,
}

impl Preprocessor {
    /// A preprocessor for `config`.
    pub fn new(config: PreprocessConfig) -> Self {
        let table = NormalizeTable::new(config.mean, config.std);
        Preprocessor {
            config,
            limits: Limits::default(),
            kernels: Kernels::Auto,
            fidelity: Fidelity::Exact,
            jpeg_column_window: true,
            table,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PreprocessConfig {
        &self.config
    }

    /// The decoding limits in use.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the decoding limits (decompression-bomb guard).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Chooses between bit-exactness (the default) and throughput.
    #[must_use]
    pub fn with_fidelity(mut self, fidelity: Fidelity) -> Self {
        self.fidelity = fidelity;
        self
    }

    /// The fidelity in use.
    pub fn fidelity(&self) -> Fidelity {
        self.fidelity
    }

    /// Uses only the scalar resize kernels (the test oracle of the SIMD ones).
    /// The output is identical either way; this exists for tests and benchmarks.
    #[doc(hidden)]
    #[must_use]
    pub fn with_scalar_kernels(mut self, scalar: bool) -> Self {
        self.kernels = if scalar {
            Kernels::Scalar
        } else {
            Kernels::Auto
        };
        self
    }

    /// Decodes JPEGs at their whole width even where the resize reads only some columns
    /// (`false`; by default only those columns and a margin are decoded). The output
    /// and the verdict are identical either way; this exists for tests and the fuzz
    /// target, which compare the two.
    #[doc(hidden)]
    #[must_use]
    pub fn with_jpeg_column_window(mut self, on: bool) -> Self {
        self.jpeg_column_window = on;
        self
    }

    /// Fills this thread's pool of reused buffers with `len`-byte buffers of `byte` (`len`
    /// capped at 64 MiB; the preprocessor does not zero the buffers it overwrites): tests
    /// and the fuzz target check that outputs do not depend on what the buffers held.
    #[doc(hidden)]
    pub fn poison_thread_buffers(byte: u8, len: usize) {
        scratch::poison(byte, len);
    }

    /// Which resize kernels this CPU runs: `"avx2+avx-vnni"`, `"avx2"` or `"scalar"`.
    #[doc(hidden)]
    pub fn resize_kernels() -> &'static str {
        if resize::simd::avx2_available() && resize::simd::vnni_available() {
            "avx2+avx-vnni"
        } else if resize::simd::avx2_available() {
            "avx2"
        } else {
            "scalar"
        }
    }

    fn side(&self) -> Result<usize, ImageError> {
        match self.config.image_size {
            0 => Err(ImageError::InvalidConfig {
                reason: "image_size must be at least 1",
            }),
            n if n > MAX_IMAGE_SIZE => Err(ImageError::InvalidConfig {
                reason: "image_size is above MAX_IMAGE_SIZE (4096)",
            }),
            n => Ok(n as usize),
        }
    }

    fn alloc(&self) -> Result<Array3<f32>, ImageError> {
        let n = self.side()?;
        Ok(Array3::zeros((3, n, n)))
    }

    /// Reads and preprocesses an image file. Errors name the file.
    pub fn preprocess_path(&self, path: impl AsRef<Path>) -> Result<Array3<f32>, ImageError> {
        let mut out = self.alloc()?;
        self.preprocess_path_into(path, out.view_mut())?;
        Ok(out)
    }

    /// Like [`preprocess_path`](Self::preprocess_path), into a `[3, n, n]` view.
    pub fn preprocess_path_into(
        &self,
        path: impl AsRef<Path>,
        out: ArrayViewMut3<f32>,
    ) -> Result<(), ImageError> {
        let path = path.as_ref();
        // The file's bytes go to a pooled buffer (see `scratch`): a loop over files
        // allocates nothing once warm.
        let mut bytes = scratch::take(0);
        let result = read_image_file_into(path, &mut bytes)
            .and_then(|()| self.preprocess_bytes_into(&bytes, out))
            .map_err(|e| match e {
                ImageError::Io { .. } => e,
                e => ImageError::File {
                    path: path.to_path_buf(),
                    source: Box::new(e),
                },
            });
        scratch::recycle(bytes);
        result
    }

    /// Preprocesses an encoded image (JPEG, PNG, GIF, WebP, BMP, TIFF; detected
    /// from the bytes).
    pub fn preprocess_bytes(&self, bytes: &[u8]) -> Result<Array3<f32>, ImageError> {
        let mut out = self.alloc()?;
        self.preprocess_bytes_into(bytes, out.view_mut())?;
        Ok(out)
    }

    /// Preprocesses an encoded image into a caller's `[3, n, n]` buffer (for
    /// example one row of a batch).
    pub fn preprocess_bytes_into(
        &self,
        bytes: &[u8],
        out: ArrayViewMut3<f32>,
    ) -> Result<(), ImageError> {
        self.check_out(&out)?;
        let min_side = match self.fidelity {
            Fidelity::Exact => None,
            Fidelity::Throughput => Some(2 * self.side()?),
        };
        let n = self.side()?;
        let read = |w: usize, h: usize| columns_read(w, h, n);
        let window = self
            .jpeg_column_window
            .then_some(&read as decode::ColumnsRead<'_>);
        let decoded = decode::decode(bytes, &self.limits, min_side, window)?;
        let result = self.run(&decoded, out);
        scratch::recycle(decoded.raster.data);
        result
    }

    /// Preprocesses an already decoded image, treated as the Pillow image with
    /// the same pixels (`Luma8` → `L`, `Rgba8` → `RGBA`, 16-bit gray → `I;16`,
    /// other 16-bit → high byte).
    pub fn preprocess_image(
        &self,
        image: &::image::DynamicImage,
    ) -> Result<Array3<f32>, ImageError> {
        let mut out = self.alloc()?;
        let raster = decode::from_dynamic(image)?;
        self.run(&Decoded::whole(raster), out.view_mut())?;
        Ok(out)
    }

    /// Preprocesses a packed 8-bit RGB buffer (`width * height * 3` bytes,
    /// row-major), as Pillow would an `RGB` image of those pixels.
    pub fn preprocess_rgb(
        &self,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<Array3<f32>, ImageError> {
        let (w, h) = (width as usize, height as usize);
        if w == 0 || h == 0 {
            return Err(ImageError::InvalidDimensions {
                width: u64::from(width),
                height: u64::from(height),
            });
        }
        let expected = w.checked_mul(h).and_then(|n| n.checked_mul(3)).ok_or(
            ImageError::InvalidDimensions {
                width: u64::from(width),
                height: u64::from(height),
            },
        )?;
        if rgb.len() != expected {
            return Err(ImageError::BufferSize {
                what: "RGB input (width * height * 3)",
                expected,
                actual: rgb.len(),
            });
        }
        let mut out = self.alloc()?;
        let raster = Raster::new_u8(Mode::Rgb, w, h, rgb.to_vec());
        self.run(&Decoded::whole(raster), out.view_mut())?;
        Ok(out)
    }

    /// Preprocesses files into one `[len, 3, n, n]` batch; stops at the first
    /// error, which names the file.
    pub fn preprocess_paths<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Array4<f32>, ImageError> {
        let n = self.side()?;
        let mut batch = Array4::zeros((paths.len(), 3, n, n));
        for (path, row) in paths.iter().zip(batch.axis_iter_mut(Axis(0))) {
            self.preprocess_path_into(path, row)?;
        }
        Ok(batch)
    }

    /// Preprocesses encoded images into one `[len, 3, n, n]` batch.
    pub fn preprocess_bytes_batch<B: AsRef<[u8]>>(
        &self,
        images: &[B],
    ) -> Result<Array4<f32>, ImageError> {
        let n = self.side()?;
        let mut batch = Array4::zeros((images.len(), 3, n, n));
        for (bytes, row) in images.iter().zip(batch.axis_iter_mut(Axis(0))) {
            self.preprocess_bytes_into(bytes.as_ref(), row)?;
        }
        Ok(batch)
    }

    fn check_out(&self, out: &ArrayViewMut3<f32>) -> Result<(), ImageError> {
        let n = self.side()?;
        if out.shape() != [3, n, n] {
            return Err(ImageError::BufferSize {
                what: "output view of shape [3, n, n]",
                expected: 3 * n * n,
                actual: out.len(),
            });
        }
        Ok(())
    }

    /// Resize → crop → RGB → normalize, writing `out` (`[3, n, n]`).
    fn run(&self, decoded: &Decoded, out: ArrayViewMut3<f32>) -> Result<(), ImageError> {
        self.check_out(&out)?;
        let n = self.side()?;
        let raster = &decoded.raster;
        let (w, h) = (decoded.full_width, raster.height);
        let (out_w, out_h) = resized_size(w, h, n);
        // Pillow's resize takes the size as C ints (`ImagingCore.resize`, "(ii)"), so the
        // reference raises beyond i32::MAX a side (a 1 × 10⁷ strip resized to 224 wide).
        // Refusing here also bounds NEAREST's position walk (`nearest_window`).
        let limit = i32::MAX as usize;
        if out_w > limit || out_h > limit {
            return Err(ImageError::InvalidDimensions {
                width: w as u64,
                height: h as u64,
            });
        }
        let win = Window {
            left: center_offset(out_w, n),
            top: center_offset(out_h, n),
            width: n,
            height: n,
        };
        let cropped = if (out_w, out_h) == (w, h) {
            // Never a column window: `columns_read` asks for one only when the width changes.
            debug_assert_eq!(raster.width, w);
            crop::crop(raster, win)
        } else {
            resize::resize_window(decoded, out_w, out_h, win, self.kernels)
        };
        normalize::write_tensor(&cropped, &self.table.table, out);
        scratch::recycle(cropped.data);
        Ok(())
    }
}

/// Reads an image file into `bytes` (cleared first), checking its format from the first
/// bytes before reading the rest: a path to an endless or huge stream that is no image
/// (`/dev/zero`, a FIFO, a disk image) fails after 16 bytes with the error decoding would
/// give ([`ImageError::UnsupportedFormat`] or [`ImageError::Empty`]) instead of being read
/// into memory. I/O failures are [`ImageError::Io`] naming the path.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("read-image-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("notes.jpg");
/// std::fs::write(&path, "not a JPEG at all").unwrap();
/// let mut bytes = Vec::new();
/// let err = clip_preprocess::image::read_image_file_into(&path, &mut bytes).unwrap_err();
/// assert!(matches!(err, clip_preprocess::image::ImageError::UnsupportedFormat { .. }));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_image_file_into(path: &Path, bytes: &mut Vec<u8>) -> Result<(), ImageError> {
    use std::io::Read;
    let io = |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    };
    bytes.clear();
    let mut file = std::fs::File::open(path).map_err(io)?;
    (&mut file).take(16).read_to_end(bytes).map_err(io)?;
    decode::detect(bytes)?;
    file.read_to_end(bytes).map_err(io)?;
    Ok(())
}

/// The source columns that preprocessing a `w × h` image to `n × n` reads, when the
/// resize changes the width (else None: every column is read or copied): the bicubic
/// support of the centre crop's columns. The JPEG decoder decodes only around them.
fn columns_read(w: usize, h: usize, n: usize) -> Option<std::ops::Range<usize>> {
    let (out_w, _) = resized_size(w, h, n);
    if out_w == w || out_w < n {
        return None;
    }
    let left = center_offset(out_w, n);
    Some(resize::input_span(w, out_w, left..left + n))
}

/// The image corpus of `tests/data/images` (files with `ext`es), sorted: unit tests of
/// this module and its children run over it.
#[cfg(test)]
pub(crate) fn corpus_files(exts: &[&str]) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/images");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the test corpus is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::{scratch, PreprocessConfig, Preprocessor};

    /// Reused buffers are not zeroed before the decoder and the resize passes write them
    /// (`scratch::take_for_overwrite`): no output may depend on what they held. Every
    /// corpus image is preprocessed with the pool full of `0x00`, `0x5a` and `0xa5`
    /// buffers large enough for every request; the three tensors must be equal.
    #[test]
    fn outputs_do_not_depend_on_reused_buffer_contents() {
        let files = super::corpus_files(&["jpg", "png", "gif", "webp", "bmp", "tif", "tiff"]);
        assert!(files.len() >= 20, "corpus: {} files", files.len());
        let pre = Preprocessor::new(PreprocessConfig::default());
        let mut checked = 0;
        for path in &files {
            let mut outs = Vec::new();
            for byte in [0x00, 0x5a, 0xa5] {
                scratch::poison(byte, 8 << 20);
                outs.push(
                    pre.preprocess_path(path)
                        .ok()
                        .map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
                );
            }
            assert!(
                outs[0] == outs[1] && outs[1] == outs[2],
                "{} depends on reused buffer contents",
                path.display()
            );
            checked += usize::from(outs[0].is_some());
        }
        assert!(checked >= 20, "only {checked} images preprocessed");
    }
}
