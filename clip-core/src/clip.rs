//! The [`Clip`] facade: files, bytes, images and strings in; embeddings out.

use std::path::{Path, PathBuf};

use clip_preprocess::image::Preprocessor;
use clip_preprocess::tokenizer::Tokenizer;
use ndarray::{s, Array1, Array2, Array4, ArrayView2, ArrayView4, Axis};

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

    /// Uses another preprocessor (e.g. with different decompression-bomb limits).
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

    /// Preprocesses one image into `out` (`[3, S, S]`).
    fn preprocess_into(
        &self,
        input: ImageInput<'_>,
        index: usize,
        out: ndarray::ArrayViewMut3<'_, f32>,
    ) -> Result<()> {
        let result = match input {
            ImageInput::Path(path) => std::fs::read(path)
                .map_err(|source| clip_preprocess::image::ImageError::Io {
                    path: path.to_owned(),
                    source,
                })
                .and_then(|bytes| self.preprocessor.preprocess_bytes_into(&bytes, out)),
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
        self.preprocess_batch(inputs, 0)
    }

    /// [`Clip::preprocess_images`] for a slice that starts at `first_index` of the caller's
    /// list, so errors name the caller's position.
    fn preprocess_batch<I: AsImageInput>(
        &self,
        inputs: &[I],
        first_index: usize,
    ) -> Result<Array4<f32>> {
        let size = self.config().image_size as usize;
        let mut batch = Array4::<f32>::zeros((inputs.len(), 3, size, size));
        for (offset, (input, out)) in inputs.iter().zip(batch.outer_iter_mut()).enumerate() {
            self.preprocess_into(input.as_image_input(), first_index + offset, out)?;
        }
        Ok(batch)
    }

    /// Embeds one image: `model.encode_image(preprocess(Image.open(f)).unsqueeze(0))[0]`.
    pub fn encode_image(&self, input: impl AsImageInput) -> Result<Array1<f32>> {
        let embeds = self.encode_images(&[input.as_image_input()])?;
        Ok(embeds.index_axis_move(Axis(0), 0))
    }

    /// Embeds images, `[N, D]` in input order, in batches of [`Clip::with_batch_size`].
    ///
    /// The first image that fails stops the call with an error naming it; to keep going past
    /// bad files, preprocess them one by one and call [`Clip::encode_pixels`].
    pub fn encode_images<I: AsImageInput>(&self, inputs: &[I]) -> Result<Array2<f32>> {
        let dim = self.config().embed_dim;
        let mut out = Array2::<f32>::zeros((inputs.len(), dim));
        for (chunk_index, chunk) in inputs.chunks(self.batch_size).enumerate() {
            let start = chunk_index * self.batch_size;
            let pixels = self.preprocess_batch(chunk, start)?;
            let embeds = self.encoder.encode_image_batch(pixels.view())?;
            out.slice_mut(s![start..start + chunk.len(), ..])
                .assign(&embeds);
        }
        Ok(out)
    }

    /// Embeds already preprocessed images `[N, 3, S, S]` in batches.
    pub fn encode_pixels(&self, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let n = pixels.len_of(Axis(0));
        let mut out = Array2::<f32>::zeros((n, self.config().embed_dim));
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let embeds =
                self.encoder
                    .encode_image_batch(pixels.slice(s![start..end, .., .., ..]))?;
            out.slice_mut(s![start..end, ..]).assign(&embeds);
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

    /// Embeds token ids `[N, L]` (from [`Clip::tokenize`]) in batches.
    pub fn encode_tokens(&self, tokens: ArrayView2<'_, i32>) -> Result<Array2<f32>> {
        let n = tokens.nrows();
        let mut out = Array2::<f32>::zeros((n, self.config().embed_dim));
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let embeds = self
                .encoder
                .encode_text_batch(tokens.slice(s![start..end, ..]))?;
            out.slice_mut(s![start..end, ..]).assign(&embeds);
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
