#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The tokenizer against goldens produced by the reference (`clip.tokenize` from
//! clip-anytorch 2.6.0 with ftfy 6.3.1) on the corpus in `tests/data/tokenizer/`
//! (see its README). Every text must give identical ids, both the truncated
//! `clip.tokenize` row and the untruncated BPE ids.
use std::io::Read;
use std::path::PathBuf;

use clip_preprocess::tokenizer::{Tokenizer, TokenizerError, DEFAULT_CONTEXT_LENGTH, EOT, SOT};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tokenizer")
}

fn gunzip(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn u8(&mut self) -> u8 {
        self.bytes(1)[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes(4).try_into().unwrap())
    }
    fn u16s(&mut self, n: usize) -> Vec<u32> {
        self.bytes(2 * n)
            .chunks_exact(2)
            .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
            .collect()
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// (kind, text) pairs of `corpus.bin.gz`.
fn corpus() -> Vec<(String, String)> {
    let data = gunzip("corpus.bin.gz");
    let mut r = Reader {
        data: &data,
        pos: 0,
    };
    let nk = r.u32() as usize;
    let kinds: Vec<String> = (0..nk)
        .map(|_| {
            let n = r.u8() as usize;
            String::from_utf8(r.bytes(n).to_vec()).unwrap()
        })
        .collect();
    let mut out = Vec::new();
    while !r.done() {
        let k = r.u8() as usize;
        let n = r.u32() as usize;
        let text = String::from_utf8(r.bytes(n).to_vec()).unwrap();
        out.push((kinds[k].clone(), text));
    }
    out
}

/// Per text: `Some((clip.tokenize row without padding, SimpleTokenizer.encode ids))`, or
/// `None` where the reference raised.
fn goldens() -> Vec<Option<(Vec<u32>, Vec<u32>)>> {
    let data = gunzip("goldens.bin.gz");
    let mut r = Reader {
        data: &data,
        pos: 0,
    };
    let mut out = Vec::new();
    while !r.done() {
        let status = r.u8();
        let n = r.u8() as usize;
        let row = r.u16s(n);
        let m = r.u32() as usize;
        let ids = r.u16s(m);
        out.push((status == 0).then_some((row, ids)));
    }
    out
}

fn excerpt(s: &str) -> String {
    let e: String = s.chars().take(120).collect();
    format!("{e:?}{}", if s.chars().count() > 120 { "..." } else { "" })
}

#[test]
fn corpus_ids_identical_to_reference() {
    let corpus = corpus();
    let goldens = goldens();
    assert_eq!(
        corpus.len(),
        goldens.len(),
        "corpus and goldens disagree in length"
    );
    assert!(
        corpus.len() >= 50_000,
        "the corpus must hold at least 50,000 texts"
    );
    let tok = Tokenizer::new();
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (i, ((kind, text), golden)) in corpus.iter().zip(&goldens).enumerate() {
        let Some((want_row, want_ids)) = golden else {
            continue;
        };
        compared += 1;
        let ids = tok.encode(text);
        let row = tok.tokenize(&[text], DEFAULT_CONTEXT_LENGTH, true).unwrap();
        // The row without its zero padding (id 0 is also a real token, '!', so the
        // comparison runs to the last non-zero id, as the goldens store it).
        let mut row: Vec<u32> = row.iter().map(|&v| v as u32).collect();
        while row.last() == Some(&0) {
            row.pop();
        }
        if &ids != want_ids || &row != want_row {
            mismatches.push(format!(
                "text #{i} ({kind}) {}\n  reference ids: {want_ids:?}\n  ours:          {ids:?}\n  reference row: {want_row:?}\n  ours:          {row:?}",
                excerpt(text)
            ));
        }
    }
    assert!(compared > 50_000, "only {compared} texts compared");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} texts differ from the reference; first:\n{}",
        mismatches.len(),
        mismatches[0]
    );
}

#[test]
fn too_long_is_an_error_unless_truncated() {
    let tok = Tokenizer::new();
    let long = "a photo of a cat ".repeat(40);
    let err = tok
        .tokenize(&["short", long.as_str()], 77, false)
        .unwrap_err();
    match err {
        TokenizerError::TooLong {
            index,
            tokens,
            context_length,
        } => {
            assert_eq!(index, 1);
            assert_eq!(tokens, 5 * 40 + 2);
            assert_eq!(context_length, 77);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let rows = tok.tokenize(&["short", long.as_str()], 77, true).unwrap();
    assert_eq!(rows[[1, 0]], SOT as i32);
    assert_eq!(rows[[1, 76]], EOT as i32);
    assert_eq!(rows[[0, 2]], EOT as i32);
    assert_eq!(rows[[0, 3]], 0);
    // exactly full: 75 ids + SOT + EOT fit without truncation
    let fits = "a ".repeat(75);
    assert!(tok.tokenize(&[fits.as_str()], 77, false).is_ok());
    let over = "a ".repeat(76);
    assert!(tok.tokenize(&[over.as_str()], 77, false).is_err());
}

#[test]
fn decode_round_trips_clean_text() {
    let tok = Tokenizer::new();
    let ids = tok.encode("Hello, World! Ça va? 東京");
    assert_eq!(tok.decode(&ids), "hello , world ! ça va ? 東京 ");
}

/// Writes OpenAI's merges as `vocab.json` + `merges.txt` and as a Hugging Face style
/// `tokenizer.json`, and checks the loaders against the embedded vocabulary.
#[test]
fn loaders_match_embedded_vocabulary() {
    let gz = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/tokenizer/data/bpe_simple_vocab_16e6.txt.gz"),
    )
    .unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let merges: Vec<&str> = text.split('\n').skip(1).take(49152 - 256 - 2).collect();
    // bytes_to_unicode, in the reference's order
    let mut bs: Vec<u32> = (0x21..=0x7E)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut tokens: Vec<String> = cs
        .iter()
        .map(|&c| char::from_u32(c).unwrap().to_string())
        .collect();
    let eow: Vec<String> = tokens.iter().map(|t| format!("{t}</w>")).collect();
    tokens.extend(eow);
    tokens.extend(merges.iter().map(|m| m.replace(' ', "")));
    let mut vocab = serde_json::Map::new();
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.clone(), i.into());
    }
    let mut vocab_with_special = vocab.clone();
    vocab_with_special.insert("<|startoftext|>".into(), 49406.into());
    vocab_with_special.insert("<|endoftext|>".into(), 49407.into());

    let dir = std::env::temp_dir().join(format!("clip-tok-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vocab_path = dir.join("vocab.json");
    let merges_path = dir.join("merges.txt");
    std::fs::write(
        &vocab_path,
        serde_json::to_string(&vocab_with_special).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &merges_path,
        format!("#version: 0.2\n{}\n", merges.join("\n")),
    )
    .unwrap();
    let tj = serde_json::json!({
        "added_tokens": [
            {"id": 49406, "content": "<|startoftext|>", "special": true},
            {"id": 49407, "content": "<|endoftext|>", "special": true}
        ],
        "model": {"type": "BPE", "vocab": vocab, "merges": merges, "end_of_word_suffix": "</w>"}
    });
    let tj_path = dir.join("tokenizer.json");
    std::fs::write(&tj_path, serde_json::to_string(&tj).unwrap()).unwrap();

    let embedded = Tokenizer::new();
    let from_files = Tokenizer::from_vocab_merges(&vocab_path, &merges_path).unwrap();
    let from_json = Tokenizer::from_tokenizer_json(&tj_path).unwrap();
    assert_eq!(from_files.vocab_size(), 49408);
    assert_eq!(from_json.vocab_size(), 49408);
    for (_, text) in corpus().iter().step_by(50) {
        let want = embedded.encode(text);
        assert_eq!(
            from_files.encode(text),
            want,
            "vocab.json+merges.txt on {}",
            excerpt(text)
        );
        assert_eq!(
            from_json.encode(text),
            want,
            "tokenizer.json on {}",
            excerpt(text)
        );
    }
    // A file claiming an id far beyond its token count is refused, not allocated for
    // (the decoder is a table indexed by id: u32::MAX would ask for ~100 GB).
    for claimed in [u64::from(u32::MAX), 49408 * 2 + 1024] {
        vocab_with_special.insert("<|endoftext|>".into(), claimed.into());
        std::fs::write(
            &vocab_path,
            serde_json::to_string(&vocab_with_special).unwrap(),
        )
        .unwrap();
        match Tokenizer::from_vocab_merges(&vocab_path, &merges_path) {
            Err(TokenizerError::InvalidVocabulary { reason }) => {
                assert!(reason.contains(&claimed.to_string()), "{reason}");
            }
            other => panic!("id {claimed}: {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    let missing = Tokenizer::from_tokenizer_json(dir.join("nope.json"));
    assert!(matches!(missing, Err(TokenizerError::Io { .. })));
}

#[test]
fn tokenizer_is_send_sync_and_default() {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug + Default>() {}
    assert_send_sync::<Tokenizer>();
    let tok = Tokenizer::default();
    assert_eq!(tok.vocab_size(), 49408);
    assert_eq!((tok.sot(), tok.eot()), (SOT, EOT));
    // the same rows whether the batch is split over threads or not
    let texts: Vec<String> = (0..1000)
        .map(|i| format!("text number {i} &amp; “more”"))
        .collect();
    let batch = tok.tokenize(&texts, 77, false).unwrap();
    for (i, t) in texts.iter().enumerate().step_by(97) {
        let one = tok.tokenize(&[t], 77, false).unwrap();
        assert_eq!(batch.row(i), one.row(0), "text {i}");
    }
}
