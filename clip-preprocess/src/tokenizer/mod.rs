//! CLIP's tokenizer, bit-exact with OpenAI's `clip.tokenize` / `simple_tokenizer.py`.
//!
//! The pipeline is a chain of small stages, one per file:
//!
//! | stage | reference | here |
//! |---|---|---|
//! | cleaning | `ftfy.fix_text`, `html.unescape` ×2, `\s+` → ` `, `str.lower()` | [`clean`] (`clean/ftfy.rs`, `html.rs`, `lower.rs`) |
//! | pre-tokenization | `regex.findall(pat, text)` | `pretokenize.rs` |
//! | byte-level BPE | `SimpleTokenizer.bpe` | `bpe.rs` |
//! | vocabulary | `bpe_simple_vocab_16e6.txt.gz` | `vocab.rs` (embedded) |
//!
//! Every Unicode table the stages need (letter/number classes of the `regex` module,
//! CPython's lowercase mappings and whitespace, ftfy's codecs, regexes and entity
//! tables, Python's HTML5 entities) is measured from the reference runtime by
//! `tools/gen_tokenizer_goldens.py tables`, so the port follows the reference's Unicode
//! versions. `tests/tokenizer_golden.rs` checks the ids against goldens produced by the
//! reference on a corpus of real text; `tests/data/tokenizer/README.md` lists the known
//! differences.
//!
//! ```
//! use clip_preprocess::tokenizer::{Tokenizer, EOT, SOT};
//!
//! let tok = Tokenizer::new();
//! let ids = tok.encode("a photo of a cat");
//! assert_eq!(tok.decode(&ids), "a photo of a cat ");
//! let batch = tok.tokenize(&["a photo of a cat", "a dog"], 77, false)?;
//! assert_eq!(batch.shape(), &[2, 77]);
//! assert_eq!(batch[[0, 0]], SOT as i32);
//! assert_eq!(batch[[0, ids.len() + 1]], EOT as i32);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
mod bpe;
mod byte_unicode;
pub mod clean;
mod data;
mod html;
mod lower;
mod merge_table;
mod pretokenize;
mod vocab;

/// The xorshift64 step (13, 7, 17) that the tokenizer's randomized tests draw from:
/// advances `state` and returns it.
#[cfg(test)]
pub(crate) fn xorshift64(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ndarray::Array2;

use vocab::Vocab;

/// `<|startoftext|>` in OpenAI's vocabulary.
pub const SOT: u32 = 49406;
/// `<|endoftext|>` in OpenAI's vocabulary. The text encoder pools at `argmax(ids)`,
/// which is this token because it has the highest id.
pub const EOT: u32 = 49407;
/// The context length of every released CLIP model.
pub const DEFAULT_CONTEXT_LENGTH: usize = 77;
/// The largest context length accepted: far above any CLIP model's (77), and small enough
/// that a row is a bounded allocation whatever number the caller passes.
pub const MAX_CONTEXT_LENGTH: usize = 1 << 16;

/// Errors of the tokenizer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// Text `index` needs `tokens` tokens (with SOT and EOT) but only `context_length`
    /// fit. Shorten the text or pass `truncate = true` (as `clip.tokenize` does).
    #[error("input {index} is too long for context length {context_length} ({tokens} tokens)")]
    TooLong {
        /// Index of the offending text in the batch.
        index: usize,
        /// Number of tokens it needs, SOT and EOT included.
        tokens: usize,
        /// The context length asked for.
        context_length: usize,
    },
    /// The context length cannot hold SOT and EOT (it must be at least 2), or is above
    /// [`MAX_CONTEXT_LENGTH`].
    #[error(
        "context length {context_length} is outside 2..={MAX_CONTEXT_LENGTH} (2 for the start and end tokens)"
    )]
    ContextLength {
        /// The context length asked for.
        context_length: usize,
    },
    /// A vocabulary file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A vocabulary file is not valid JSON.
    #[error("{} is not valid JSON", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The vocabulary or merges are not a usable CLIP BPE vocabulary (a byte symbol, a
    /// merge result or a special token is missing, a merge line is malformed...).
    #[error("invalid BPE vocabulary: {reason}")]
    InvalidVocabulary {
        /// What is wrong.
        reason: String,
    },
}

/// CLIP's tokenizer: [`clean`](clean::clean), pre-tokenization and byte-level BPE.
///
/// Cheap to clone (the vocabulary is shared) and `Send + Sync`.
#[derive(Clone)]
pub struct Tokenizer {
    vocab: Arc<Vocab>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab.size)
            .field("sot", &self.vocab.sot)
            .field("eot", &self.vocab.eot)
            .finish_non_exhaustive()
    }
}

/// [`TokenizerError::ContextLength`] unless `2 <= context_length <= MAX_CONTEXT_LENGTH`.
fn check_context_length(context_length: usize) -> Result<(), TokenizerError> {
    if (2..=MAX_CONTEXT_LENGTH).contains(&context_length) {
        Ok(())
    } else {
        Err(TokenizerError::ContextLength { context_length })
    }
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Tokenizer {
    /// The tokenizer of every released CLIP model, with OpenAI's vocabulary embedded in
    /// the crate (49,408 ids). The vocabulary is parsed once per process.
    ///
    /// ```
    /// let tok = clip_preprocess::tokenizer::Tokenizer::new();
    /// assert_eq!(tok.vocab_size(), 49408);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        static OPENAI: OnceLock<Arc<Vocab>> = OnceLock::new();
        let vocab = OPENAI.get_or_init(|| {
            // The embedded file is a constant of this crate, parsed in every test run:
            // failing here is a build defect, not a user error.
            #[allow(clippy::expect_used)]
            Arc::new(Vocab::openai().expect("the embedded CLIP vocabulary is valid"))
        });
        Self {
            vocab: Arc::clone(vocab),
        }
    }

    /// Loads the BPE model of a Hugging Face `tokenizer.json` (as shipped with ONNX
    /// exports of CLIP). Only its vocabulary and merges are used: the cleaning is always
    /// the reference's (ftfy, HTML unescape, lowercase), not the file's normalizer.
    ///
    /// # Errors
    /// [`TokenizerError::Io`], [`TokenizerError::Json`] or
    /// [`TokenizerError::InvalidVocabulary`].
    pub fn from_tokenizer_json(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        Ok(Self {
            vocab: Arc::new(Vocab::from_tokenizer_json(path.as_ref())?),
        })
    }

    /// Loads `vocab.json` (token → id) and `merges.txt` (rank = line order).
    ///
    /// # Errors
    /// [`TokenizerError::Io`], [`TokenizerError::Json`] or
    /// [`TokenizerError::InvalidVocabulary`].
    pub fn from_vocab_merges(
        vocab_json: impl AsRef<Path>,
        merges_txt: impl AsRef<Path>,
    ) -> Result<Self, TokenizerError> {
        Ok(Self {
            vocab: Arc::new(Vocab::from_vocab_merges(
                vocab_json.as_ref(),
                merges_txt.as_ref(),
            )?),
        })
    }

    /// The number of tokens in the vocabulary.
    #[must_use]
    pub fn vocab_size(&self) -> usize {
        self.vocab.size
    }

    /// The id of `<|startoftext|>` in this vocabulary ([`SOT`] for OpenAI's).
    #[must_use]
    pub fn sot(&self) -> u32 {
        self.vocab.sot
    }

    /// The id of `<|endoftext|>` in this vocabulary ([`EOT`] for OpenAI's).
    #[must_use]
    pub fn eot(&self) -> u32 {
        self.vocab.eot
    }

    /// BPE ids of `text`, without SOT/EOT: `SimpleTokenizer().encode(text)`.
    ///
    /// The literal strings `<|startoftext|>` and `<|endoftext|>` in the text become the
    /// special ids, as in the reference.
    #[must_use]
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_limited(text, usize::MAX).0
    }

    /// Like [`encode`](Self::encode) but stops once at least `limit` ids are produced;
    /// the flag says whether it stopped early (more ids would follow).
    fn encode_limited(&self, text: &str, limit: usize) -> (Vec<u32>, bool) {
        let mut ids = Vec::new();
        let stopped = self.encode_into(text, limit, &mut ids);
        (ids, stopped)
    }

    /// [`encode_limited`](Self::encode_limited) appending to `ids` (the limit counts
    /// the ids appended); returns whether it stopped early.
    fn encode_into(&self, text: &str, limit: usize, ids: &mut Vec<u32>) -> bool {
        let cleaned = clean::clean(text);
        ids.reserve(cleaned.len() / 3 + 2);
        let start = ids.len();
        let mut stopped = false;
        bpe::with_encoder(&self.vocab, |encoder| {
            pretokenize::pretokenize(&cleaned, |piece| {
                if stopped {
                    return;
                }
                if ids.len() - start >= limit {
                    stopped = true;
                    return;
                }
                match piece {
                    "<|startoftext|>" => ids.push(self.vocab.sot),
                    "<|endoftext|>" => ids.push(self.vocab.eot),
                    _ => encoder.piece(piece.as_bytes(), ids),
                }
            });
        });
        stopped
    }

    /// `clip.tokenize(texts, context_length, truncate)`: one row per text,
    /// `[SOT] + ids + [EOT]` padded with 0. A text that does not fit is an error unless
    /// `truncate`, which keeps the first `context_length` tokens and makes the last EOT.
    /// Batches of a few hundred texts or more are split over the available cores.
    ///
    /// # Errors
    /// [`TokenizerError::TooLong`] (the first text that does not fit, without
    /// `truncate`), [`TokenizerError::ContextLength`] if `context_length` is outside
    /// `2..=`[`MAX_CONTEXT_LENGTH`].
    pub fn tokenize<S: AsRef<str>>(
        &self,
        texts: &[S],
        context_length: usize,
        truncate: bool,
    ) -> Result<Array2<i32>, TokenizerError> {
        check_context_length(context_length)?;
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let rows = self.rows_parallel(&texts, context_length, truncate);
        let mut out = Array2::<i32>::zeros((texts.len(), context_length));
        for (index, row) in rows.into_iter().enumerate() {
            let row = row.map_err(|tokens| TokenizerError::TooLong {
                index,
                tokens,
                context_length,
            })?;
            for (dst, &id) in out.row_mut(index).iter_mut().zip(&row) {
                // Ids are below twice the vocabulary size plus 1,024 (checked when a
                // vocabulary is loaded), far below i32::MAX.
                *dst = i32::try_from(id).unwrap_or(i32::MAX);
            }
        }
        Ok(out)
    }

    /// [`tokenize_one`](Self::tokenize_one) for every text, split over the available
    /// cores when the batch is large enough to pay for the threads (texts are
    /// independent; the result does not depend on the split).
    fn rows_parallel(
        &self,
        texts: &[&str],
        context_length: usize,
        truncate: bool,
    ) -> Vec<Result<Vec<u32>, usize>> {
        /// Below this many texts per thread, one thread is faster.
        const MIN_PER_THREAD: usize = 128;
        let one = |t: &&str| self.tokenize_one(t, context_length, truncate);
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(texts.len() / MIN_PER_THREAD);
        if threads <= 1 {
            return texts.iter().map(one).collect();
        }
        let chunk = texts.len().div_ceil(threads);
        let (first, rest) = texts.split_at(chunk.min(texts.len()));
        std::thread::scope(|s| {
            let handles: Vec<_> = rest
                .chunks(chunk)
                .map(|part| {
                    std::thread::Builder::new()
                        .spawn_scoped(s, move || part.iter().map(one).collect::<Vec<_>>())
                        .map_err(|_| part)
                })
                .collect();
            // The calling thread takes the first share itself: its BPE cache (per
            // thread, see bpe.rs) stays warm from one call to the next.
            let mut rows: Vec<_> = first.iter().map(one).collect();
            for h in handles {
                match h.map(|h| h.join()) {
                    Ok(Ok(part)) => rows.extend(part),
                    // A worker only panics on a bug of this crate: propagate it as is.
                    Ok(Err(payload)) => std::panic::resume_unwind(payload),
                    // No thread to be had (a process limit): this share is done here.
                    Err(part) => rows.extend(part.iter().map(one)),
                }
            }
            rows
        })
    }

    /// One row of [`tokenize`](Self::tokenize) without the padding: `Err(n)` when the
    /// text needs `n > context_length` tokens and `truncate` is off (without truncation
    /// the full count is computed; `n` is then exact).
    pub(crate) fn tokenize_one(
        &self,
        text: &str,
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<u32>, usize> {
        let (ids, stopped) = if truncate {
            self.encode_limited(text, context_length.saturating_sub(1))
        } else {
            (self.encode(text), false)
        };
        self.frame(&ids, stopped, context_length, truncate)
    }

    /// `[SOT] + ids + [EOT]`, cut to `context_length` with EOT last when `truncate`;
    /// `Err(n)` (the row's length, a lower bound if `stopped`) when it does not fit and
    /// `truncate` is off. `stopped`: encoding stopped early, more ids would follow.
    fn frame(
        &self,
        ids: &[u32],
        stopped: bool,
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<u32>, usize> {
        let mut row = Vec::with_capacity(context_length.max(ids.len() + 2));
        row.push(self.vocab.sot);
        row.extend_from_slice(ids);
        self.close_row(&mut row, stopped, context_length, truncate)?;
        Ok(row)
    }

    /// The end of [`frame`](Self::frame), on a row that holds `[SOT] + ids`: appends
    /// EOT, then cuts or fails as `frame` says.
    fn close_row(
        &self,
        row: &mut Vec<u32>,
        stopped: bool,
        context_length: usize,
        truncate: bool,
    ) -> Result<(), usize> {
        row.push(self.vocab.eot);
        if row.len() > context_length || stopped {
            if !truncate {
                return Err(row.len());
            }
            row.truncate(context_length);
            if let Some(last) = row.last_mut() {
                *last = self.vocab.eot;
            }
        }
        Ok(())
    }

    /// One row of `clip.tokenize` for the command line: like
    /// [`tokenize`](Self::tokenize) for one text, but without `truncate` it stops
    /// encoding as soon as the text is known not to fit (the `tokens` of the
    /// [`TokenizerError::TooLong`] is then a lower bound, `index` is 0), which bounds the
    /// work on huge lines. The row is padded to `context_length`.
    ///
    /// # Errors
    /// [`TokenizerError::TooLong`], [`TokenizerError::ContextLength`].
    #[doc(hidden)]
    pub fn tokenize_row(
        &self,
        text: &str,
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        check_context_length(context_length)?;
        // The ids are encoded straight into the row (no second vector per text).
        let mut row = Vec::with_capacity(context_length);
        row.push(self.vocab.sot);
        let stopped = self.encode_into(text, context_length.saturating_sub(1), &mut row);
        self.close_row(&mut row, stopped, context_length, truncate)
            .map_err(|tokens| TokenizerError::TooLong {
                index: 0,
                tokens,
                context_length,
            })?;
        row.resize(context_length, 0);
        Ok(row)
    }

    /// `SimpleTokenizer().decode(ids)`: the byte-level symbols joined, decoded as UTF-8
    /// with U+FFFD for invalid sequences, `</w>` turned into a space. Ids the vocabulary
    /// does not have are skipped (the reference raises `KeyError`).
    #[must_use]
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let Some(Some(tok)) = self.vocab.decoder().get(id as usize) else {
                continue;
            };
            for c in tok.chars() {
                match self.vocab.byte_decoder.get(&c) {
                    Some(&b) => bytes.push(b),
                    None => {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).replace(vocab::EOW, " ")
    }
}
