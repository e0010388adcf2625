#!/usr/bin/env python3
"""Build the image corpus and the golden tensors of CLIP's reference `preprocess`.

The goldens come from the reference only: `clip.clip._transform(n_px)` from the
PyPI package `clip-anytorch` (OpenAI's code), on Pillow 13.0.0 and torchvision
0.29.2, applied to `Image.open(path)` exactly as `clip.load(...)[1]` is.

    /work/venv/bin/python tools/gen_preprocess_goldens.py corpus   # (re)build tests/data/images
    /work/venv/bin/python tools/gen_preprocess_goldens.py goldens  # write tests/data/preprocess
    /work/venv/bin/python tools/gen_preprocess_goldens.py diff IMAGE ACTUAL.npy [--size N]

Outputs (tests/data/preprocess):
  goldens.tsv  one line per (image, size): name, size, Pillow mode, WxH, SHA-256 of the
               little-endian float32 bytes of the [3, N, N] tensor
  full/*.npy   a few full reference tensors (the test reports the max difference for them)

Pinned versions are checked at start-up; run it with exactly these versions.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "tests" / "data" / "images"
BAD = IMAGES / "bad"
OUT = ROOT / "tests" / "data" / "preprocess"
PINNED = {"pillow": "13.0.0", "torchvision": "0.29.2"}
# Images whose full tensor is stored (kept few: 602 KB each at 224).
FULL = ["chelsea.png", "china_420.jpg", "odd_231x224_rgba.png"]
EXTRA_SIZES = {336: ["china.jpg", "chelsea.png", "logo_rgba.png", "p_trns.png", "cmyk.jpg"]}


def check_versions() -> None:
    import torchvision

    got = {"pillow": PIL.__version__, "torchvision": torchvision.__version__.split("+")[0]}
    for k, v in PINNED.items():
        if got[k] != v:
            sys.exit(f"{k} {got[k]} found, {v} required: the reference depends on the Pillow version")


def site_file(rel: str) -> Path:
    import site

    for base in site.getsitepackages():
        p = Path(base) / rel
        if p.exists():
            return p
    raise FileNotFoundError(rel)


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path: Path, arr: np.ndarray, color_type: int, bit_depth: int) -> None:
    """Minimal PNG writer for what Pillow cannot write (16-bit colour, 2/4-bit gray)."""
    h, w = arr.shape[:2]
    rows = []
    for y in range(h):
        row = arr[y]
        if bit_depth == 16:
            raw = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            raw = row.astype(np.uint8).tobytes()
        else:
            per = 8 // bit_depth
            vals = list(row.reshape(-1))
            vals += [0] * (-len(vals) % per)
            raw = bytes(
                sum(int(vals[i + j]) << (8 - bit_depth * (j + 1)) for j in range(per))
                for i in range(0, len(vals), per)
            )
        rows.append(b"\x00" + raw)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + png_chunk(b"IEND", b"")
    path.write_bytes(data)


def make_corpus() -> None:
    if IMAGES.exists():
        shutil.rmtree(IMAGES)
    IMAGES.mkdir(parents=True)
    BAD.mkdir()
    # Real photos shipped inside PyPI wheels (scikit-learn, scikit-image).
    real = {
        "china.jpg": "sklearn/datasets/images/china.jpg",
        "flower.jpg": "sklearn/datasets/images/flower.jpg",
        "rocket.jpg": "skimage/data/rocket.jpg",
        "retina.jpg": "skimage/data/retina.jpg",
        "chelsea.png": "skimage/data/chelsea.png",
        "camera.png": "skimage/data/camera.png",
        "coins.png": "skimage/data/coins.png",
        "horse.png": "skimage/data/horse.png",
        "logo_rgba.png": "skimage/data/logo.png",
        "animated.gif": "skimage/data/no_time_for_that_tiny.gif",
    }
    for name, rel in real.items():
        shutil.copy(site_file(rel), IMAGES / name)

    china = Image.open(IMAGES / "china.jpg").convert("RGB")  # 640x427
    cat = Image.open(IMAGES / "chelsea.png").convert("RGB")  # 451x300
    small = china.resize((320, 214), Image.BICUBIC)
    tiny = china.resize((240, 160), Image.BICUBIC)  # for the uncompressed/16-bit files

    # JPEG: every subsampling Pillow writes, progressive, grayscale, CMYK.
    for sub in ["4:4:4", "4:2:2", "4:2:0"]:
        china.save(IMAGES / f"china_{sub.replace(':', '')}.jpg", quality=88, subsampling=sub)
    china.save(IMAGES / "china_progressive.jpg", quality=85, progressive=True)
    cat.save(IMAGES / "chelsea_q50_progressive_420.jpg", quality=50, progressive=True, subsampling="4:2:0")
    china.convert("L").save(IMAGES / "gray.jpg", quality=90)
    cat.convert("CMYK").save(IMAGES / "cmyk.jpg", quality=90)
    # Odd sizes: (resized side - 224) % 4 == 3, extreme aspect ratios, upscaling.
    china.resize((231, 224), Image.BICUBIC).save(IMAGES / "odd_231x224.jpg", quality=92)
    china.resize((462, 448), Image.BICUBIC).save(IMAGES / "odd_462x448.jpg", quality=92)
    cat.resize((227, 455), Image.BICUBIC).save(IMAGES / "odd_227x455.jpg", quality=92)
    cat.resize((2013, 231), Image.BICUBIC).save(IMAGES / "wide_2013x231.jpg", quality=80)
    cat.resize((3, 900), Image.BICUBIC).save(IMAGES / "thin_3x900.png")
    cat.resize((900, 3), Image.BICUBIC).save(IMAGES / "flat_900x3.png")
    cat.resize((120, 80), Image.BICUBIC).save(IMAGES / "small_120x80.jpg", quality=92)
    cat.resize((1, 1), Image.BICUBIC).save(IMAGES / "one_pixel.png")
    cat.resize((224, 224), Image.BICUBIC).save(IMAGES / "exact_224.png")
    cat.resize((224, 300), Image.BICUBIC).save(IMAGES / "exact_224x300.jpg", quality=92)
    china.resize((2000, 300), Image.BICUBIC).save(IMAGES / "wide_2000x300.jpg", quality=80)  # vertical pass first
    china.resize((700, 2100), Image.BICUBIC).save(IMAGES / "tall_700x2100.jpg", quality=70)
    # PNG: every mode.
    small.save(IMAGES / "rgb.png")
    small.convert("L").save(IMAGES / "l.png")
    small.convert("1").save(IMAGES / "bilevel_1.png")
    la = small.convert("L").copy()
    la.putalpha(Image.linear_gradient("L").resize(small.size))
    la.save(IMAGES / "la.png")
    rgba = small.copy()
    rgba.putalpha(Image.radial_gradient("L").resize(small.size))
    rgba.save(IMAGES / "rgba.png")
    odd = china.resize((231, 224), Image.BICUBIC).convert("RGBA")
    odd.putalpha(Image.linear_gradient("L").resize(odd.size))
    odd.save(IMAGES / "odd_231x224_rgba.png")
    small.convert("P", palette=Image.ADAPTIVE, colors=64).save(IMAGES / "p.png")
    p = small.convert("P", palette=Image.ADAPTIVE, colors=16)
    p.save(IMAGES / "p_trns.png", transparency=3)
    small.convert("L").save(IMAGES / "l_trns.png", transparency=128)
    arr = np.asarray(small.convert("L")).astype(np.uint16)
    Image.fromarray((arr * 257).astype(np.uint16)).save(IMAGES / "i16_full.png")  # I;16, mostly saturates
    Image.fromarray((arr // 2).astype(np.uint16)).save(IMAGES / "i16_low.png")  # I;16 within 0..255
    rgb16 = (np.asarray(tiny).astype(np.uint32) * 257 + np.arange(tiny.size[0])[None, :, None] % 251).astype(np.uint16)
    write_png(IMAGES / "rgb16.png", rgb16, 2, 16)
    alpha = np.asarray(Image.radial_gradient("L").resize(tiny.size)).astype(np.uint16)[..., None]
    rgba16 = np.concatenate([rgb16, alpha * 257], axis=2)
    write_png(IMAGES / "rgba16.png", rgba16, 6, 16)
    la16 = np.stack([arr * 257 + 3, np.asarray(la)[..., 1].astype(np.uint16) * 257], axis=2)
    write_png(IMAGES / "la16.png", la16, 4, 16)
    write_png(IMAGES / "gray2.png", (arr // 64).astype(np.uint8), 0, 2)
    write_png(IMAGES / "gray4.png", (arr // 16).astype(np.uint8), 0, 4)
    # Other formats that match exactly.
    tiny.save(IMAGES / "rgb.bmp")
    tiny.save(IMAGES / "rgb.tif")
    small.save(IMAGES / "lossless.webp", lossless=True)
    # GIF: palette (mode P), with transparency, and gray (opens as L).
    small.convert("P", palette=Image.ADAPTIVE, colors=200).save(IMAGES / "p.gif")
    small.convert("P", palette=Image.ADAPTIVE, colors=32).save(IMAGES / "p_trns.gif", transparency=5)
    small.convert("L").save(IMAGES / "l.gif")
    # A PNG named .jpg (format comes from the bytes).
    small.save(IMAGES / "png_named.jpg", format="PNG")
    # cjpeg (libjpeg-turbo-progs) writes what Pillow cannot: 4:4:0, 4:1:1, arithmetic, restarts.
    cjpeg = shutil.which("cjpeg")
    if cjpeg:
        ppm = io.BytesIO()
        china.save(ppm, format="PPM")
        for name, args in {
            "cjpeg_440.jpg": ["-sample", "1x2"],
            "cjpeg_411.jpg": ["-sample", "4x1"],
            # Pillow 13.0.0's bundled libjpeg-turbo refuses arithmetic coding
            # ("broken data stream"): kept apart, as a known difference.
            "bad/arithmetic.jpg": ["-arithmetic"],
            "cjpeg_restart.jpg": ["-restart", "2"],
            "cjpeg_progressive_444.jpg": ["-progressive", "-sample", "1x1"],
        }.items():
            out = subprocess.run([cjpeg, "-quality", "85", *args], input=ppm.getvalue(), capture_output=True, check=True)
            (IMAGES / name).write_bytes(out.stdout)
    else:
        # The corpus (and the README's list of exact cases) has these files: regenerating
        # without them would silently drop their goldens.
        sys.exit("cjpeg not found: install libjpeg-turbo-progs (apt) for the 4:4:0, 4:1:1, restart, "
                 "progressive 4:4:4 and arithmetic JPEGs of the corpus")

    # Bad inputs (not in the goldens; tests expect typed errors).
    (BAD / "empty.jpg").write_bytes(b"")
    (BAD / "text.jpg").write_bytes(b"this is not an image\n")
    jpg = (IMAGES / "china_420.jpg").read_bytes()
    (BAD / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    (BAD / "header_only.jpg").write_bytes(jpg[:200])
    pngb = (IMAGES / "rgb.png").read_bytes()
    (BAD / "truncated.png").write_bytes(pngb[: len(pngb) // 2])
    corrupt = bytearray(pngb)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = b"\xff" * 64
    (BAD / "corrupt.png").write_bytes(bytes(corrupt))
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b"")
    (BAD / "bomb_100000x100000.png").write_bytes(bomb)


def reference(n_px: int):
    from clip.clip import _transform

    return _transform(n_px)


def tensor_of(path: Path, n_px: int) -> np.ndarray:
    t = reference(n_px)(Image.open(path))
    return t.numpy().astype("<f4", copy=False)


def corpus_files() -> list[Path]:
    return sorted(p for p in IMAGES.iterdir() if p.is_file())


def write_goldens() -> None:
    import torch
    import torchvision

    OUT.mkdir(parents=True, exist_ok=True)
    full = OUT / "full"
    if full.exists():
        shutil.rmtree(full)
    full.mkdir()
    lines = []
    for path in corpus_files():
        for n_px in [224] + [s for s, names in EXTRA_SIZES.items() if path.name in names]:
            with Image.open(path) as im:
                mode, size = im.mode, im.size
            arr = tensor_of(path, n_px)
            assert arr.shape == (3, n_px, n_px), (path, arr.shape)
            digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
            lines.append(f"{path.name}\t{n_px}\t{mode}\t{size[0]}x{size[1]}\t{digest}")
            if n_px == 224 and path.name in FULL:
                np.save(full / f"{path.name}.npy", arr)
    header = (
        f"# reference: clip-anytorch clip.clip._transform(n_px)(Image.open(path)); "
        f"Pillow {PIL.__version__}, torchvision {torchvision.__version__}, torch {torch.__version__}, numpy {np.__version__}\n"
        "# name\tsize\tpillow_mode\tWxH\tsha256(little-endian f32 [3,size,size])\n"
    )
    (OUT / "goldens.tsv").write_text(header + "\n".join(lines) + "\n")
    # Which bad inputs Pillow refuses (for the record in README).
    for p in sorted(BAD.iterdir()):
        try:
            tensor_of(p, 224)
            print(f"bad/{p.name}: Pillow decodes it")
        except Exception as e:  # noqa: BLE001
            print(f"bad/{p.name}: Pillow raises {type(e).__name__}")
    print(f"{len(lines)} goldens written to {OUT}")


def diff(image: Path, actual: Path, n_px: int) -> None:
    ref = tensor_of(image, n_px)
    act = np.load(actual)
    d = np.abs(ref.astype(np.float64) - act.astype(np.float64))
    idx = np.unravel_index(np.argmax(d), d.shape)
    print(f"max |diff| = {d.max():.9g} at {tuple(int(i) for i in idx)}; differing values: {(d > 0).sum()} of {d.size}")
    # In 8-bit pixel units (std ~0.27, 1/255 step ~0.0146).
    print(f"~ {d.max() * 0.27 * 255:.2f} pixel levels")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("corpus")
    sub.add_parser("goldens")
    d = sub.add_parser("diff")
    d.add_argument("image", type=Path)
    d.add_argument("actual", type=Path)
    d.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    check_versions()
    if args.cmd == "corpus":
        make_corpus()
    elif args.cmd == "goldens":
        write_goldens()
    else:
        diff(args.image, args.actual, args.size)


if __name__ == "__main__":
    main()
