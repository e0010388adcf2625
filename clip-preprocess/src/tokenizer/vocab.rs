//! Vocabularies: OpenAI's embedded `bpe_simple_vocab_16e6.txt.gz`, a Hugging Face
//! `tokenizer.json`, or `vocab.json` + `merges.txt`.
use std::io::BufRead;
use std::path::Path;
use std::sync::RwLock;

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

/// Piece bytes → BPE ids.
pub(crate) type BpeCache = FxHashMap<Box<[u8]>, Box<[u32]>>;

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
    /// BPE results of short pieces (the reference caches every piece too); bounded.
    pub(crate) cache: RwLock<BpeCache>,
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
            cache: RwLock::new(FxHashMap::default()),
        })
    }

    /// The vocabulary of `simple_tokenizer.py` from its `bpe_simple_vocab_16e6.txt.gz`
    /// contents: 256 byte symbols, the same with `</w>`, one per merge, then
    /// `<|startoftext|>` and `<|endoftext|>`.
    pub(crate) fn from_openai_bpe(text: &str) -> Result<Self, TokenizerError> {
        // Same vocabulary as `Vocab::build` would make from the token list, built without
        // a String-keyed map (this runs at every process start).
        let b2u = bytes_to_unicode();
        let mut tokens: Vec<String> = Vec::with_capacity(512 + OPENAI_MERGES + 2);
        tokens.extend(b2u.iter().map(|(_, c)| c.to_string()));
        tokens.extend(b2u.iter().map(|(_, c)| format!("{c}{EOW}")));
        let mut pairs = Vec::with_capacity(OPENAI_MERGES);
        for line in text.split('\n').skip(1).take(OPENAI_MERGES) {
            let mut it = line.split_whitespace();
            let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
                return Err(invalid(&format!("merge line {line:?} is not two symbols")));
            };
            let mut merged = String::with_capacity(a.len() + b.len());
            merged.push_str(a);
            merged.push_str(b);
            tokens.push(merged);
            pairs.push((a, b));
        }
        tokens.push("<|startoftext|>".into());
        tokens.push("<|endoftext|>".into());
        let size = tokens.len();
        let first_merge = 512;
        let (byte_ids, byte_ids_eow, merges, by_rank, sot, eot) = {
            // `dict(zip(vocab, range(len(vocab))))`: a repeated token keeps its last id.
            let mut encoder: FxHashMap<&str, u32> = FxHashMap::default();
            encoder.reserve(size);
            for (i, t) in tokens.iter().enumerate() {
                encoder.insert(t.as_str(), u32::try_from(i).unwrap_or(u32::MAX));
            }
            let unique = encoder.len() == size;
            let get = |s: &str| {
                encoder
                    .get(s)
                    .copied()
                    .ok_or_else(|| invalid(&format!("token {s:?} is missing")))
            };
            let mut byte_ids = [0u32; 256];
            let mut byte_ids_eow = [0u32; 256];
            for (i, (b, _)) in b2u.iter().enumerate() {
                byte_ids[usize::from(*b)] = get(&tokens[i])?;
                byte_ids_eow[usize::from(*b)] = get(&tokens[256 + i])?;
            }
            let mut merges = FxHashMap::default();
            merges.reserve(pairs.len());
            let mut by_rank = Vec::with_capacity(pairs.len());
            for (rank, &(a, b)) in pairs.iter().enumerate() {
                let (ia, ib) = (get(a)?, get(b)?);
                // Without repeated tokens (OpenAI's file has none) a token's id is its
                // index; otherwise look the last one up, as the reference's dict does.
                let merged = if unique {
                    u32::try_from(first_merge + rank).unwrap_or(u32::MAX)
                } else {
                    get(&tokens[first_merge + rank])?
                };
                let rank = u32::try_from(rank).unwrap_or(u32::MAX);
                merges.insert((ia, ib), (rank, merged));
                by_rank.push((ia, ib, merged));
            }
            let sot = get("<|startoftext|>")?;
            let eot = get("<|endoftext|>")?;
            (byte_ids, byte_ids_eow, merges, by_rank, sot, eot)
        };
        let byte_decoder = b2u.iter().map(|&(b, c)| (c, b)).collect();
        Ok(Self {
            decoder: tokens.into_iter().map(Some).collect(),
            size,
            byte_ids,
            byte_ids_eow,
            merges,
            by_rank,
            byte_decoder,
            sot,
            eot,
            cache: RwLock::new(FxHashMap::default()),
        })
    }

    /// The embedded OpenAI vocabulary.
    pub(crate) fn openai() -> Result<Self, TokenizerError> {
        // Only the header and the first 48,894 merges are used: stop inflating there.
        let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(OPENAI_BPE_GZ));
        let mut text = String::with_capacity(1 << 19);
        for line in reader.lines().take(OPENAI_MERGES + 1) {
            let line = line.map_err(|source| TokenizerError::Io {
                path: "<embedded bpe_simple_vocab_16e6.txt.gz>".into(),
                source,
            })?;
            text.push_str(&line);
            text.push('\n');
        }
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
