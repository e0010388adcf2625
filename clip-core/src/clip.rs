//! The [`Clip`] facade: files, bytes, images and strings in; embeddings out.

use std::path::{Path, PathBuf};

use clip_preprocess::image::Preprocessor;
use clip_preprocess::tokenizer::Tokenizer;
use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayView4, Axis, Slice};

use crate::config::ModelConfig;
use crate::encoder::Encoder;
use crate::error::{Error, Result};
use crate::similarity;

/// Default number of images or texts sent to the encoder at once.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// One image to embed: a file, its encoded bytes, or an already decoded image.
///
/// Files and bytes go through the bit-exact decoder (libjpeg-turbo for JPEG, as Pillow);
/// a `DynamicImage` is taken as decoded.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum ImageInput<'a> {
    /// An image file; the format is detected from its content, not its extension.
    Path(&'a Path),
    /// The bytes of an encoded image file (JPEG, PNG, GIF, WebP, BMP, TIFF).
    Bytes(&'a [u8]),
    /// An image decoded by the `image` crate.
    Image(&'a image::DynamicImage),
}

/// Anything that names one image: paths (`&str`, `String`, `Path`, `PathBuf`), encoded bytes
/// (`[u8]`, `Vec<u8>`), a decoded `image::DynamicImage`, or an [`ImageInput`].
///
/// Strings are paths, never image data.
pub trait AsImageInput {
    /// This value as an [`ImageInput`].
    fn as_image_input(&self) -> ImageInput<'_>;
}

impl AsImageInput for ImageInput<'_> {
    fn as_image_input(&self) -> ImageInput<'_> {
        *self
    }
}
impl AsImageInput for Path {
    fn as_image_input(&self) -> ImageInput<'_> {
        ImageInput::Path(self)
    }
}
impl AsImageInput for PathBuf {
    fn as_image_input(&self) -> ImageInput<'_> {
        ImageInput::Path(self)
    }
}
impl AsImageInput for str {
    fn as_image_input(&self) -> ImageInput<'_> {
        ImageInput::Path(Path::new(self))
    }
}
impl AsImageInput for String {
    fn as_image_input(&self) -> ImageInput<'_> {
        ImageInput::Path(Path::new(self))
    }
}
impl AsImageInput for [u8] {
    fn as_image_input(&self) -> ImageInput<'_> {
        ImageInput::Bytes(self)
    }
}
impl AsImageInput for Vec<u8> {
    fn as_image_input(&self) -> ImageInput<'_> {
        ImageInput::Bytes(self)
    }
}
impl AsImageInput for image::DynamicImage {
    fn as_image_input(&self) -> ImageInput<'_> {
        ImageInput::Image(self)
    }
}
impl<T: AsImageInput + ?Sized> AsImageInput for &T {
    fn as_image_input(&self) -> ImageInput<'_> {
        (**self).as_image_input()
    }
}

impl ImageInput<'_> {
    /// How this input is named in errors.
    fn label(&self, index: usize) -> String {
        match self {
            Self::Path(path) => path.display().to_string(),
            Self::Bytes(_) => format!("#{index} (bytes)"),
            Self::Image(_) => format!("#{index} (decoded image)"),
        }
    }
}

/// The inputs that failed in [`Clip::encode_images_partial`]: each one's position in the
/// caller's list and its error, in input order.
pub type Failures = Vec<(usize, Error)>;

/// One preprocessed batch on its way from the producer thread to the encoder.
struct Prepared {
    /// `[len, 3, S, S]`; the first `rows.len()` rows hold images.
    pixels: Array4<f32>,
    /// The caller's index of each filled row.
    rows: Vec<usize>,
    /// Images that failed, with the caller's index.
    failures: Vec<(usize, Error)>,
}

/// Checks that an encoder returned `[rows, dim]`, so placing its rows cannot panic.
fn check_embeds(embeds: &Array2<f32>, rows: usize, dim: usize) -> Result<()> {
    if embeds.dim() != (rows, dim) {
        return Err(Error::EncoderOutput {
            reason: format!(
                "shape {:?} for a batch of {rows}, expected [{rows}, {dim}]",
                embeds.dim()
            ),
        });
    }
    Ok(())
}

/// A CLIP model ready to embed images and texts: an [`Encoder`] plus the exact
/// preprocessing and tokenizer the reference uses.
///
/// `Clip` is `Send + Sync`: share one (e.g. in an `Arc`) across threads. Whether calls
/// from several threads run in parallel is the encoder's business (clip-ort keeps a pool
/// of ONNX Runtime sessions).
///
/// ```no_run
/// # fn demo(clip: &clip_core::Clip) -> Result<(), Box<dyn std::error::Error>> {
/// let image = clip.encode_image("photo.jpg")?;               // [D]
/// let texts = clip.encode_texts(&["a dog", "a cat"])?;       // [2, D]
/// let probs = clip.probabilities(image.view().insert_axis(ndarray::Axis(0)), texts.view())?;
/// # Ok(()) }
/// ```
pub struct Clip {
    encoder: Box<dyn Encoder>,
    preprocessor: Preprocessor,
    tokenizer: Tokenizer,
    batch_size: usize,
    truncate: bool,
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("encoder", &self.encoder.describe())
            .field("config", self.encoder.config())
            .field("batch_size", &self.batch_size)
            .field("truncate", &self.truncate)
            .finish()
    }
}

impl Clip {
    /// Wraps an encoder with the preprocessing its config asks for and CLIP's own tokenizer.
    pub fn new(encoder: impl Encoder + 'static) -> Self {
        let preprocessor = Preprocessor::new(encoder.config().preprocess_config());
        Self {
            encoder: Box::new(encoder),
            preprocessor,
            tokenizer: Tokenizer::new(),
            batch_size: DEFAULT_BATCH_SIZE,
            truncate: false,
        }
    }

    /// Uses another tokenizer (e.g. one loaded from the model's own `tokenizer.json`).
    #[must_use]
    pub fn with_tokenizer(mut self, tokenizer: Tokenizer) -> Self {
        self.tokenizer = tokenizer;
        self
    }

    /// Uses another preprocessor (e.g. with different decompression-bomb limits, or the
    /// throughput mode). It must make the model's input: the same image size, mean and
    /// std as [`ModelConfig::preprocess_config`]; image calls fail with
    /// [`Error::InvalidConfig`] otherwise.
    #[must_use]
    pub fn with_preprocessor(mut self, preprocessor: Preprocessor) -> Self {
        self.preprocessor = preprocessor;
        self
    }

    /// How many images or texts go to the encoder at once (default 32; at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Whether texts longer than the context are cut (`clip.tokenize(..., truncate=True)`)
    /// instead of rejected with [`Error::Tokenize`] (the reference's default). Default: false.
    #[must_use]
    pub fn with_truncation(mut self, truncate: bool) -> Self {
        self.truncate = truncate;
        self
    }

    /// How many images or texts go to the encoder at once.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        self.encoder.config()
    }

    /// The encoder (backend) running the model.
    pub fn encoder(&self) -> &dyn Encoder {
        self.encoder.as_ref()
    }

    /// The image preprocessor.
    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Checks, before any image work, what a custom [`Encoder`] or
    /// [`Clip::with_preprocessor`] could get wrong: a configuration that cannot describe a
    /// model (an image size whose batch tensor cannot be allocated, say) and a
    /// preprocessor that does not make this model's input.
    fn check_image_setup(&self) -> Result<()> {
        let config = self.config();
        config.validate()?;
        let wanted = config.preprocess_config();
        let have = self.preprocessor.config();
        if *have != wanted {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "the preprocessor makes {0}×{0} images with mean {1:?} and std {2:?}, but the \
                     model wants {3}×{3} with mean {4:?} and std {5:?}",
                    have.image_size,
                    have.mean,
                    have.std,
                    wanted.image_size,
                    wanted.mean,
                    wanted.std
                ),
            });
        }
        Ok(())
    }

    /// Preprocesses one image into `out` (`[3, S, S]`).
    fn preprocess_into(
        &self,
        input: ImageInput<'_>,
        index: usize,
        out: ndarray::ArrayViewMut3<'_, f32>,
    ) -> Result<()> {
        let result = match input {
            ImageInput::Path(path) => {
                let mut bytes = Vec::new();
                clip_preprocess::image::read_image_file_into(path, &mut bytes)
                    .and_then(|()| self.preprocessor.preprocess_bytes_into(&bytes, out))
            }
            ImageInput::Bytes(bytes) => self.preprocessor.preprocess_bytes_into(bytes, out),
            ImageInput::Image(image) => self
                .preprocessor
                .preprocess_image(image)
                .map(|tensor| tensor.assign_to(out)),
        };
        result.map_err(|source| Error::Image {
            input: input.label(index),
            source,
        })
    }

    /// Preprocesses images into one `[N, 3, S, S]` tensor, exactly as the reference's
    /// `torch.stack([preprocess(Image.open(f)) for f in files])`.
    pub fn preprocess_images<I: AsImageInput>(&self, inputs: &[I]) -> Result<Array4<f32>> {
        self.check_image_setup()?;
        let inputs: Vec<ImageInput<'_>> = inputs.iter().map(AsImageInput::as_image_input).collect();
        // The pipeline's batch filler, stopping at the first failure: without one, every
        // row is filled, in order.
        let mut prepared = self.prepare_batch(&inputs, 0, true);
        match prepared.failures.pop() {
            Some((_, err)) => Err(err),
            None => Ok(prepared.pixels),
        }
    }

    /// Embeds one image: `model.encode_image(preprocess(Image.open(f)).unsqueeze(0))[0]`.
    pub fn encode_image(&self, input: impl AsImageInput) -> Result<Array1<f32>> {
        let embeds = self.encode_images(&[input.as_image_input()])?;
        Ok(embeds.index_axis_move(Axis(0), 0))
    }

    /// Embeds images, `[N, D]` in input order, in batches of [`Clip::with_batch_size`].
    ///
    /// A second thread decodes and preprocesses batch k+1 while the encoder runs batch k,
    /// and the first batch while the encoder gets ready ([`Encoder::prepare_image`]: a
    /// tower created on first use is created then). At most two batches of pixels wait at
    /// any time, and each image is decoded only while its row is filled, so memory stays
    /// bounded however many files there are. Results and their order are those of doing it
    /// one batch at a time.
    ///
    /// The first image that fails stops the call with an error naming it; to keep going past
    /// bad files, use [`Clip::encode_images_partial`].
    pub fn encode_images<I: AsImageInput>(&self, inputs: &[I]) -> Result<Array2<f32>> {
        let (embeds, mut failures) = self.encode_images_inner(inputs, true, &mut |_| {})?;
        match failures.pop() {
            Some((_, err)) => Err(err),
            None => Ok(embeds),
        }
    }

    /// Like [`Clip::encode_images`], but an image that cannot be read or decoded does not
    /// stop the call: its row is NaN, and it is listed with its error (by position, in input
    /// order). An encoder failure still fails the whole call.
    ///
    /// ```
    /// # fn demo(clip: &clip_core::Clip) -> Result<(), clip_core::Error> {
    /// let files = ["holiday/beach.jpg", "holiday/broken.jpg", "holiday/dog.png"];
    /// let (embeds, failures) = clip.encode_images_partial(&files)?;
    /// for (index, err) in &failures {
    ///     eprintln!("skipped {}: {}", files[*index], clip_core::error_chain(err));
    ///     assert!(embeds.row(*index).iter().all(|v| v.is_nan()));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn encode_images_partial<I: AsImageInput>(
        &self,
        inputs: &[I],
    ) -> Result<(Array2<f32>, Failures)> {
        self.encode_images_inner(inputs, false, &mut |_| {})
    }

    /// [`Clip::encode_images_partial`] that reports progress: after each batch,
    /// `progress(done)` with the number of inputs handled so far (embedded or failed), on
    /// the calling thread; the last call says `inputs.len()` unless the encoder failed.
    ///
    /// ```
    /// # fn demo(clip: &clip_core::Clip, files: &[std::path::PathBuf]) -> Result<(), clip_core::Error> {
    /// let (embeds, failures) = clip.encode_images_partial_with_progress(files, &mut |done| {
    ///     eprint!("\r{done}/{} images", files.len());
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn encode_images_partial_with_progress<I: AsImageInput>(
        &self,
        inputs: &[I],
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Array2<f32>, Failures)> {
        self.encode_images_inner(inputs, false, progress)
    }

    /// The image pipeline. With `stop_at_first_failure`, the returned failures hold at most
    /// one entry, and no batch after it is encoded.
    fn encode_images_inner<I: AsImageInput>(
        &self,
        inputs: &[I],
        stop_at_first_failure: bool,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Array2<f32>, Failures)> {
        self.check_image_setup()?;
        let dim = self.config().embed_dim;
        let mut out = Array2::<f32>::from_elem((inputs.len(), dim), f32::NAN);
        let mut failures = Vec::new();
        // `ImageInput` is `Copy + Sync` whatever `I` is, so the producer thread can hold it.
        let inputs: Vec<ImageInput<'_>> = inputs.iter().map(AsImageInput::as_image_input).collect();
        let batches = || {
            inputs
                .chunks(self.batch_size)
                .enumerate()
                .map(|(k, chunk)| (k * self.batch_size, chunk))
        };
        let mut done = 0;
        let mut consume = |prepared: Prepared| -> Result<bool> {
            if stop_at_first_failure && !prepared.failures.is_empty() {
                // The call fails: encoding the rows before the failure would be wasted.
                failures.extend(prepared.failures);
                return Ok(false);
            }
            let ok = prepared.rows.len();
            if ok > 0 {
                let embeds = self
                    .encoder
                    .encode_image_batch(prepared.pixels.slice_axis(Axis(0), Slice::from(..ok)))?;
                check_embeds(&embeds, ok, dim)?;
                for (row, &index) in prepared.rows.iter().enumerate() {
                    out.row_mut(index).assign(&embeds.row(row));
                }
            }
            done += ok + prepared.failures.len();
            failures.extend(prepared.failures);
            progress(done);
            Ok(true)
        };
        if inputs.is_empty() {
            return Ok((out, failures));
        }
        std::thread::scope(|scope| -> Result<()> {
            // Capacity 1: the producer fills batch k+1 while batch k is encoded and waits
            // when one more is ready; dropping `receiver` stops it.
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Prepared>(1);
            let producer = std::thread::Builder::new().spawn_scoped(scope, move || {
                for (start, chunk) in batches() {
                    let prepared = self.prepare_batch(chunk, start, stop_at_first_failure);
                    let stop = stop_at_first_failure && !prepared.failures.is_empty();
                    if sender.send(prepared).is_err() || stop {
                        break;
                    }
                }
            });
            // While the first batch decodes: a tower created on first use is created now,
            // beside the decoding (even for a single batch), not after it.
            self.encoder.prepare_image()?;
            if producer.is_err() {
                // No thread to be had (a process limit): decode and encode in turn, here.
                for (start, chunk) in batches() {
                    if !consume(self.prepare_batch(chunk, start, stop_at_first_failure))? {
                        break;
                    }
                }
                return Ok(());
            }
            for prepared in receiver {
                if !consume(prepared)? {
                    break;
                }
            }
            Ok(())
        })?;
        if stop_at_first_failure {
            failures.truncate(1);
        }
        Ok((out, failures))
    }

    /// Preprocesses one batch into the first rows of a `[len, 3, S, S]` tensor; rows of
    /// images that fail are skipped (and, with `stop_at_first_failure`, so is the rest).
    fn prepare_batch(
        &self,
        chunk: &[ImageInput<'_>],
        start: usize,
        stop_at_first_failure: bool,
    ) -> Prepared {
        let size = self.config().image_size as usize;
        let mut pixels = Array4::<f32>::zeros((chunk.len(), 3, size, size));
        let mut rows = Vec::with_capacity(chunk.len());
        let mut failures = Vec::new();
        for (offset, input) in chunk.iter().enumerate() {
            let index = start + offset;
            match self.preprocess_into(*input, index, pixels.index_axis_mut(Axis(0), rows.len())) {
                Ok(()) => rows.push(index),
                Err(err) => {
                    failures.push((index, err));
                    if stop_at_first_failure {
                        break;
                    }
                }
            }
        }
        Prepared {
            pixels,
            rows,
            failures,
        }
    }

    /// Embeds already preprocessed images `[N, 3, S, S]` in batches.
    pub fn encode_pixels(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let n = pixels.len_of(Axis(0));
        let mut out = Array2::<f32>::zeros((n, self.config().embed_dim));
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let embeds = self
                .encoder
                .encode_image_batch(pixels.slice_axis(Axis(0), Slice::from(start..end)))?;
            check_embeds(&embeds, end - start, self.config().embed_dim)?;
            out.slice_axis_mut(Axis(0), Slice::from(start..end))
                .assign(&embeds);
        }
        Ok(out)
    }

    /// Tokenizes texts as `clip.tokenize(texts, context_length, truncate)` with this model's
    /// context length and the truncation set by [`Clip::with_truncation`].
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<ndarray::Array2<i32>> {
        Ok(self
            .tokenizer
            .tokenize(texts, self.config().context_length, self.truncate)?)
    }

    /// Embeds one text: `model.encode_text(clip.tokenize([text]))[0]`.
    pub fn encode_text(&self, text: &str) -> Result<Array1<f32>> {
        let embeds = self.encode_texts(&[text])?;
        Ok(embeds.index_axis_move(Axis(0), 0))
    }

    /// Embeds texts, `[N, D]` in input order, in batches of [`Clip::with_batch_size`].
    pub fn encode_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>> {
        let tokens = self.tokenize(texts)?;
        self.encode_tokens(tokens.view())
    }

    /// Embeds token ids `[N, L]` (from [`Clip::tokenize`]), `[N, D]` in input order.
    ///
    /// Rows are grouped by length into batches of at most [`Clip::with_batch_size`] rows
    /// ([`batching::length_buckets`](crate::batching::length_buckets)), so a few long texts
    /// do not make every short one run at their width. The embeddings are the same as
    /// encoding the rows in any other grouping: each row depends only on its own tokens up
    /// to its end-of-text token.
    pub fn encode_tokens(&self, tokens: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
        let n = tokens.nrows();
        let mut out = Array2::<f32>::zeros((n, self.config().embed_dim));
        for group in crate::batching::length_buckets(tokens, self.batch_size) {
            let rows = tokens.select(Axis(0), &group);
            let embeds = self.encoder.encode_text_batch(rows.view())?;
            check_embeds(&embeds, group.len(), self.config().embed_dim)?;
            for (row, &index) in group.iter().enumerate() {
                out.row_mut(index).assign(&embeds.row(row));
            }
        }
        Ok(out)
    }

    /// The reference's `logits_per_image` for these embeddings, with the model's own
    /// logit scale.
    pub fn logits(
        &self,
        image_embeds: ArrayView2<'_, f32>,
        text_embeds: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        similarity::logits(image_embeds, text_embeds, self.config().logit_scale)
    }

    /// `logits_per_image.softmax(dim=-1)`: for each image, a probability per text.
    pub fn probabilities(
        &self,
        image_embeds: ArrayView2<'_, f32>,
        text_embeds: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        Ok(similarity::softmax_rows(
            self.logits(image_embeds, text_embeds)?.view(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A text "tower" that, like clip-ort, trims each batch after its last EOT, and whose
    /// embedding of a row depends only on the row's tokens up to its EOT. Records each
    /// batch's (rows, width).
    struct FakeEncoder {
        config: ModelConfig,
        calls: Mutex<Vec<(usize, usize)>>,
    }

    impl FakeEncoder {
        fn new() -> Self {
            Self {
                config: ModelConfig::new(3, 224, 0.0),
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl Encoder for FakeEncoder {
        fn config(&self) -> &ModelConfig {
            &self.config
        }
        fn encode_image_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
            let mut out = Array2::zeros((pixels.len_of(Axis(0)), 3));
            for (image, mut o) in pixels.outer_iter().zip(out.rows_mut()) {
                o[0] = image.sum();
                o[1] = image[[0, 0, 0]];
                o[2] = image[[2, 100, 50]];
            }
            Ok(out)
        }
        fn encode_text_batch(&self, ids: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
            let eot = |row: ndarray::ArrayView1<'_, i32>| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = i;
                    }
                }
                best
            };
            let width = ids.rows().into_iter().map(eot).max().map_or(0, |e| e + 1);
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((ids.nrows(), width));
            let mut out = Array2::zeros((ids.nrows(), 3));
            for (row, mut o) in ids.rows().into_iter().zip(out.rows_mut()) {
                let e = eot(row);
                let prefix = row.slice_axis(Axis(0), Slice::from(..=e));
                o[0] = e as f32;
                o[1] = prefix.iter().map(|&v| v as f32).sum();
                o[2] = prefix
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as f32 + 1.0) * (v % 97) as f32)
                    .sum();
            }
            Ok(out)
        }
        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn texts() -> Vec<String> {
        let long = "a long passage of words that goes on and on ".repeat(8);
        (0..70)
            .map(|i| match i % 7 {
                0 => format!("{} {i}", long),
                1 | 4 => format!("a photo of a number {i}"),
                2 => format!("{i}"),
                _ => format!("a {i} drawn in ink on a wall of an old house near the river"),
            })
            .collect()
    }

    #[test]
    fn bucketed_text_batches_match_one_by_one_in_caller_order() {
        let clip = Clip::new(FakeEncoder::new())
            .with_truncation(true)
            .with_batch_size(16);
        let texts = texts();
        let tokens = clip.tokenize(&texts).unwrap_or_else(|e| panic!("{e}"));
        let together = clip
            .encode_tokens(tokens.view())
            .unwrap_or_else(|e| panic!("{e}"));
        for (i, text) in texts.iter().enumerate() {
            let alone = clip.encode_text(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(together.row(i), alone, "row {i}");
        }
        // Unbucketed: fixed chunks straight to the encoder.
        for start in (0..texts.len()).step_by(16) {
            let end = (start + 16).min(texts.len());
            let direct = clip
                .encoder()
                .encode_text_batch(tokens.slice_axis(Axis(0), Slice::from(start..end)))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                together.slice_axis(Axis(0), Slice::from(start..end)),
                direct
            );
        }
    }

    #[test]
    fn bucketing_runs_fewer_token_positions() {
        let encoder = std::sync::Arc::new(FakeEncoder::new());
        let clip = Clip::new(encoder.clone())
            .with_truncation(true)
            .with_batch_size(32);
        let tokens = clip.tokenize(&texts()).unwrap_or_else(|e| panic!("{e}"));
        clip.encode_tokens(tokens.view())
            .unwrap_or_else(|e| panic!("{e}"));
        let calls = encoder
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        assert!(calls.iter().all(|&(rows, _)| rows <= 32));
        assert_eq!(calls.iter().map(|&(rows, _)| rows).sum::<usize>(), 70);
        let positions: usize = calls.iter().map(|&(rows, width)| rows * width).sum();
        // Fixed chunks of 32 would each contain a 77-token passage: 70 x 77 positions.
        assert!(positions < 70 * 77 / 2, "{calls:?}");
    }

    fn images(n: usize) -> Vec<image::DynamicImage> {
        (0..n)
            .map(|i| {
                let i = i as u32;
                image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(40 + i, 30, |x, y| {
                    image::Rgb([(x * 7 + i) as u8, (y * 5) as u8, (x + y + 3 * i) as u8])
                }))
            })
            .collect()
    }

    #[test]
    fn pipelined_images_match_one_by_one_in_caller_order() {
        let photos = images(21);
        for batch in [1, 4, 32] {
            let clip = Clip::new(FakeEncoder::new()).with_batch_size(batch);
            let together = clip
                .encode_images(&photos)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(together.nrows(), 21);
            for (i, photo) in photos.iter().enumerate() {
                let alone = clip.encode_image(photo).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(together.row(i), alone, "batch {batch}, image {i}");
            }
        }
    }

    #[test]
    fn image_failures_stop_or_are_listed() {
        let photos = images(10);
        let junk: &[u8] = b"not an image";
        let mut inputs: Vec<ImageInput<'_>> = photos.iter().map(ImageInput::Image).collect();
        inputs[3] = ImageInput::Bytes(junk);
        inputs[8] = ImageInput::Bytes(junk);
        let clip = Clip::new(FakeEncoder::new()).with_batch_size(2);
        match clip.encode_images(&inputs) {
            Err(Error::Image { input, .. }) => assert_eq!(input, "#3 (bytes)"),
            other => panic!("{other:?}"),
        }
        let (embeds, failures) = clip
            .encode_images_partial(&inputs)
            .unwrap_or_else(|e| panic!("{e}"));
        let failed: Vec<usize> = failures.iter().map(|(i, _)| *i).collect();
        assert_eq!(failed, vec![3, 8]);
        for (i, row) in embeds.rows().into_iter().enumerate() {
            assert_eq!(
                row.iter().all(|v| v.is_nan()),
                failed.contains(&i),
                "row {i}"
            );
        }
        let nine = clip
            .encode_image(&photos[9])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(embeds.row(9), nine);
    }

    /// Progress is reported after each batch, counting failed inputs too, up to all.
    #[test]
    fn progress_counts_every_input_batch_by_batch() {
        let photos = images(9);
        let junk: &[u8] = b"not an image";
        let mut inputs: Vec<ImageInput<'_>> = photos.iter().map(ImageInput::Image).collect();
        inputs[3] = ImageInput::Bytes(junk);
        let clip = Clip::new(FakeEncoder::new()).with_batch_size(4);
        let mut seen = Vec::new();
        let (embeds, failures) = clip
            .encode_images_partial_with_progress(&inputs, &mut |done| seen.push(done))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen, vec![4, 8, 9]);
        assert_eq!(failures.len(), 1);
        let plain = clip
            .encode_images_partial(&inputs)
            .unwrap_or_else(|e| panic!("{e}"))
            .0;
        assert!(embeds
            .iter()
            .zip(plain.iter())
            .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())));
    }

    /// A preprocessor that does not make the model's input, or a custom encoder's
    /// impossible configuration, is an error before any image is touched (not a panic
    /// in `assign_to`, nor an attempt to allocate the batch).
    #[test]
    fn a_preprocessor_or_config_that_does_not_fit_the_model_is_refused() {
        use clip_preprocess::image::{Limits, PreprocessConfig};
        let photos = images(2);
        let other = Preprocessor::new(PreprocessConfig::new(336, [0.5; 3], [0.5; 3]));
        let clip = Clip::new(FakeEncoder::new()).with_preprocessor(other);
        for result in [
            clip.encode_images(&photos).map(|_| ()),
            clip.preprocess_images(&photos).map(|_| ()),
        ] {
            match result {
                Err(Error::InvalidConfig { reason }) => {
                    assert!(
                        reason.contains("336×336") && reason.contains("224×224"),
                        "{reason}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        // The model's own configuration with other limits is what the method is for.
        let same = Preprocessor::new(FakeEncoder::new().config.preprocess_config())
            .with_limits(Limits::unlimited());
        let embeds = Clip::new(FakeEncoder::new())
            .with_preprocessor(same)
            .encode_images(&photos)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(embeds.nrows(), 2);
        let mut huge = FakeEncoder::new();
        huge.config = ModelConfig::new(3, 100_000, 0.0);
        match Clip::new(huge).encode_images(&photos) {
            Err(Error::InvalidConfig { reason }) => {
                assert!(reason.contains("image_size"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// `Encoder::prepare_image` runs once per image call that has inputs, before the first
    /// batch is encoded (for a single batch too), and its error is the call's error.
    #[test]
    fn the_image_tower_is_prepared_beside_the_first_batch() {
        struct Lazy {
            inner: FakeEncoder,
            prepared: Mutex<usize>,
            fail: bool,
        }
        impl Encoder for Lazy {
            fn config(&self) -> &ModelConfig {
                self.inner.config()
            }
            fn encode_image_batch(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
                let prepared = *self.prepared.lock().unwrap_or_else(|p| p.into_inner());
                assert!(prepared > 0, "a batch was encoded before prepare_image");
                self.inner.encode_image_batch(pixels)
            }
            fn encode_text_batch(&self, ids: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
                self.inner.encode_text_batch(ids)
            }
            fn describe(&self) -> String {
                "lazy".into()
            }
            fn prepare_image(&self) -> Result<()> {
                *self.prepared.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                if self.fail {
                    return Err(Error::InvalidInput {
                        reason: "tower broken".into(),
                    });
                }
                Ok(())
            }
        }
        let lazy = |fail| {
            std::sync::Arc::new(Lazy {
                inner: FakeEncoder::new(),
                prepared: Mutex::new(0),
                fail,
            })
        };
        let prepared = |lazy: &Lazy| *lazy.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let photos = images(5);
        for (batch, n) in [(8, 5), (2, 5), (2, 1)] {
            let encoder = lazy(false);
            let clip = Clip::new(std::sync::Arc::clone(&encoder)).with_batch_size(batch);
            let embeds = clip
                .encode_images(&photos[..n])
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(embeds.nrows(), n);
            assert_eq!(prepared(&encoder), 1, "batch {batch}, {n} images");
        }
        let encoder = lazy(false);
        let clip = Clip::new(std::sync::Arc::clone(&encoder));
        let none: [&image::DynamicImage; 0] = [];
        assert_eq!(clip.encode_images(&none).map(|e| e.nrows()).ok(), Some(0));
        assert_eq!(prepared(&encoder), 0);
        let broken = Clip::new(lazy(true)).with_batch_size(2);
        for result in [
            broken.encode_images(&photos).map(|_| ()),
            broken.encode_images_partial(&photos).map(|_| ()),
        ] {
            match result {
                Err(Error::InvalidInput { reason }) => assert_eq!(reason, "tower broken"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn wrong_encoder_output_is_an_error() {
        struct Short(ModelConfig);
        impl Encoder for Short {
            fn config(&self) -> &ModelConfig {
                &self.0
            }
            fn encode_image_batch(&self, _: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
                Ok(Array2::zeros((1, 3)))
            }
            fn encode_text_batch(&self, _: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
                Ok(Array2::zeros((1, 2)))
            }
            fn describe(&self) -> String {
                "short".into()
            }
        }
        let clip = Clip::new(Short(ModelConfig::new(3, 8, 0.0)));
        assert!(matches!(
            clip.encode_texts(&["a", "b"]),
            Err(Error::EncoderOutput { .. })
        ));
        let pixels = Array4::<f32>::zeros((2, 3, 8, 8));
        assert!(matches!(
            clip.encode_pixels(pixels.view()),
            Err(Error::EncoderOutput { .. })
        ));
    }
}
