//! Vocabularies: OpenAI's embedded `bpe_simple_vocab_16e6.txt.gz`, a Hugging Face
//! `tokenizer.json`, or `vocab.json` + `merges.txt`.
use std::io::Read;
use std::path::Path;

use rustc_hash::FxHashMap;

use super::TokenizerError;

/// OpenAI's BPE merges (MIT licence, see `data/LICENSE-bpe_simple_vocab_16e6.txt`),
/// embedded so that no file is needed at run time.
static OPENAI_BPE_GZ: &[u8] = include_bytes!("data/bpe_simple_vocab_16e6.txt.gz");

/// The number of merges `simple_tokenizer.py` reads: `merges[1:49152-256-2+1]`.
const OPENAI_MERGES: usize = 49152 - 256 - 2;

/// The end-of-word marker carried by the last symbol of each word.
pub(crate) const EOW: &str = "</w>";

/// GPT-2's `bytes_to_unicode()`: byte → printable character, in the reference's order
/// (printable bytes first), which is also the order of the first 256 ids.
pub(crate) fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut bs: Vec<u8> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs: Vec<u32> = bs.iter().map(|&b| u32::from(b)).collect();
    let mut n = 0;
    for b in 0..=255u8 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .map(|(b, c)| (b, char::from_u32(c).unwrap_or('\0')))
        .collect()
}

/// A BPE vocabulary compiled for fast encoding: symbols are ids, merges are keyed by
/// the pair of ids.
#[derive(Debug)]
pub(crate) struct Vocab {
    /// id → token string (`None` for ids the vocabulary does not define).
    pub(crate) decoder: Vec<Option<String>>,
    /// Number of entries of the vocabulary.
    pub(crate) size: usize,
    /// Byte → id of its symbol, without and with `</w>`.
    pub(crate) byte_ids: [u32; 256],
    pub(crate) byte_ids_eow: [u32; 256],
    /// (left id, right id) → (rank, merged id).
    pub(crate) merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// rank → (left id, right id, merged id).
    pub(crate) by_rank: Vec<(u32, u32, u32)>,
    /// Character of the byte-level alphabet → byte (for decoding).
    pub(crate) byte_decoder: FxHashMap<char, u8>,
    pub(crate) sot: u32,
    pub(crate) eot: u32,
}

impl Vocab {
    /// Builds the tables from a token → id map and the merges in rank order.
    pub(crate) fn build(
        encoder: FxHashMap<String, u32>,
        merges: Vec<(String, String)>,
    ) -> Result<Self, TokenizerError> {
        let get = |s: &str| {
            encoder
                .get(s)
                .copied()
                .ok_or_else(|| TokenizerError::InvalidVocabulary {
                    reason: format!("token {s:?} is missing from the vocabulary"),
                })
        };
        let mut byte_ids = [0u32; 256];
        let mut byte_ids_eow = [0u32; 256];
        let mut byte_decoder = FxHashMap::default();
        for (b, c) in bytes_to_unicode() {
            let s = c.to_string();
            byte_ids[usize::from(b)] = get(&s)?;
            byte_ids_eow[usize::from(b)] = get(&format!("{s}{EOW}"))?;
            byte_decoder.insert(c, b);
        }
        let mut merge_map = FxHashMap::default();
        let mut by_rank = Vec::with_capacity(merges.len());
        for (rank, (a, b)) in merges.iter().enumerate() {
            let (ia, ib) = (get(a)?, get(b)?);
            let merged = get(&format!("{a}{b}"))?;
            let rank = u32::try_from(rank).map_err(|_| TokenizerError::InvalidVocabulary {
                reason: "too many merges".into(),
            })?;
            // As `dict(zip(merges, range(len(merges))))`: a repeated pair keeps its last rank.
            merge_map.insert((ia, ib), (rank, merged));
            by_rank.push((ia, ib, merged));
        }
        let sot = get("<|startoftext|>")?;
        let eot = get("<|endoftext|>")?;
        let max_id = encoder.values().copied().max().unwrap_or(0);
        let mut decoder = vec![None; max_id as usize + 1];
        for (s, &id) in &encoder {
            if let Some(slot) = decoder.get_mut(id as usize) {
                *slot = Some(s.clone());
            }
        }
        Ok(Self {
            decoder,
            size: encoder.len(),
            byte_ids,
            byte_ids_eow,
            merges: merge_map,
            by_rank,
            byte_decoder,
            sot,
            eot,
        })
    }

    /// The vocabulary of `simple_tokenizer.py` from its `bpe_simple_vocab_16e6.txt.gz`
    /// contents: 256 byte symbols, the same with `</w>`, one per merge, then
    /// `<|startoftext|>` and `<|endoftext|>`.
    pub(crate) fn from_openai_bpe(text: &str) -> Result<Self, TokenizerError> {
        let merges: Vec<(String, String)> = text
            .split('\n')
            .skip(1)
            .take(OPENAI_MERGES)
            .map(parse_merge)
            .collect::<Result<_, _>>()?;
        let mut tokens: Vec<String> = bytes_to_unicode()
            .iter()
            .map(|(_, c)| c.to_string())
            .collect();
        let with_eow: Vec<String> = tokens.iter().map(|t| format!("{t}{EOW}")).collect();
        tokens.extend(with_eow);
        tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        tokens.push("<|startoftext|>".into());
        tokens.push("<|endoftext|>".into());
        let mut encoder = FxHashMap::default();
        for (i, t) in tokens.into_iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| TokenizerError::InvalidVocabulary {
                reason: "vocabulary too large".into(),
            })?;
            encoder.insert(t, id);
        }
        Self::build(encoder, merges)
    }

    /// The embedded OpenAI vocabulary.
    pub(crate) fn openai() -> Result<Self, TokenizerError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(OPENAI_BPE_GZ)
            .read_to_string(&mut text)
            .map_err(|source| TokenizerError::Io {
                path: "<embedded bpe_simple_vocab_16e6.txt.gz>".into(),
                source,
            })?;
        Self::from_openai_bpe(&text)
    }

    /// A Hugging Face `tokenizer.json` with a BPE model (`model.vocab`, `model.merges`
    /// as `"a b"` strings or `["a", "b"]` pairs).
    pub(crate) fn from_tokenizer_json(path: &Path) -> Result<Self, TokenizerError> {
        let text = read(path)?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| TokenizerError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        let model = json
            .get("model")
            .ok_or_else(|| invalid("no \"model\" object"))?;
        if let Some(ty) = model.get("type").and_then(|t| t.as_str()) {
            if ty != "BPE" {
                return Err(invalid(&format!("model type {ty:?} is not BPE")));
            }
        }
        let encoder = vocab_from_json(
            model
                .get("vocab")
                .ok_or_else(|| invalid("no model.vocab"))?,
        )?;
        let mut merges = Vec::new();
        for m in model
            .get("merges")
            .and_then(|m| m.as_array())
            .ok_or_else(|| invalid("no model.merges array"))?
        {
            merges.push(match m {
                serde_json::Value::String(s) => parse_merge(s)?,
                serde_json::Value::Array(pair) => match pair.as_slice() {
                    [serde_json::Value::String(a), serde_json::Value::String(b)] => {
                        (a.clone(), b.clone())
                    }
                    _ => return Err(invalid("a merge is not a pair of strings")),
                },
                _ => return Err(invalid("a merge is neither a string nor a pair")),
            });
        }
        let mut encoder = encoder;
        add_special_tokens(&json, &mut encoder);
        Self::build(encoder, merges)
    }

    /// `vocab.json` (token → id) and `merges.txt` (one `a b` per line, rank = line order,
    /// an optional `#version` header).
    pub(crate) fn from_vocab_merges(vocab: &Path, merges: &Path) -> Result<Self, TokenizerError> {
        let vtext = read(vocab)?;
        let json: serde_json::Value =
            serde_json::from_str(&vtext).map_err(|source| TokenizerError::Json {
                path: vocab.to_path_buf(),
                source,
            })?;
        let encoder = vocab_from_json(&json)?;
        let mtext = read(merges)?;
        let merges = mtext
            .lines()
            .enumerate()
            .filter(|(i, l)| !(l.trim().is_empty() || (*i == 0 && l.starts_with("#version"))))
            .map(|(_, l)| parse_merge(l))
            .collect::<Result<Vec<_>, _>>()?;
        Self::build(encoder, merges)
    }
}

fn invalid(reason: &str) -> TokenizerError {
    TokenizerError::InvalidVocabulary {
        reason: reason.to_owned(),
    }
}

fn read(path: &Path) -> Result<String, TokenizerError> {
    std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_merge(line: &str) -> Result<(String, String), TokenizerError> {
    let mut it = line.split_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), None) => Ok((a.to_owned(), b.to_owned())),
        _ => Err(invalid(&format!("merge line {line:?} is not two symbols"))),
    }
}

fn vocab_from_json(v: &serde_json::Value) -> Result<FxHashMap<String, u32>, TokenizerError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("the vocabulary is not an object"))?;
    let mut encoder = FxHashMap::default();
    for (k, id) in obj {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| invalid(&format!("token {k:?} has no integer id")))?;
        encoder.insert(k.clone(), id);
    }
    Ok(encoder)
}

/// Adds `added_tokens` (where HF keeps `<|startoftext|>` / `<|endoftext|>`) to `encoder`.
fn add_special_tokens(json: &serde_json::Value, encoder: &mut FxHashMap<String, u32>) {
    if let Some(added) = json.get("added_tokens").and_then(|a| a.as_array()) {
        for t in added {
            if let (Some(content), Some(id)) = (
                t.get("content").and_then(|c| c.as_str()),
                t.get("id")
                    .and_then(|i| i.as_u64())
                    .and_then(|i| u32::try_from(i).ok()),
            ) {
                encoder.entry(content.to_owned()).or_insert(id);
            }
        }
    }
}
