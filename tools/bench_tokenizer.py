#!/usr/bin/env python3
"""Texts/s of CLIP tokenizers on the same 20,000 real texts, in one run.

    cargo build --release --bin clip
    python tools/bench_tokenizer.py [--clip target/release/clip] [--n 20000] [--runs 5]

Compared:
  1. the reference: `clip.tokenize(text, truncate=True)` once per text (clip-anytorch
     2.6.0 + ftfy 6.3.1), as a per-text loop;
  2. Hugging Face `tokenizers` (Rust, via Python) with CLIP's `tokenizer.json`, built here
     from the same vocabulary exactly as `CLIPTokenizerFast` ships it (NFC + `\\s+` -> ' '
     + lowercase, CLIP's split regex, byte-level, BPE with `</w>`), no hub access needed:
     `encode` per text and `encode_batch` (multi-threaded);
  3. the whole `clip tokenize --truncate` process (start-up, stdin, stdout included),
     whose output is also checked against the reference rows.

Texts are the single-line texts of tests/data/tokenizer/corpus.bin.gz (the golden
corpus), first 20,000 in a seeded shuffle.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from gen_tokenizer_goldens import TEST_DATA, read_texts  # noqa: E402


def hf_clip_tokenizer():
    """CLIP's tokenizer.json as transformers' CLIPTokenizerFast converts it."""
    import gzip

    from clip.simple_tokenizer import bytes_to_unicode, default_bpe
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {v: i for i, v in enumerate(vocab)}
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="</w>",
                   fuse_unk=False, unk_token="<|endoftext|>")
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(
            Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
            behavior="removed", invert=True,
        ),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 49406), ("<|endoftext|>", 49407)],
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|startoftext|>", "<|endoftext|>"])
    tok.enable_truncation(77)
    tok.enable_padding(length=77, pad_id=0)
    return tok


def timed(fn, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "clip"))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    texts, kinds = read_texts(os.path.join(TEST_DATA, "corpus.bin.gz"))
    single = [t for t in texts if "\n" not in t]
    random.Random(0).shuffle(single)
    texts = single[: args.n]
    n = len(texts)
    print(f"{n} texts, {sum(map(len, texts))} characters; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")

    import clip
    import tokenizers

    def reference():
        return [clip.tokenize(t, truncate=True)[0].tolist() for t in texts]

    payload = ("\n".join(texts) + "\n").encode("utf-8")
    stdin = tempfile.TemporaryFile()
    stdin.write(payload)

    def clip_process():
        stdin.seek(0)
        t0 = time.perf_counter()
        p = subprocess.run([args.clip, "tokenize", "--truncate"], stdin=stdin, capture_output=True, check=True)
        return time.perf_counter() - t0, p.stdout

    # The reference loop and the clip process alternate, so both see the same machine
    # load; medians of --runs runs of each.
    ref_times, clip_times = [], []
    ref_rows, out = None, b""
    clip_process()  # warm-up: page cache, binary
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ref_rows = reference()
        ref_times.append(time.perf_counter() - t0)
        t, out = clip_process()
        clip_times.append(t)
    ref_t = statistics.median(ref_times)
    print(f"reference clip.tokenize loop : {ref_t:8.3f} s  {n / ref_t:12,.0f} texts/s  (median of {args.runs})")

    hf = hf_clip_tokenizer()
    hf_t, hf_rows = timed(lambda: [hf.encode(t).ids for t in texts], repeat=3)
    print(f"HF tokenizers {tokenizers.__version__} encode loop: {hf_t:8.3f} s  {n / hf_t:12,.0f} texts/s")
    hfb_t, hfb = timed(lambda: hf.encode_batch(texts), repeat=3)
    print(f"HF tokenizers encode_batch   : {hfb_t:8.3f} s  {n / hfb_t:12,.0f} texts/s")
    hf_diff = sum(1 for a, b in zip(hf_rows, ref_rows) if a != b)
    print(f"  HF ids differ from the reference on {hf_diff} of {n} texts (no ftfy / HTML unescape)")

    best = statistics.median(clip_times)
    rows = [json.loads(line) for line in out.decode().splitlines()]
    same = sum(1 for a, b in zip(rows, ref_rows) if a == b)
    print(f"clip tokenize process        : {best:8.3f} s  {n / best:12,.0f} texts/s  (median of {args.runs}; "
          f"{ref_t / best:,.0f}x the reference loop; identical rows: {same}/{n})")
    print(f"  runs: reference {[round(t, 3) for t in ref_times]} s, clip {[round(t, 4) for t in clip_times]} s; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
