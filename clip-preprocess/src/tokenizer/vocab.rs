//! Vocabularies: OpenAI's embedded `bpe_simple_vocab_16e6.txt.gz`, a Hugging Face
//! `tokenizer.json`, or `vocab.json` + `merges.txt`.
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use super::byte_unicode::bytes_to_unicode;
use super::merge_table;
use super::TokenizerError;

/// OpenAI's BPE merges (MIT licence, see `data/LICENSE-bpe_simple_vocab_16e6.txt`),
/// precompiled by `build.rs` from `data/bpe_simple_vocab_16e6.txt.gz` into
/// `(u16 left id, u16 right id)` per merge, in rank order (merge `r` makes id `512 + r`),
/// so that no file is needed at run time and nothing is inflated or hashed by string at
/// start-up.
static OPENAI_MERGES_BIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openai_merges.bin"));

/// The same merges as a pair → rank hash table laid out by `build.rs` (see
/// `merge_table.rs`): the embedded vocabulary builds nothing at start-up.
static OPENAI_RANK_TABLE: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/openai_merge_ranks.bin"));

/// The number of merges `simple_tokenizer.py` reads: `merges[1:49152-256-2+1]`.
const OPENAI_MERGES: usize = 49152 - 256 - 2;

/// In OpenAI's vocabulary merge `r` makes id `512 + r` (after the 2 × 256 byte symbols).
const FIRST_MERGE_ID: usize = 512;

/// The end-of-word marker carried by the last symbol of each word.
pub(crate) const EOW: &str = "</w>";

/// A BPE vocabulary compiled for fast encoding: symbols are ids, merges are keyed by
/// the pair of ids.
#[derive(Debug)]
pub(crate) struct Vocab {
    /// Distinguishes vocabularies in the per-thread BPE caches (see `bpe.rs`).
    pub(crate) id: u64,
    /// id → token string (`None` for ids the vocabulary does not define); only
    /// [`Tokenizer::decode`](super::Tokenizer::decode) needs it, so the embedded
    /// vocabulary builds it on first use.
    decoder: OnceLock<Vec<Option<String>>>,
    /// Number of entries of the vocabulary.
    pub(crate) size: usize,
    /// Byte → id of its symbol, without and with `</w>`.
    pub(crate) byte_ids: [u32; 256],
    pub(crate) byte_ids_eow: [u32; 256],
    /// The merges: (left id, right id) → rank, rank → merge.
    merges: Merges,
    /// Character of the byte-level alphabet → byte (for decoding).
    pub(crate) byte_decoder: FxHashMap<char, u8>,
    pub(crate) sot: u32,
    pub(crate) eot: u32,
}

/// Source of [`Vocab::id`].
static NEXT_VOCAB_ID: AtomicU64 = AtomicU64::new(0);

/// The merges of a vocabulary.
#[derive(Debug)]
enum Merges {
    /// OpenAI's, from the tables `build.rs` embeds (merge `r` makes id `512 + r`).
    OpenAi,
    /// A vocabulary loaded from files.
    Loaded {
        /// (left id, right id) → rank.
        ranks: PairRanks,
        /// rank → (left id, right id, merged id).
        by_rank: Vec<(u32, u32, u32)>,
    },
}

/// The rank of merge `a b` in [`OPENAI_RANK_TABLE`].
#[inline]
fn openai_rank(a: u32, b: u32) -> Option<u32> {
    let key = merge_table::pair_key(a, b)?;
    let mask = (1usize << merge_table::BITS) - 1;
    let mut i = merge_table::slot(key);
    // `build.rs` guarantees an empty slot within MAX_PROBES reads.
    for _ in 0..merge_table::MAX_PROBES {
        let bytes = OPENAI_RANK_TABLE.get(i * 8..i * 8 + 8)?;
        let entry = u64::from_le_bytes(bytes.try_into().ok()?);
        if entry == merge_table::EMPTY {
            return None;
        }
        if (entry >> 32) as u32 == key {
            return Some(entry as u32);
        }
        i = (i + 1) & mask;
    }
    None
}

/// Merge `rank` of the embedded vocabulary: (left id, right id, merged id).
fn openai_merge(rank: u32) -> Option<(u32, u32, u32)> {
    let r = rank as usize;
    let (a, b) = merge_table::merge_record(OPENAI_MERGES_BIN.get(r * 4..r * 4 + 4)?)?;
    // r < OPENAI_MERGES (the slice exists): fits in u32.
    Some((a, b, (FIRST_MERGE_ID + r) as u32))
}

/// Merge ranks by pair of ids, the inner loop of BPE. Pairs of two ids below 2^16 (all
/// of them in CLIP's 49,408-id vocabularies) are keyed by one `u32` with a `u32` rank:
/// 8-byte entries, half the memory of a `(u64 key, (rank, merged id))` table, so more of
/// it stays in cache (its misses were most of BPE's time); the merged id is looked up
/// by rank once per merge step instead. Larger ids go to a second, `u64`-keyed map.
#[derive(Debug, Default)]
struct PairRanks {
    narrow: FxHashMap<u32, u32>,
    wide: FxHashMap<u64, u32>,
}

impl PairRanks {
    fn with_capacity(n: usize) -> Self {
        Self {
            narrow: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            wide: FxHashMap::default(),
        }
    }

    #[inline]
    fn get(&self, a: u32, b: u32) -> Option<u32> {
        if (a | b) >> 16 == 0 {
            self.narrow.get(&((a << 16) | b)).copied()
        } else {
            self.wide
                .get(&((u64::from(a) << 32) | u64::from(b)))
                .copied()
        }
    }

    fn insert(&mut self, a: u32, b: u32, rank: u32) {
        if (a | b) >> 16 == 0 {
            self.narrow.insert((a << 16) | b, rank);
        } else {
            self.wide.insert((u64::from(a) << 32) | u64::from(b), rank);
        }
    }
}

impl Vocab {
    /// The rank of the merge of the adjacent symbols `a b`, if there is one.
    #[inline]
    pub(crate) fn rank(&self, a: u32, b: u32) -> Option<u32> {
        match &self.merges {
            Merges::OpenAi => openai_rank(a, b),
            Merges::Loaded { ranks, .. } => ranks.get(a, b),
        }
    }

    /// The id made by the merge of rank `rank`.
    #[inline]
    pub(crate) fn merged_id(&self, rank: u32) -> Option<u32> {
        match &self.merges {
            // Merge r makes id 512 + r (checked by `build.rs` and the test below).
            Merges::OpenAi => {
                ((rank as usize) < OPENAI_MERGES).then(|| rank + FIRST_MERGE_ID as u32)
            }
            Merges::Loaded { .. } => self.merge_at(rank).map(|(_, _, merged)| merged),
        }
    }

    /// Merge `rank`: (left id, right id, merged id).
    pub(crate) fn merge_at(&self, rank: u32) -> Option<(u32, u32, u32)> {
        match &self.merges {
            Merges::OpenAi => openai_merge(rank),
            Merges::Loaded { by_rank, .. } => by_rank.get(rank as usize).copied(),
        }
    }

    /// The number of merges.
    fn merge_count(&self) -> usize {
        match &self.merges {
            Merges::OpenAi => OPENAI_MERGES,
            Merges::Loaded { by_rank, .. } => by_rank.len(),
        }
    }

    /// `(rank, merged id)` of the merge of the adjacent symbols `a b`, if there is one
    /// (the reference loop's lookup; the fast paths ask for the rank alone).
    #[cfg(test)]
    pub(crate) fn merge(&self, a: u32, b: u32) -> Option<(u32, u32)> {
        let rank = self.rank(a, b)?;
        Some((rank, self.merged_id(rank)?))
    }

    /// id → token string.
    pub(crate) fn decoder(&self) -> &[Option<String>] {
        // Only the embedded vocabulary leaves it empty (every other constructor sets
        // it); its strings follow from the merges: byte symbols, the same with `</w>`,
        // one concatenation per merge, then the two special tokens.
        self.decoder.get_or_init(|| {
            let merges = (0..self.merge_count()).map_while(|r| self.merge_at(r as u32));
            openai_decoder(merges)
        })
    }

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
        let mut ranks = PairRanks::with_capacity(merges.len());
        let mut by_rank = Vec::with_capacity(merges.len());
        for (rank, (a, b)) in merges.iter().enumerate() {
            let (ia, ib) = (get(a)?, get(b)?);
            let merged = get(&format!("{a}{b}"))?;
            let rank = u32::try_from(rank).map_err(|_| TokenizerError::InvalidVocabulary {
                reason: "too many merges".into(),
            })?;
            // As `dict(zip(merges, range(len(merges))))`: a repeated pair keeps its last rank.
            ranks.insert(ia, ib, rank);
            by_rank.push((ia, ib, merged));
        }
        let sot = get("<|startoftext|>")?;
        let eot = get("<|endoftext|>")?;
        let max_id = encoder.values().copied().max().unwrap_or(0);
        // The decoder is a table indexed by id, so a file claiming id 4294967295 would
        // size it at ~100 GB. Real vocabularies number their tokens 0..n (CLIP: 49,408);
        // ids far beyond the token count are refused rather than allocated for.
        let dense_bound = encoder.len().saturating_mul(2).saturating_add(1024);
        if max_id as usize >= dense_bound {
            return Err(TokenizerError::InvalidVocabulary {
                reason: format!(
                    "token id {max_id} is far beyond the vocabulary's {} tokens (ids must number the tokens from 0, with fewer than {dense_bound} in all)",
                    encoder.len()
                ),
            });
        }
        let mut decoder = vec![None; max_id as usize + 1];
        for (s, &id) in &encoder {
            if let Some(slot) = decoder.get_mut(id as usize) {
                *slot = Some(s.clone());
            }
        }
        Ok(Self {
            id: NEXT_VOCAB_ID.fetch_add(1, Ordering::Relaxed),
            decoder: OnceLock::from(decoder),
            size: encoder.len(),
            byte_ids,
            byte_ids_eow,
            merges: Merges::Loaded { ranks, by_rank },
            byte_decoder,
            sot,
            eot,
        })
    }

    /// The embedded OpenAI vocabulary (`simple_tokenizer.py`'s
    /// `bpe_simple_vocab_16e6.txt.gz`): 256 byte symbols, the same with `</w>`, one per
    /// merge, then `<|startoftext|>` and `<|endoftext|>` — 49,408 ids, the merges'
    /// ids precomputed by `build.rs`.
    pub(crate) fn openai() -> Result<Self, TokenizerError> {
        let b2u = bytes_to_unicode();
        let mut byte_ids = [0u32; 256];
        let mut byte_ids_eow = [0u32; 256];
        for (i, &(b, _)) in b2u.iter().enumerate() {
            // i < 256: both fit in u32.
            byte_ids[usize::from(b)] = i as u32;
            byte_ids_eow[usize::from(b)] = (256 + i) as u32;
        }
        let n_merges = OPENAI_MERGES_BIN.len() / 4;
        if n_merges != OPENAI_MERGES || !OPENAI_MERGES_BIN.len().is_multiple_of(4) {
            return Err(invalid("the precompiled merge table has the wrong size"));
        }
        if OPENAI_RANK_TABLE.len() != 8 << merge_table::BITS {
            return Err(invalid("the precompiled rank table has the wrong size"));
        }
        let size = FIRST_MERGE_ID + n_merges + 2;
        Ok(Self {
            id: NEXT_VOCAB_ID.fetch_add(1, Ordering::Relaxed),
            decoder: OnceLock::new(),
            size,
            byte_ids,
            byte_ids_eow,
            merges: Merges::OpenAi,
            byte_decoder: b2u.iter().map(|&(b, c)| (c, b)).collect(),
            sot: (size - 2) as u32,
            eot: (size - 1) as u32,
        })
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

/// The token strings of the embedded vocabulary, rebuilt from its merges.
fn openai_decoder(merges: impl Iterator<Item = (u32, u32, u32)>) -> Vec<Option<String>> {
    let mut tokens: Vec<Option<String>> = Vec::with_capacity(FIRST_MERGE_ID + OPENAI_MERGES + 2);
    let b2u = bytes_to_unicode();
    tokens.extend(b2u.iter().map(|(_, c)| Some(c.to_string())));
    tokens.extend(b2u.iter().map(|(_, c)| Some(format!("{c}{EOW}"))));
    for (a, b, _) in merges {
        // Merge symbols always have lower ids than the merge (checked by `build.rs`'s
        // construction and the test below); a missing one would only lose text in decode.
        let part = |id: u32| {
            tokens
                .get(id as usize)
                .cloned()
                .flatten()
                .unwrap_or_default()
        };
        let merged = part(a) + &part(b);
        tokens.push(Some(merged));
    }
    tokens.push(Some("<|startoftext|>".into()));
    tokens.push(Some("<|endoftext|>".into()));
    tokens
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;

    use super::{PairRanks, Vocab, OPENAI_MERGES};

    #[test]
    fn pair_ranks_keep_narrow_and_wide_pairs_apart() {
        let mut ranks = PairRanks::default();
        // (1, 2) and (0, 65538) would collide if wide ids were packed into 16 bits.
        ranks.insert(1, 2, 7);
        ranks.insert(0, 65538, 8);
        ranks.insert(70_000, 3, 9);
        assert_eq!(ranks.get(1, 2), Some(7));
        assert_eq!(ranks.get(0, 65538), Some(8));
        assert_eq!(ranks.get(70_000, 3), Some(9));
        assert_eq!(ranks.get(2, 1), None);
        assert_eq!(ranks.get(3, 70_000), None);
        assert_eq!((ranks.narrow.len(), ranks.wide.len()), (1, 2));
    }

    /// The precompiled tables must be exactly what `simple_tokenizer.py` builds from the
    /// gzip'd file, parsed here the slow way: string tokens, a string-keyed dict.
    #[test]
    fn precompiled_openai_vocab_equals_the_parsed_file() {
        let gz: &[u8] = include_bytes!("data/bpe_simple_vocab_16e6.txt.gz");
        let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(gz));
        let lines: Vec<String> = reader
            .lines()
            .skip(1)
            .take(OPENAI_MERGES)
            .collect::<Result<_, _>>()
            .unwrap();
        let merges: Vec<(String, String)> = lines
            .iter()
            .map(|l| {
                let mut it = l.split_whitespace();
                (it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
            })
            .collect();
        let b2u = super::bytes_to_unicode();
        let mut tokens: Vec<String> = b2u.iter().map(|(_, c)| c.to_string()).collect();
        tokens.extend(b2u.iter().map(|(_, c)| format!("{c}</w>")));
        tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        tokens.push("<|startoftext|>".into());
        tokens.push("<|endoftext|>".into());
        let encoder = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let parsed = Vocab::build(encoder, merges).unwrap();
        let embedded = Vocab::openai().unwrap();
        assert_eq!(embedded.size, parsed.size);
        assert_eq!(embedded.size, 49408);
        assert_eq!(embedded.byte_ids, parsed.byte_ids);
        assert_eq!(embedded.byte_ids_eow, parsed.byte_ids_eow);
        let super::Merges::Loaded { ranks, by_rank } = &parsed.merges else {
            panic!("a parsed vocabulary has loaded merges");
        };
        assert!(matches!(embedded.merges, super::Merges::OpenAi));
        assert_eq!(embedded.merge_count(), by_rank.len());
        assert!(ranks.wide.is_empty());
        // rank → merge, and pair → rank for every merge.
        for (rank, &(a, b, merged)) in by_rank.iter().enumerate() {
            let rank = rank as u32;
            assert_eq!(embedded.merge_at(rank), Some((a, b, merged)), "rank {rank}");
            assert_eq!(embedded.merged_id(rank), Some(merged), "rank {rank}");
            assert_eq!(embedded.rank(a, b), Some(rank), "pair {a} {b}");
        }
        assert_eq!(embedded.merge_at(by_rank.len() as u32), None);
        assert_eq!(embedded.merged_id(by_rank.len() as u32), None);
        // Pairs that are not merges: every pair of byte symbols (where the probes of real
        // text start) and 2 million pseudo-random pairs of any ids, some above 2^16.
        let check =
            |a: u32, b: u32| assert_eq!(embedded.rank(a, b), ranks.get(a, b), "pair {a} {b}");
        for a in 0..512 {
            for b in 0..512 {
                check(a, b);
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000_000 {
            crate::tokenizer::xorshift64(&mut x);
            let (a, b) = ((x as u32) % 70_000, ((x >> 32) as u32) % 70_000);
            check(a, b);
        }
        assert_eq!(embedded.byte_decoder, parsed.byte_decoder);
        assert_eq!((embedded.sot, embedded.eot), (parsed.sot, parsed.eot));
        assert_eq!(embedded.decoder(), parsed.decoder());
    }
}
