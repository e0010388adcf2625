//! Tokenizer throughput on 5,000 real single-line texts
//! (`tests/data/tokenizer/bench_texts.txt`, sampled from the golden corpus).
//!
//! `cargo bench --bench tokenize`. The comparison with the Python reference and with
//! Hugging Face `tokenizers` lives in `tools/bench_tokenizer.py`.
#![forbid(unsafe_code)]
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use clip_rs::preprocess::tokenizer::{clean::clean, Tokenizer, DEFAULT_CONTEXT_LENGTH};

static TEXTS: &str = include_str!("../tests/data/tokenizer/bench_texts.txt");

fn texts() -> Vec<&'static str> {
    TEXTS.lines().collect()
}

fn bench_tokenize(c: &mut Criterion) {
    let texts = texts();
    let tok = Tokenizer::new();
    let mut group = c.benchmark_group("tokenizer");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.sample_size(20);
    group.bench_function("clean (ftfy + html + lower)", |b| {
        b.iter(|| texts.iter().map(|t| clean(t).len()).sum::<usize>());
    });
    group.bench_function("encode", |b| {
        b.iter(|| texts.iter().map(|t| tok.encode(t).len()).sum::<usize>());
    });
    group.bench_function("tokenize batch (77, truncate)", |b| {
        b.iter(|| tok.tokenize(&texts, DEFAULT_CONTEXT_LENGTH, true));
    });
    group.finish();
    c.bench_function("Tokenizer::new (shared vocabulary)", |b| {
        b.iter(Tokenizer::new)
    });
}

criterion_group!(benches, bench_tokenize);
criterion_main!(benches);
