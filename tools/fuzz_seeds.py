#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from tests/data.

Standard library only. The corpora are git-ignored: run this before `cargo fuzz run`.

    python3 tools/fuzz_seeds.py            # all targets
    python3 tools/fuzz_seeds.py index_load  # one target
"""
import gzip
import hashlib
import pathlib
import struct
import sys
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = ROOT / "fuzz" / "corpus"
MAX_LEN = 64 * 1024  # the -max_len of fuzz/README.md's commands


def put(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def preprocess():
    for f in sorted((DATA / "images").rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            # Larger photos are kept as their first 64 KiB (a truncated file is a fine seed).
            put("preprocess", data[:MAX_LEN])
    hostile = DATA / "hostile"
    if hostile.is_dir():
        for f in sorted(hostile.iterdir()):
            if f.is_file() and f.suffix != ".tsv":
                put("preprocess", f.read_bytes()[:MAX_LEN])


def tokenize():
    lines = (DATA / "tokenizer" / "bench_texts.txt").read_text("utf-8").splitlines()
    for line in lines[:300]:
        put("tokenize", line.encode("utf-8"))
    # The golden corpus's hand-written hard cases (format: tests/data/tokenizer/README.md).
    raw = gzip.decompress((DATA / "tokenizer" / "corpus.bin.gz").read_bytes())
    (nkinds,) = struct.unpack_from("<I", raw, 0)
    at, kinds = 4, []
    for _ in range(nkinds):
        n = raw[at]
        kinds.append(raw[at + 1 : at + 1 + n].decode())
        at += 1 + n
    per_kind = {}
    while at < len(raw):
        kind = kinds[raw[at]]
        (n,) = struct.unpack_from("<I", raw, at + 1)
        text = raw[at + 5 : at + 5 + n]
        at += 5 + n
        if per_kind.get(kind, 0) < 150:
            per_kind[kind] = per_kind.get(kind, 0) + 1
            put("tokenize", text[:4096])
    for extra in [b"", b"\xff\xfe\x00", b"<|startoftext|><|endoftext|>", b"&amp;" * 40,
                  b"\xc3\x83\xc2\xa9" * 20, "a\u0301" .encode() * 50, b"1" * 500]:
        put("tokenize", extra)


def model_config():
    # Flag byte (fuzz/fuzz_targets/model_config.rs): 0x0c = clip-rs layout with both towers;
    # 0x0f = transformers.js layout with preprocessor_config.json and both towers.
    models = DATA / "models"
    for f in sorted(models.rglob("clip_config.json")):
        put("model_config", b"\x0c" + f.read_bytes())
        put("model_config", b"\x00" + f.read_bytes())
    for f in sorted(models.rglob("config.json")):
        if f.name != "config.json":
            continue
        pre = f.parent / "preprocessor_config.json"
        second = pre.read_bytes() if pre.is_file() else b""
        put("model_config", b"\x0f" + f.read_bytes() + b"\x00" + second)
        put("model_config", b"\x1d" + f.read_bytes())


def index_file(dtype, dim, ids, arch=b"ViT-B/32", fingerprint=0x1234, meta=True):
    """An index file as clip-core/src/search/format.rs writes it."""
    entries = b""
    for i, ident in enumerate(ids):
        entries += struct.pack("<I", len(ident)) + ident
        entries += struct.pack("<BQqI", 1, 1000 + i, 1_700_000_000 + i, i) if meta and i % 2 == 0 \
            else struct.pack("<BQqI", 0, 0, 0, 0)
    values = b""
    for i in range(len(ids)):
        row = [0.0] * dim
        row[i % dim] = 1.0
        values += struct.pack(f"<{dim}f", *row) if dtype == 1 else struct.pack(f"<{dim}e", *row)
    header = b"\x89CLIPIDX" + struct.pack("<IIII", 1, dtype, dim, len(arch))
    header += struct.pack("<QQQ", len(ids), fingerprint, len(entries)) + arch
    header += struct.pack("<I", zlib.crc32(header))
    body = entries + values
    return header + body + struct.pack("<I", zlib.crc32(body))


def index_load():
    put("index_load", index_file(1, 8, []))
    put("index_load", index_file(1, 8, [b"a.jpg", b"b/c.png", b"\xc3\xa9.gif"]))
    put("index_load", index_file(2, 16, [b"x%d" % i for i in range(5)], arch=b"custom"))
    put("index_load", index_file(2, 1, [b"only"], arch=b"", meta=False))


TARGETS = {"preprocess": preprocess, "tokenize": tokenize, "model_config": model_config,
           "index_load": index_load}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
        print(name, len(list((OUT / name).iterdir())), "seeds")
