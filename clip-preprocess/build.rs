//! Compiles `csrc/pillow_jpeg.c` (Pillow's way of calling libjpeg, for the JPEGs that
//! TurboJPEG's API refuses: see `src/image/jpeg_pillow.rs`) against the libjpeg-turbo
//! that `turbojpeg-sys` builds, and precompiles what the tokenizer would otherwise build
//! at every process start:
//!
//! * OpenAI's embedded BPE vocabulary, into a table of merge pairs (below);
//! * ftfy's `BADNESS_RE`, into a serialized DFA (`ftfy_badness.dfa`): parsing and
//!   compiling that 27 kB pattern (Unicode classes, Python's `\w` spelled out) took
//!   ~8 ms of CPU at the first non-ASCII text, longer than tokenizing thousands of
//!   texts. `clean/ftfy.rs` deserializes it (a validation pass, ~0.4 ms) and falls back to
//!   compiling the pattern if that fails (e.g. on a big-endian target).
//!
//! `Tokenizer::new()` used to inflate `bpe_simple_vocab_16e6.txt.gz` and hash its 49k
//! token strings at every process start (~20–30 ms, most of a short `clip tokenize`
//! run). The ids of every merge are fixed by the file, so they are computed here once,
//! at build time, exactly as `simple_tokenizer.py` assigns them, and embedded as
//! `openai_merges.bin`: one little-endian `(u16 left id, u16 right id)` per merge, in
//! rank order; merge `r` produces id `512 + r`. A unit test rebuilds the vocabulary from
//! the gzip'd text at run time and checks the two agree.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

#[path = "src/tokenizer/byte_unicode.rs"]
mod byte_unicode;
#[path = "src/tokenizer/merge_table.rs"]
#[allow(dead_code)]
mod merge_table;

/// `csrc/pillow_jpeg.c`, against the headers of the libjpeg-turbo that `turbojpeg-sys`
/// built or found (`cargo:include`, comma-separated, as in `libz-sys`; absent when the
/// library's headers are on the default path). It calls libjpeg's own API (`jpeg_*`),
/// which the static library that `TURBOJPEG_SOURCE=vendor` builds (`.cargo/config.toml`)
/// contains; a shared system libturbojpeg exports only the `tj*` functions.
fn compile_pillow_jpeg() {
    println!("cargo:rerun-if-changed=csrc/pillow_jpeg.c");
    println!("cargo:rerun-if-env-changed=DEP_TURBOJPEG_INCLUDE");
    let mut build = cc::Build::new();
    build.file("csrc/pillow_jpeg.c").warnings(true);
    let includes = std::env::var("DEP_TURBOJPEG_INCLUDE").unwrap_or_default();
    for dir in includes.split(',').filter(|d| !d.is_empty()) {
        build.include(dir);
    }
    build.compile("clip_rs_pillow_jpeg");
}

/// `merges[1:49152-256-2+1]` in `simple_tokenizer.py`.
const OPENAI_MERGES: usize = 49152 - 256 - 2;
const GZ: &str = "src/tokenizer/data/bpe_simple_vocab_16e6.txt.gz";
const BADNESS_RE: &str = "src/tokenizer/data/ftfy_badness.regex";

// A build script that cannot read the crate's own constant data must stop the build
// with the reason: panicking is how build scripts report failure.
#[allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
fn main() {
    println!("cargo:rerun-if-changed={GZ}");
    println!("cargo:rerun-if-changed=src/tokenizer/byte_unicode.rs");
    println!("cargo:rerun-if-changed=src/tokenizer/merge_table.rs");
    println!("cargo:rerun-if-changed={BADNESS_RE}");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    compile_pillow_jpeg();
    write_badness_dfa(&out_dir.join("ftfy_badness.dfa"));
    let file = std::fs::File::open(GZ).expect("open the embedded vocabulary");
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let merges: Vec<(String, String)> = reader
        .lines()
        .skip(1)
        .take(OPENAI_MERGES)
        .map(|line| {
            let line = line.expect("inflate the embedded vocabulary");
            let mut it = line.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some(a), Some(b), None) => (a.to_owned(), b.to_owned()),
                _ => panic!("merge line {line:?} is not two symbols"),
            }
        })
        .collect();
    assert_eq!(merges.len(), OPENAI_MERGES, "too few merges");

    // The reference's token list and `dict(zip(vocab, range(len(vocab))))`.
    let b2u = byte_unicode::bytes_to_unicode();
    let mut tokens: Vec<String> = b2u.iter().map(|(_, c)| c.to_string()).collect();
    tokens.extend(b2u.iter().map(|(_, c)| format!("{c}</w>")));
    tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.push("<|startoftext|>".into());
    tokens.push("<|endoftext|>".into());
    let encoder: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    // With a repeated token the dict would keep the last id and merged ids would not be
    // 512 + rank; OpenAI's file has none, and the runtime relies on it.
    assert_eq!(
        encoder.len(),
        tokens.len(),
        "repeated tokens in the vocabulary"
    );
    assert_eq!(tokens.len(), 49408);

    let mut out = Vec::with_capacity(merges.len() * 4);
    for (a, b) in &merges {
        for s in [a, b] {
            let id = *encoder
                .get(s.as_str())
                .unwrap_or_else(|| panic!("merge symbol {s:?} is not in the vocabulary"));
            out.extend_from_slice(&u16::try_from(id).unwrap().to_le_bytes());
        }
    }
    let dest = out_dir.join("openai_merges.bin");
    std::fs::File::create(&dest)
        .and_then(|mut f| f.write_all(&out))
        .expect("write openai_merges.bin");
    write_rank_table(&out, &out_dir.join("openai_merge_ranks.bin"));
}

/// The pair → rank table of `merge_table.rs`, from the `(u16, u16)` merges in rank
/// order. Building it here instead of a hash map at start-up saves ~1.5 ms of every
/// process that tokenizes (before any worker can start) and half a megabyte of heap.
#[allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
fn write_rank_table(merges: &[u8], dest: &std::path::Path) {
    let size = 1usize << merge_table::BITS;
    let mut slots = vec![merge_table::EMPTY; size];
    for (rank, pair) in merges.chunks_exact(4).enumerate() {
        let (a, b) = merge_table::merge_record(pair).unwrap();
        let key = merge_table::pair_key(a, b).unwrap();
        let entry = (u64::from(key) << 32) | rank as u64;
        let mut i = merge_table::slot(key);
        loop {
            // `dict(zip(merges, range(len(merges))))`: a repeated pair keeps its last rank.
            if slots[i] == merge_table::EMPTY || slots[i] >> 32 == u64::from(key) {
                slots[i] = entry;
                break;
            }
            i = (i + 1) & (size - 1);
        }
    }
    // Every lookup stops at an empty slot: bound the longest run of occupied ones
    // (wrapping around the end).
    let first_empty = slots
        .iter()
        .position(|&s| s == merge_table::EMPTY)
        .expect("the table has empty slots");
    let (mut run, mut longest) = (0usize, 0usize);
    for k in 1..=size {
        if slots[(first_empty + k) & (size - 1)] == merge_table::EMPTY {
            run = 0;
        } else {
            run += 1;
            longest = longest.max(run);
        }
    }
    assert!(
        longest < merge_table::MAX_PROBES,
        "merge table: a run of {longest} occupied slots exceeds MAX_PROBES"
    );
    let bytes: Vec<u8> = slots.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(dest, bytes).expect("write openai_merge_ranks.bin");
}

/// `BADNESS_RE` as a minimized dense DFA, little-endian (the runtime checks the byte
/// order when it deserializes), with the same syntax settings as `regex::Regex::new`.
#[allow(clippy::expect_used)]
fn write_badness_dfa(dest: &std::path::Path) {
    use regex_automata::dfa::dense;
    let pattern = std::fs::read_to_string(BADNESS_RE).expect("read ftfy_badness.regex");
    let dfa = dense::Builder::new()
        .configure(dense::Config::new().minimize(true))
        .build(pattern.trim_end())
        .expect("compile BADNESS_RE into a DFA");
    let (bytes, pad) = dfa.to_bytes_little_endian();
    std::fs::write(dest, &bytes[pad..]).expect("write ftfy_badness.dfa");
}
