#!/usr/bin/env python3
"""Damaged images: clip-rs's verdict and tensor against Pillow's, over many variants.

    /work/venv/bin/python tools/check_damage.py --clip target/release/clip [--format jpeg|png|all] [--per-file 40] [--seed 0]

From each JPEG of tests/data/images (baseline 4:2:0 / 4:2:2 / 4:4:4 / 4:1:1 / 4:4:0,
progressive, restart intervals, grayscale, CMYK) it writes variants into a scratch folder:
cut at random points (and just before / inside the EOI marker), with random bytes
overwritten (in the scan data and in the header segments), with garbage inserted before a
marker, with markers inserted into the scan data, with junk or a TEM marker between header
segments, with a 12-bit precision claimed, with the EOI removed. From each PNG under 300 kB (every mode and bit depth of the
corpus): cut at random points and 1–24 bytes before the end, random bytes overwritten, the
IEND chunk removed, a bit of
the image data flipped with the chunk's CRC made right again (only zlib's Adler-32 can
tell), a byte of the image data's CRC flipped (Pillow never reads it), garbage after the
image data. The reference verdict is `clip.clip._transform(224)(Image.open(path))`
(Pillow 13); clip-rs's is `clip preprocess` on the same files. Every variant must agree:
both fail, or both succeed with bit-identical tensors. Prints the counts and the first
disagreements; exits non-zero on any.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def png_variants(data: bytes, rng: random.Random, n: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    iend = data.rfind(b"IEND") - 4
    idat = data.find(b"IDAT") - 4
    idat_len = struct.unpack(">I", data[idat:idat + 4])[0]
    idat_crc = idat + 8 + idat_len
    out["no_iend"] = data[:iend]
    out["no_iend_plus3"] = data[:iend] + b"\0\0\0"
    out["garbage_after_idat"] = data[:iend] + b"\x00\x01\x02-junk" + data[iend:]
    b = bytearray(data)
    b[idat_crc] ^= 0x5A
    out["idat_crc"] = bytes(b)
    for k in (1, 2, 3, 4, 5, 8, 12, 13, 14, 15, 16, 17, 18, 20, 24):  # IEND, CRC, adler32
        out[f"cut_end_{k}"] = data[:-k]
    for i in range(n):
        kind = i % 3
        if kind == 0:  # cut anywhere after the signature
            at = rng.randrange(9, len(data))
            out[f"cut_{at}"] = data[:at]
        elif kind == 1:  # overwrite a few bytes anywhere after the signature
            b = bytearray(data)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(8, len(data))] = rng.randrange(256)
            out[f"flip_{i}"] = bytes(b)
        else:  # one bit of the first IDAT's data, its CRC made right again
            b = bytearray(data)
            b[idat + 8 + rng.randrange(max(idat_len, 1))] ^= 1 << rng.randrange(8)
            b[idat_crc:idat_crc + 4] = struct.pack(">I", zlib.crc32(bytes(b[idat + 4:idat + 8 + idat_len])))
            out[f"zlib_{i}"] = bytes(b)
    return out


def variants(data: bytes, rng: random.Random, n: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    eoi = data.rfind(b"\xff\xd9")
    out["no_eoi"] = data[:eoi] if eoi > 0 else data[:-2]
    out["half_eoi"] = data[:-1]
    out["cut_m4"] = data[:-4]
    sos = data.find(b"\xff\xda")
    # Damage between header segments (reaches the header fallback): junk before the SOF.
    sof = next((data.find(m) for m in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2") if data.find(m) > 0), -1)
    if sof > 0:
        out["junk_before_sof"] = data[:sof] + b"\x00\x11\x22" + data[sof:]
        out["tem_before_sof"] = data[:sof] + b"\x00\x11\xff\x01" + data[sof:]
        out["precision_12"] = data[:sof + 4] + b"\x0c" + data[sof + 5:]
    for i in range(n):
        kind = i % 5
        if kind == 4:  # overwrite a byte or two of the header segments (before the scan)
            b = bytearray(data)
            for _ in range(rng.randint(1, 2)):
                b[rng.randrange(3, sos)] = rng.choice([0x00, 0x01, 0xFF, 0x08, 0x0C, rng.randrange(256)])
            out[f"header_{i}"] = bytes(b)
            continue
        if kind == 0:  # cut anywhere after the first scan starts
            at = rng.randrange(max(sos, 2), len(data))
            out[f"cut_{at}"] = data[:at]
        elif kind == 1:  # overwrite a few bytes in the scan data
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(sos + 12, len(data) - 2)] = rng.randrange(256)
            out[f"flip_{i}"] = bytes(b)
        elif kind == 2:  # garbage before the EOI (or another marker)
            garbage = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))).replace(b"\xff", b"\x00")
            out[f"extra_{i}"] = data[:eoi] + garbage + data[eoi:]
        else:  # a marker byte pair inserted inside the scan data
            at = rng.randrange(sos + 12, len(data) - 2)
            marker = bytes([0xFF, rng.choice([0xD0, 0xD3, 0xD7, 0xD9, 0xDA, 0xC4, 0xFE, 0x01, 0xC8])])
            out[f"marker_{i}"] = data[:at] + marker + data[at:]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=ROOT / "target/release/clip")
    ap.add_argument("--per-file", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scratch", type=Path, default=None)
    ap.add_argument("--format", choices=["jpeg", "png", "all"], default="all")
    args = ap.parse_args()

    from PIL import Image
    from clip.clip import _transform

    preprocess = _transform(224)
    rng = random.Random(args.seed)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="jpeg-damage-"))
    src_dir, out_dir = scratch / "in", scratch / "out"
    src_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = ROOT / "tests/data/images"
    jpegs = sorted(p for p in images.glob("*.jpg") if not p.name.startswith("png_"))
    pngs = sorted(p for p in images.glob("*.png") if p.stat().st_size < 300_000)
    sources = ((jpegs if args.format in ("jpeg", "all") else [])
               + (pngs if args.format in ("png", "all") else []))
    files: list[Path] = []
    for src in sources:
        make = png_variants if src.suffix == ".png" else variants
        for name, data in make(src.read_bytes(), rng, args.per_file).items():
            path = src_dir / f"{src.stem}__{name}{src.suffix}"
            path.write_bytes(data)
            files.append(path)

    # The reference.
    ref: dict[str, str | None] = {}
    for path in files:
        try:
            with Image.open(path) as im:
                t = preprocess(im).numpy().astype("<f4")
            ref[path.name] = hashlib.sha256(t.tobytes()).hexdigest()
        except Exception:  # noqa: BLE001 — any exception is Pillow's "fails"
            ref[path.name] = None

    # clip-rs, one process over every file (a failing input is named, the rest go on).
    # A crash (signal, panic, abort) must not pass as "fails in both": the exit status is
    # 0 or 1, and every input without an output is named on stderr as failing.
    for stale in out_dir.glob("*.npy"):
        stale.unlink()  # a reused --scratch must not lend an earlier run's outputs
    run = subprocess.run([str(args.clip), "preprocess", "--threads", "2", "--out", str(out_dir),
                          *map(str, files)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, errors="replace", check=False)
    if run.returncode not in (0, 1) or "panicked" in run.stderr:
        sys.exit(f"clip preprocess crashed (exit status {run.returncode}):\n{run.stderr[-2000:]}")
    ours: dict[str, str | None] = {}
    for path in files:
        npy = out_dir / (path.name + ".npy")
        if npy.exists():
            ours[path.name] = hashlib.sha256(np.load(npy).astype("<f4").tobytes()).hexdigest()
            npy.unlink()  # 600 kB each: thousands would fill a small disk
        elif f"cannot preprocess {path}:" in run.stderr:
            ours[path.name] = None
        else:
            sys.exit(f"{path.name}: no output and not named as failing: did clip preprocess stop early?")

    both_fail = sum(1 for n in ref if ref[n] is None and ours[n] is None)
    both_ok = sum(1 for n in ref if ref[n] is not None and ref[n] == ours[n])
    bad = [n for n in ref if ref[n] != ours[n]]
    print(f"{len(files)} variants of {len(sources)} images ({args.format}, seed {args.seed}): "
          f"{both_ok} open in both with identical tensors, {both_fail} fail in both, {len(bad)} disagree")
    for n in bad[:20]:
        what = ("Pillow fails, clip-rs opens" if ref[n] is None else
                "Pillow opens, clip-rs fails" if ours[n] is None else "tensors differ")
        print(f"  {n}: {what}")
    print(f"files in {scratch}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
