//! Zero-shot classification: labels (and prompt templates) in, a probability per label out.
//!
//! A [`ZeroShotClassifier`] is built once from a list of labels — encoding their prompts is
//! the expensive part — and then applied to any number of image embeddings.
//!
//! * **No templates** (the default): each label is tokenized as given, so
//!   [`ZeroShotClassifier::classify`] equals the reference's
//!   `model(image, clip.tokenize(labels))[0].softmax(dim=-1)`.
//! * **Templates** such as `"a photo of a {}."` (`{}` is replaced by the label): prompt
//!   ensembling as in the CLIP paper (§3.1.4) and OpenAI's notebook
//!   [`Prompt_Engineering_for_ImageNet.ipynb`](https://github.com/openai/CLIP/blob/a1d071733d7111c9c014f024669f959182114e33/notebooks/Prompt_Engineering_for_ImageNet.ipynb):
//!   for each label, encode every template, L2-normalise each embedding, take their mean
//!   and normalise it again ([`ensemble`]). [`imagenet_templates`] are the notebook's 80.
//!
//! Logits are `logit_scale.exp() × cosine` with the model's **own** learned scale
//! ([`ModelConfig::logit_scale`](crate::ModelConfig::logit_scale)): 100 for OpenAI's
//! released models, ≈ 14.29 for a random initialisation. (The notebook hard-codes 100,
//! which is the same number for released models.)
//!
//! ```no_run
//! use clip_core::zero_shot::{imagenet_templates, ZeroShotClassifier};
//! # fn demo(clip: &clip_core::Clip) -> Result<(), Box<dyn std::error::Error>> {
//! let classifier = ZeroShotClassifier::builder(["dog", "cat", "bird"])
//!     .with_templates(imagenet_templates())
//!     .build(clip)?;
//! let images = clip.encode_images(&["photo.jpg"])?;          // [1, D]
//! let probs = classifier.classify(images.view())?;            // [1, 3]
//! for p in classifier.top_k(probs.row(0), 2) {
//!     println!("{}: {:.3}", p.label, p.probability);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayView3, Axis, Slice};

use crate::clip::{AsImageInput, Clip};
use crate::error::Error;
use crate::similarity;

/// The placeholder a template holds where the label goes.
pub const PLACEHOLDER: &str = "{}";

/// OpenAI's 80 ImageNet prompt templates, one per line (see `clip-core/data/README.md`).
const IMAGENET_TEMPLATES_TXT: &str = include_str!("../data/imagenet_templates.txt");
/// The 1,000 ImageNet class names in class-index order, one per line.
const IMAGENET_CLASSES_TXT: &str = include_str!("../data/imagenet_classes.txt");

/// OpenAI's 80 prompt templates for ImageNet (`"a bad photo of a {}."`, …), as used in the
/// CLIP paper's zero-shot evaluation. Taken from open_clip 3.3.0's `zero_shot_metadata.py`.
///
/// ```
/// let templates = clip_core::zero_shot::imagenet_templates();
/// assert_eq!(templates.len(), 80);
/// assert_eq!(templates[0], "a bad photo of a {}.");
/// ```
pub fn imagenet_templates() -> Vec<&'static str> {
    IMAGENET_TEMPLATES_TXT.lines().collect()
}

/// The 1,000 ImageNet class names of OpenAI's notebook, in class-index order.
///
/// Two names occur twice, as in the source: `"missile"` (classes 657 and 744) and
/// `"sunglasses"` (836 and 837); [`ZeroShotClassifier::imagenet`] allows that.
///
/// ```
/// let classes = clip_core::zero_shot::imagenet_classes();
/// assert_eq!(classes.len(), 1000);
/// assert_eq!(classes[0], "tench");
/// ```
pub fn imagenet_classes() -> Vec<&'static str> {
    IMAGENET_CLASSES_TXT.lines().collect()
}

/// What went wrong building or applying a [`ZeroShotClassifier`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZeroShotError {
    /// The label list is empty: give at least one label.
    #[error("no labels: a zero-shot classifier needs at least one label")]
    NoLabels,
    /// A label is the empty string (often a shell quoting mistake).
    #[error("label {index} is empty")]
    EmptyLabel {
        /// Its position in the label list.
        index: usize,
    },
    /// The same label occurs twice. Its probability would be split between the two
    /// entries; remove one, or allow it with [`ZeroShotBuilder::with_duplicate_labels`].
    #[error("duplicate label {label:?} at positions {first} and {second}: labels must be unique")]
    DuplicateLabel {
        /// The repeated label.
        label: String,
        /// Position of its first occurrence.
        first: usize,
        /// Position of the repetition.
        second: usize,
    },
    /// Two different labels give identical token ids for every prompt (CLIP's tokenizer
    /// lowercases and collapses whitespace, so `"Dog"` and `"dog "` are the same text to the
    /// model): they would get identical probabilities. Make them differ in words.
    #[error(
        "labels {first_label:?} (position {first}) and {second_label:?} (position {second}) are \
         the same text after tokenizing (CLIP lowercases and collapses whitespace)"
    )]
    IndistinguishableLabels {
        /// The earlier label.
        first_label: String,
        /// Its position.
        first: usize,
        /// The later label.
        second_label: String,
        /// Its position.
        second: usize,
    },
    /// [`ZeroShotBuilder::with_templates`] was given an empty list. For labels as given,
    /// do not call it at all.
    #[error("no templates: give at least one template, or none at all to use the labels as given")]
    NoTemplates,
    /// A template has no `{}` where the label goes.
    #[error("template {index} ({template:?}) has no `{{}}` placeholder for the label")]
    TemplateWithoutPlaceholder {
        /// Its position in the template list.
        index: usize,
        /// The template.
        template: String,
    },
    /// Embeddings of the wrong shape were passed: the message says what was expected.
    #[error("{what} have shape {actual:?}, expected {expected}")]
    Shape {
        /// Which embeddings.
        what: &'static str,
        /// Their shape.
        actual: Vec<usize>,
        /// What was expected.
        expected: String,
    },
    /// The prompts of a label could not be tokenized or encoded (for example: longer than
    /// the model's context; shorten the label or enable truncation on the [`Clip`]).
    #[error("cannot encode the prompts of label {label:?}")]
    EncodeText {
        /// The label.
        label: String,
        /// The error from tokenizing or the model.
        #[source]
        source: Error,
    },
    /// The model failed on the prompts of a group of labels, encoded together (about 256
    /// prompts at a time; each label's prompts were tokenized without error).
    #[error("cannot encode the prompts of labels {first:?} to {last:?} (encoded together)")]
    EncodeLabels {
        /// The group's first label.
        first: String,
        /// The group's last label.
        last: String,
        /// The model's error.
        #[source]
        source: Error,
    },
    /// The images could not be decoded or encoded.
    #[error("cannot embed the images")]
    EncodeImages(#[source] Error),
    /// A label's prompt embeddings hold NaN or infinity (a broken model or weights):
    /// ensembling would silently drop or zero them.
    #[error("the prompt embeddings of label {label:?} contain NaN or infinite values")]
    NonFiniteEmbedding {
        /// The label.
        label: String,
    },
}

/// `Result` with [`ZeroShotError`].
pub type Result<T, E = ZeroShotError> = std::result::Result<T, E>;

/// Prompt ensembling for one class: L2-normalise each prompt embedding (rows of
/// `prompt_embeds`, `[T, D]`), take the mean, and normalise it again — OpenAI's
///
/// ```python
/// class_embeddings /= class_embeddings.norm(dim=-1, keepdim=True)
/// class_embedding = class_embeddings.mean(dim=0)
/// class_embedding /= class_embedding.norm()
/// ```
///
/// Sums are accumulated in `f64`. A zero mean (e.g. from zero rows, or `T = 0`) stays zero
/// instead of becoming NaN. Rows are expected finite: a row with NaN is skipped and one
/// with infinity zeroes the result ([`ZeroShotBuilder::build_from_embeddings`] refuses
/// both with [`ZeroShotError::NonFiniteEmbedding`]).
///
/// ```
/// use ndarray::array;
/// let e = clip_core::zero_shot::ensemble(array![[2.0f32, 0.0], [0.0, 5.0]].view());
/// assert!((e[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
/// assert!((e[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
/// ```
pub fn ensemble(prompt_embeds: ArrayView2<'_, f32>) -> Array1<f32> {
    let dim = prompt_embeds.ncols();
    let mut sum = vec![0f64; dim];
    for row in prompt_embeds.rows() {
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for (acc, &x) in sum.iter_mut().zip(row.iter()) {
                *acc += f64::from(x) / norm;
            }
        }
    }
    // The mean's norm is the sum's norm / T: normalising the sum gives the same unit vector.
    let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        sum.iter().map(|x| (x / norm) as f32).collect()
    } else {
        Array1::zeros(dim)
    }
}

/// Labels, templates and options for a [`ZeroShotClassifier`]; finished by
/// [`ZeroShotBuilder::build`] (encodes the prompts with a model) or
/// [`ZeroShotBuilder::build_from_embeddings`] (prompt embeddings computed elsewhere).
#[derive(Clone, Debug)]
#[must_use]
pub struct ZeroShotBuilder {
    labels: Vec<String>,
    templates: Option<Vec<String>>,
    duplicate_labels: bool,
}

impl ZeroShotBuilder {
    /// Labels to classify into, in the order probabilities will come out.
    pub fn new<I, S>(labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            labels: labels.into_iter().map(Into::into).collect(),
            templates: None,
            duplicate_labels: false,
        }
    }

    /// Prompt templates, each with a `{}` where the label goes (every `{}` is replaced);
    /// the labels' embeddings are then ensembles over all templates ([`ensemble`]).
    /// Without this call each label is used as given, exactly like one template `"{}"`.
    pub fn with_templates<I, S>(mut self, templates: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.templates = Some(templates.into_iter().map(Into::into).collect());
        self
    }

    /// Whether repeated (or, with [`build`](Self::build), identically tokenized) labels are
    /// accepted instead of rejected with [`ZeroShotError::DuplicateLabel`] /
    /// [`ZeroShotError::IndistinguishableLabels`]. Default: false. Repeated labels share
    /// their probability mass equally; tell them apart by index, not by name.
    pub fn with_duplicate_labels(mut self, allow: bool) -> Self {
        self.duplicate_labels = allow;
        self
    }

    /// The checks that need no model: labels present, non-empty, unique; templates valid.
    /// Returns the templates to use (`["{}"]` when none were given).
    fn validate(&self) -> Result<Vec<String>> {
        if self.labels.is_empty() {
            return Err(ZeroShotError::NoLabels);
        }
        if let Some(index) = self.labels.iter().position(String::is_empty) {
            return Err(ZeroShotError::EmptyLabel { index });
        }
        if !self.duplicate_labels {
            let mut seen: HashMap<&str, usize> = HashMap::with_capacity(self.labels.len());
            for (second, label) in self.labels.iter().enumerate() {
                if let Some(&first) = seen.get(label.as_str()) {
                    return Err(ZeroShotError::DuplicateLabel {
                        label: label.clone(),
                        first,
                        second,
                    });
                }
                seen.insert(label, second);
            }
        }
        match &self.templates {
            None => Ok(vec![PLACEHOLDER.to_owned()]),
            Some(templates) if templates.is_empty() => Err(ZeroShotError::NoTemplates),
            Some(templates) => {
                if let Some((index, template)) = templates
                    .iter()
                    .enumerate()
                    .find(|(_, t)| !t.contains(PLACEHOLDER))
                {
                    return Err(ZeroShotError::TemplateWithoutPlaceholder {
                        index,
                        template: template.clone(),
                    });
                }
                Ok(templates.clone())
            }
        }
    }

    /// Encodes every label's prompts with `clip` and builds the classifier, with the
    /// model's own logit scale.
    ///
    /// Cost: one text-encoder pass per label × template (80,000 for ImageNet with its 80
    /// templates), in the `Clip`'s batch size.
    pub fn build(self, clip: &Clip) -> Result<ZeroShotClassifier> {
        let templates = self.validate()?;
        let n_labels = self.labels.len();
        let n_templates = templates.len();
        let dim = clip.config().embed_dim;
        // Encode whole groups of labels at once so that batches stay full even with one
        // template per label.
        let group = (256 / n_templates).max(1);
        let mut weights = Array2::<f32>::zeros((n_labels, dim));
        let mut seen_tokens: HashMap<Vec<i32>, usize> = HashMap::new();
        for (group_index, labels) in self.labels.chunks(group).enumerate() {
            let first = group_index * group;
            let mut tokens = Vec::with_capacity(labels.len());
            for (offset, label) in labels.iter().enumerate() {
                let prompts: Vec<String> = templates
                    .iter()
                    .map(|t| t.replace(PLACEHOLDER, label))
                    .collect();
                let ids = clip
                    .tokenize(&prompts)
                    .map_err(|source| ZeroShotError::EncodeText {
                        label: label.clone(),
                        source,
                    })?;
                if !self.duplicate_labels {
                    let key = ids.iter().copied().collect::<Vec<i32>>();
                    if let Some(&earlier) = seen_tokens.get(&key) {
                        return Err(ZeroShotError::IndistinguishableLabels {
                            first_label: self.labels[earlier].clone(),
                            first: earlier,
                            second_label: label.clone(),
                            second: first + offset,
                        });
                    }
                    seen_tokens.insert(key, first + offset);
                }
                tokens.push(ids);
            }
            let views: Vec<ArrayView2<'_, i32>> = tokens.iter().map(|t| t.view()).collect();
            let stacked =
                ndarray::concatenate(Axis(0), &views).map_err(|_| ZeroShotError::Shape {
                    what: "token ids",
                    actual: tokens
                        .first()
                        .map(|t| t.shape().to_vec())
                        .unwrap_or_default(),
                    expected: "the same context length for every prompt".into(),
                })?;
            // The model runs a group of labels at once: a failure there names the group.
            let embeds = clip
                .encode_tokens(stacked.view())
                .map_err(|source| match labels {
                    [first, .., last] => ZeroShotError::EncodeLabels {
                        first: first.clone(),
                        last: last.clone(),
                        source,
                    },
                    _ => ZeroShotError::EncodeText {
                        label: labels.first().cloned().unwrap_or_default(),
                        source,
                    },
                })?;
            for offset in 0..labels.len() {
                let rows = embeds.slice_axis(
                    Axis(0),
                    Slice::from(offset * n_templates..(offset + 1) * n_templates),
                );
                weights.row_mut(first + offset).assign(&ensemble(rows));
            }
        }
        Ok(ZeroShotClassifier {
            labels: self.labels,
            templates,
            weights,
            logit_scale: clip.config().logit_scale,
        })
    }

    /// Builds the classifier from prompt embeddings computed elsewhere: `prompt_embeds` is
    /// `[labels, templates, D]`, the raw `encode_text` outputs of template `t` filled with
    /// label `c` at `[c, t]` (`[labels, 1, D]` without templates). `logit_scale` is the raw
    /// parameter as stored in the model ([`ModelConfig::logit_scale`](crate::ModelConfig::logit_scale)).
    ///
    /// ```
    /// use clip_core::zero_shot::ZeroShotBuilder;
    /// use ndarray::array;
    /// let embeds = array![[[1.0f32, 0.0]], [[0.0, 1.0]]];        // 2 labels, 1 prompt each
    /// let classifier = ZeroShotBuilder::new(["left", "up"])
    ///     .build_from_embeddings(embeds.view(), 100f32.ln())?;
    /// let probs = classifier.classify(array![[3.0f32, 0.0]].view())?;
    /// assert!(probs[[0, 0]] > 0.999);
    /// # Ok::<(), clip_core::zero_shot::ZeroShotError>(())
    /// ```
    pub fn build_from_embeddings(
        self,
        prompt_embeds: ArrayView3<'_, f32>,
        logit_scale: f32,
    ) -> Result<ZeroShotClassifier> {
        let templates = self.validate()?;
        let (n_labels, n_templates, dim) = prompt_embeds.dim();
        if n_labels != self.labels.len() || n_templates != templates.len() || dim == 0 {
            return Err(ZeroShotError::Shape {
                what: "prompt embeddings",
                actual: prompt_embeds.shape().to_vec(),
                expected: format!("[{}, {}, D > 0]", self.labels.len(), templates.len()),
            });
        }
        let mut weights = Array2::<f32>::zeros((n_labels, dim));
        for ((class, mut row), label) in prompt_embeds
            .outer_iter()
            .zip(weights.rows_mut())
            .zip(&self.labels)
        {
            if class.iter().any(|x| !x.is_finite()) {
                return Err(ZeroShotError::NonFiniteEmbedding {
                    label: label.clone(),
                });
            }
            row.assign(&ensemble(class));
        }
        Ok(ZeroShotClassifier {
            labels: self.labels,
            templates,
            weights,
            logit_scale,
        })
    }
}

/// One label of a [`ZeroShotClassifier::top_k`] answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction<'a> {
    /// The label's position in the classifier's label list.
    pub index: usize,
    /// The label.
    pub label: &'a str,
    /// Its probability.
    pub probability: f32,
}

/// A zero-shot classifier: one unit-length embedding per label, and the model's logit scale.
///
/// Build it with [`ZeroShotClassifier::builder`] (or [`ZeroShotClassifier::new`] for labels
/// as given, [`ZeroShotClassifier::imagenet`] for the 1,000 ImageNet classes), then call
/// [`classify`](Self::classify) on image embeddings of the same model. See the
/// [module docs](self) for the reference it reproduces.
#[derive(Clone, Debug)]
pub struct ZeroShotClassifier {
    labels: Vec<String>,
    templates: Vec<String>,
    /// `[labels, D]`, rows of unit length (or zero).
    weights: Array2<f32>,
    /// Raw, as in the weights; `exp()` multiplies the cosines.
    logit_scale: f32,
}

impl ZeroShotClassifier {
    /// Starts a classifier for `labels`; see [`ZeroShotBuilder`].
    pub fn builder<I, S>(labels: I) -> ZeroShotBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ZeroShotBuilder::new(labels)
    }

    /// A classifier for `labels` as given (no templates), encoded with `clip`.
    pub fn new<I, S>(clip: &Clip, labels: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ZeroShotBuilder::new(labels).build(clip)
    }

    /// The 1,000 ImageNet classes with the 80 ImageNet templates — the CLIP paper's
    /// zero-shot ImageNet classifier. Encodes 80,000 prompts: minutes on a CPU.
    pub fn imagenet(clip: &Clip) -> Result<Self> {
        ZeroShotBuilder::new(imagenet_classes())
            .with_templates(imagenet_templates())
            .with_duplicate_labels(true)
            .build(clip)
    }

    /// The labels, in probability order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The templates (`["{}"]` when the labels are used as given).
    pub fn templates(&self) -> &[String] {
        &self.templates
    }

    /// The label embeddings `[labels, D]`, each of unit length: the transpose of the
    /// notebook's `zeroshot_weights`.
    pub fn label_embeddings(&self) -> ArrayView2<'_, f32> {
        self.weights.view()
    }

    /// The raw logit scale (its `exp()` multiplies the cosine similarities).
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    fn check_width(&self, image_embeds: &ArrayView2<'_, f32>) -> Result<()> {
        if image_embeds.ncols() != self.weights.ncols() {
            return Err(ZeroShotError::Shape {
                what: "image embeddings",
                actual: image_embeds.shape().to_vec(),
                expected: format!("[N, {}]", self.weights.ncols()),
            });
        }
        Ok(())
    }

    /// Logits `[N, labels]`: `logit_scale.exp() × cos(image, label)` for image embeddings
    /// `[N, D]` (raw or normalised: they are normalised here).
    pub fn logits(&self, image_embeds: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_width(&image_embeds)?;
        similarity::logits(image_embeds, self.weights.view(), self.logit_scale).map_err(|_| {
            ZeroShotError::Shape {
                what: "image embeddings",
                actual: image_embeds.shape().to_vec(),
                expected: format!("[N, {}]", self.weights.ncols()),
            }
        })
    }

    /// Probabilities `[N, labels]` (each row sums to 1) for image embeddings `[N, D]`:
    /// the softmax of [`logits`](Self::logits).
    pub fn classify(&self, image_embeds: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        Ok(similarity::softmax_rows(self.logits(image_embeds)?.view()))
    }

    /// Embeds images with `clip` (which must be the model the classifier was built with)
    /// and classifies them: probabilities `[N, labels]`.
    pub fn classify_images<I: AsImageInput>(
        &self,
        clip: &Clip,
        inputs: &[I],
    ) -> Result<Array2<f32>> {
        let embeds = clip
            .encode_images(inputs)
            .map_err(ZeroShotError::EncodeImages)?;
        self.classify(embeds.view())
    }

    /// The `k` most probable labels of one row of [`classify`](Self::classify)'s output,
    /// most probable first (ties: lower index first; NaN last). `k` larger than the number
    /// of labels gives them all.
    pub fn top_k(&self, probs: ArrayView1<'_, f32>, k: usize) -> Vec<Prediction<'_>> {
        let mut order: Vec<usize> = (0..probs.len().min(self.labels.len())).collect();
        order.sort_by(|&a, &b| {
            let (pa, pb) = (probs[a], probs[b]);
            match (pa.is_nan(), pb.is_nan()) {
                (true, true) => a.cmp(&b),
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) => pb.total_cmp(&pa).then(a.cmp(&b)),
            }
        });
        order
            .into_iter()
            .take(k)
            .map(|index| Prediction {
                index,
                label: &self.labels[index],
                probability: probs[index],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn shipped_data_has_80_templates_and_1000_classes() {
        let templates = imagenet_templates();
        assert_eq!(templates.len(), 80);
        assert!(templates
            .iter()
            .all(|t| t.matches(PLACEHOLDER).count() == 1));
        assert_eq!(templates[79], "a tattoo of the {}.");
        let classes = imagenet_classes();
        assert_eq!(classes.len(), 1000);
        assert_eq!(classes[999], "toilet paper");
        assert_eq!(classes[657], "missile");
        assert_eq!(classes[744], "missile");
        assert!(classes.iter().all(|c| !c.is_empty() && c.trim() == *c));
    }

    #[test]
    fn label_and_template_errors() {
        let e = array![[[1.0f32, 0.0]], [[0.0, 1.0]]];
        let none: [&str; 0] = [];
        assert!(matches!(
            ZeroShotBuilder::new(none).build_from_embeddings(e.view(), 0.0),
            Err(ZeroShotError::NoLabels)
        ));
        assert!(matches!(
            ZeroShotBuilder::new(["a", "a"]).build_from_embeddings(e.view(), 0.0),
            Err(ZeroShotError::DuplicateLabel {
                first: 0,
                second: 1,
                ..
            })
        ));
        assert!(ZeroShotBuilder::new(["a", "a"])
            .with_duplicate_labels(true)
            .build_from_embeddings(e.view(), 0.0)
            .is_ok());
        assert!(matches!(
            ZeroShotBuilder::new(["a", ""]).build_from_embeddings(e.view(), 0.0),
            Err(ZeroShotError::EmptyLabel { index: 1 })
        ));
        assert!(matches!(
            ZeroShotBuilder::new(["a", "b"])
                .with_templates(["a {}", "no placeholder"])
                .build_from_embeddings(e.view(), 0.0),
            Err(ZeroShotError::TemplateWithoutPlaceholder { index: 1, .. })
        ));
        let no_templates: [&str; 0] = [];
        assert!(matches!(
            ZeroShotBuilder::new(["a", "b"])
                .with_templates(no_templates)
                .build_from_embeddings(e.view(), 0.0),
            Err(ZeroShotError::NoTemplates)
        ));
        // Two templates announced, one embedded.
        assert!(matches!(
            ZeroShotBuilder::new(["a", "b"])
                .with_templates(["a {}", "b {}"])
                .build_from_embeddings(e.view(), 0.0),
            Err(ZeroShotError::Shape { .. })
        ));
    }

    #[test]
    fn classify_checks_width_and_uses_the_given_scale() {
        let e = array![[[1.0f32, 0.0]], [[0.0, 1.0]]];
        let c = ZeroShotBuilder::new(["x", "y"])
            .build_from_embeddings(e.view(), 2.0f32.ln())
            .unwrap();
        assert!(matches!(
            c.classify(array![[1.0f32, 0.0, 0.0]].view()),
            Err(ZeroShotError::Shape { .. })
        ));
        // logits 2·1 and 2·0 → softmax [e²/(e²+1), 1/(e²+1)].
        let p = c.classify(array![[5.0f32, 0.0]].view()).unwrap();
        let e2 = std::f32::consts::E.powi(2);
        assert!((p[[0, 0]] - e2 / (e2 + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn non_finite_prompt_embeddings_are_refused_naming_the_label() {
        for bad in [f32::NAN, f32::INFINITY] {
            let e = array![[[1.0f32, 0.0]], [[bad, 1.0]]];
            match ZeroShotBuilder::new(["x", "y"]).build_from_embeddings(e.view(), 0.0) {
                Err(ZeroShotError::NonFiniteEmbedding { label }) => assert_eq!(label, "y"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn top_k_orders_by_probability_then_index() {
        let e = array![[[1.0f32]], [[1.0]], [[1.0]], [[1.0]]];
        let c = ZeroShotBuilder::new(["a", "b", "c", "d"])
            .build_from_embeddings(e.view(), 0.0)
            .unwrap();
        let top = c.top_k(array![0.2f32, f32::NAN, 0.5, 0.2].view(), 3);
        let got: Vec<usize> = top.iter().map(|p| p.index).collect();
        assert_eq!(got, [2, 0, 3]);
        assert_eq!(top[0].label, "c");
        assert_eq!(c.top_k(array![0.1f32, 0.2, 0.3, 0.4].view(), 10).len(), 4);
    }

    #[test]
    fn ensemble_of_zero_rows_is_zero() {
        assert_eq!(ensemble(array![[0.0f32, 0.0]].view()), array![0.0f32, 0.0]);
        assert_eq!(
            ensemble(Array2::<f32>::zeros((0, 3)).view()),
            Array1::<f32>::zeros(3)
        );
    }
}
