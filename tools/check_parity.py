#!/usr/bin/env python3
"""Parity report: ONNX exports (and optionally the clip-rs CLI) against the PyTorch reference.

Steps:

1. regenerate the fixtures' goldens (``tools/make_fixtures.py``) unless ``--skip-fixtures``;
2. for each architecture (default ViT-B/32, ViT-B/16, RN50): make a full-size seeded random-init
   model, save it in OpenAI's layout (``--save-checkpoint``), export it with
   ``tools/export_onnx.py``, reload the reference with
   ``clip.load(ckpt, device="cpu", jit=False)`` and compare ONNX Runtime with it on random
   pixels, real photos through the reference ``preprocess``, real texts through
   ``clip.tokenize(..., truncate=True)`` (77 columns and trimmed to the longest EOT);
3. with ``--clip-bin PATH``: run the Rust CLI contract
   ``clip embed-image --model DIR --out F.npy IMAGE...`` and
   ``clip embed-text --model DIR --out F.npy --truncate`` (one text per line on stdin) and compare
   with ``encode_image(preprocess(Image.open(f)))`` / ``encode_text(clip.tokenize(t, truncate=True))``.

Prints one table: cosine (minimum over rows), max abs diff, and that relative to max |ref|.
Exits non-zero when an fp32 row has cosine < 0.99999 or relative diff > 1e-4.

Examples::

    python3 tools/check_parity.py --work-dir /work/models/parity
    python3 tools/check_parity.py --fixtures-only
    python3 tools/check_parity.py --skip-fixtures --archs ViT-B/32 --clip-bin target/release/clip
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_onnx as E  # noqa: E402
import make_fixtures as F  # noqa: E402

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "hubble_deep_field.jpg",
          "motorcycle_left.png", "retina.jpg"]
TEXTS = F.TEXTS + [
    "a diagram",
    "a photo of a motorcycle parked on the street",
    "an x-ray of a hand",
    "The quick brown fox jumps over the lazy dog.",
]
COS_MIN = 0.99999
REL_MAX = 1e-4


def slug(arch: str) -> str:
    return arch.replace("/", "-").replace("@", "-")


Row = dict[str, Any]


def row(model: str, what: str, r: dict[str, float], shape: Sequence[int], dtype: str = "float32") -> Row:
    if dtype == "float32":
        ok = r["cosine_min"] >= COS_MIN and r["rel_diff"] <= REL_MAX
    else:
        ok = r["cosine_min"] >= E.COSINE_MIN[dtype]
    return {"model": model, "check": what, "shape": "x".join(map(str, shape)), "cos": r["cosine_min"],
            "abs": r["max_abs_diff"], "rel": r["rel_diff"], "ok": ok}


def print_table(rows: list[Row]) -> None:
    """A Markdown table of the checks."""
    cols = ["model", "check", "shape", "min cosine", "max abs diff", "rel. to max abs ref", "ok"]
    cells = [[r["model"], r["check"], r["shape"], f"{r['cos']:.9f}", f"{r['abs']:.3e}", f"{r['rel']:.3e}",
              "OK" if r["ok"] else "NO"] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for x in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(x, widths)) + " |")


def reference_photos(n_px: int) -> tuple[list[Path], np.ndarray]:
    """Photo paths and their reference-preprocessed tensors."""
    from PIL import Image

    clip = E._import_clip()
    pre = clip.clip._transform(n_px)
    paths = [F.photo_path(p) for p in PHOTOS]
    return paths, torch.stack([pre(Image.open(p)) for p in paths]).numpy()


def check_fixtures(root: Path) -> list[Row]:
    """ONNX Runtime on each committed fixture vs its goldens."""
    rows: list[Row] = []
    for name in ("tiny-vit", "tiny-rn", "tiny-vit-fp16"):
        d = root / name
        if not (d / E.CONFIG_FILE).is_file():
            continue
        pix = np.load(d / "inputs" / "pixel_values.npy")
        ids = np.load(d / "inputs" / "input_ids.npy")
        gold = {k: np.load(d / "golden" / f"{k}.npy") for k in ("image_embeds", "text_embeds")}
        meas = F.ort_vs_golden(d, pix, ids, gold)
        dt = "float16" if name.endswith("fp16") else "float32"
        rows.append(row(name, "fixture image vs golden", meas["image"], pix.shape, dt))
        rows.append(row(name, "fixture text (77) vs golden", meas["text"], ids.shape, dt))
        short = ids[ids.argmax(-1) < 20]
        rows.append(row(name, f"fixture short text (seq {meas['text_short']['seq']}) vs golden",
                        meas["text_short"], (short.shape[0], meas["text_short"]["seq"]), dt))
    return rows


def export_full(arch: str, seed: int, work: Path, force: bool, variant: str = "float32") -> tuple[Path, Path, float]:
    """Random-init ``arch``, save its checkpoint, export; reuses a finished export unless ``force``.

    ``variant``: ``float32``, ``float16`` (``--fp16``) or ``int8`` (``--int8``); the checkpoint
    always lives in the fp32 directory ``work/<arch>/``.
    """
    base = work / slug(arch)
    d = base if variant == "float32" else work / f"{slug(arch)}-{variant}"
    ckpt = base / f"{slug(arch)}-random-seed{seed}.pt"
    cfg = d / E.CONFIG_FILE
    if not force and cfg.is_file() and ckpt.is_file():
        c = json.loads(cfg.read_text())
        quant = "int8" if c.get("quantization") else c.get("visual_dtype")
        if c.get("source", {}).get("seed") == seed and c.get("architecture") == arch and quant == variant:
            print(f"{arch} {variant}: reusing {d}")
            return d, ckpt, 0.0
    t0 = time.time()
    model = E.random_init_openai(arch, seed)
    E.save_openai_checkpoint(model, ckpt)
    prep = E.prepare_openai(model, {"kind": "random-init", "checkpoint": str(ckpt), "seed": seed})
    E.export_prepared(prep, d, fp16=variant == "float16", int8=variant == "int8")
    return d, ckpt, time.time() - t0


def check_full(arch: str, d: Path, ckpt: Path, seed: int, variant: str = "float32") -> list[Row]:
    """ONNX Runtime vs ``clip.load(ckpt)`` (fp32) on random pixels, real photos and real texts."""
    clip = E._import_clip()
    model, _ = clip.load(str(ckpt), device="cpu", jit=False)
    model.eval()
    cfg = json.loads((d / E.CONFIG_FILE).read_text())
    S = cfg["image_size"]
    in_dt = np.float16 if cfg["visual_dtype"] == "float16" else np.float32
    label = arch if variant == "float32" else f"{arch} {variant}"
    rng = np.random.default_rng(seed + 99)
    rand = rng.standard_normal((4, 3, S, S)).astype(np.float32)
    _, photos = reference_photos(S)
    ids = clip.tokenize(TEXTS, truncate=True).numpy().astype(np.int64)
    n = int(ids.argmax(-1).max()) + 1
    short = ids[[0, 1, 2, 3, 4, 8, 9, 10]]
    ns = int(short.argmax(-1).max()) + 1
    rows: list[Row] = []
    vs = E.ort_session(d / E.VISUAL_FILE)
    ts = E.ort_session(d / E.TEXTUAL_FILE)
    with torch.no_grad():
        for what, x in (("image, random pixels", rand), ("image, photos via preprocess", photos)):
            ref = model.encode_image(torch.from_numpy(x)).numpy()
            got = vs.run(None, {"pixel_values": x.astype(in_dt)})[0]
            rows.append(row(label, what, E.compare(ref, got), x.shape, variant))
        ref_t = model.encode_text(torch.from_numpy(ids)).numpy()
        rows.append(row(label, "text, 77 columns", E.compare(ref_t, ts.run(None, {"input_ids": ids})[0]),
                        ids.shape, variant))
        if n < ids.shape[1]:
            rows.append(row(label, f"text, trimmed to {n} columns",
                            E.compare(ref_t, ts.run(None, {"input_ids": ids[:, :n]})[0]), ids[:, :n].shape, variant))
        ref_s = model.encode_text(torch.from_numpy(short)).numpy()
        rows.append(row(label, f"short texts, trimmed to {ns} columns",
                        E.compare(ref_s, ts.run(None, {"input_ids": short[:, :ns]})[0]), short[:, :ns].shape, variant))
    return rows


def _cli_env() -> dict[str, str]:
    """The environment for the CLI: ORT_DYLIB_PATH defaults to the onnxruntime wheel's library."""
    import os

    env = dict(os.environ)
    if "ORT_DYLIB_PATH" not in env:
        import onnxruntime

        capi = Path(onnxruntime.__file__).parent / "capi"
        libs = sorted(capi.glob("libonnxruntime.so*"))
        if libs:
            env["ORT_DYLIB_PATH"] = str(libs[-1])
    return env


def run_cli(clip_bin: Path, model_dir: Path, label: str, model: torch.nn.Module, n_px: int) -> list[Row]:
    """The CLI contract vs the reference on photo files and texts."""
    from PIL import Image

    clip = E._import_clip()
    pre = clip.clip._transform(n_px)
    paths = [F.photo_path(p) for p in PHOTOS]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as td:
        img_out = Path(td) / "img.npy"
        txt_out = Path(td) / "txt.npy"
        cmd = [str(clip_bin), "embed-image", "--model", str(model_dir), "--out", str(img_out)] + [str(p) for p in paths]
        r = subprocess.run(cmd, capture_output=True, text=True, env=_cli_env())
        if r.returncode != 0 or not img_out.is_file():
            print(f"{label}: `{' '.join(cmd[:6])} ...` failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")
            rows.append({"model": label, "check": "CLI embed-image FAILED", "shape": "-", "cos": float("nan"),
                         "abs": float("nan"), "rel": float("nan"), "ok": False})
        else:
            got = np.load(img_out)
            with torch.no_grad():
                ref = model.encode_image(torch.stack([pre(Image.open(p)) for p in paths])).numpy()
            rows.append(_cli_row(label, "CLI embed-image vs reference", ref, got))
        cmd = [str(clip_bin), "embed-text", "--model", str(model_dir), "--out", str(txt_out), "--truncate"]
        texts = [t for t in TEXTS if "\n" not in t]
        r = subprocess.run(cmd, input="\n".join(texts) + "\n", capture_output=True, text=True, env=_cli_env())
        if r.returncode != 0 or not txt_out.is_file():
            print(f"{label}: `{' '.join(cmd)}` failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")
            rows.append({"model": label, "check": "CLI embed-text FAILED", "shape": "-", "cos": float("nan"),
                         "abs": float("nan"), "rel": float("nan"), "ok": False})
        else:
            got = np.load(txt_out)
            with torch.no_grad():
                ref = model.encode_text(clip.tokenize(texts, truncate=True)).numpy()
            rows.append(_cli_row(label, "CLI embed-text vs reference", ref, got))
    return rows


def _cli_row(label: str, what: str, ref: np.ndarray, got: np.ndarray) -> Row:
    if got.shape != ref.shape or got.dtype != np.float32:
        print(f"{label}: {what}: CLI wrote {got.dtype} {got.shape}, expected float32 {ref.shape}")
        return {"model": label, "check": what + " (SHAPE/DTYPE)", "shape": "x".join(map(str, got.shape)),
                "cos": float("nan"), "abs": float("nan"), "rel": float("nan"), "ok": False}
    return row(label, what, E.compare(ref, got), got.shape)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default="ViT-B/32,ViT-B/16,RN50", help="comma-separated OpenAI architectures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=REPO / "models" / "parity",
                   help="where full-size exports and checkpoints go (default models/parity, git-ignored)")
    p.add_argument("--force", action="store_true", help="re-export even if an export exists in --work-dir")
    p.add_argument("--skip-fixtures", action="store_true", help="do not regenerate tests/data/models")
    p.add_argument("--fixtures-only", action="store_true", help="only regenerate and check the fixtures")
    p.add_argument("--fixtures", type=Path, default=F.DEFAULT_OUT, help="fixture root")
    p.add_argument("--clip-bin", type=Path, help="path of the clip-rs CLI binary to check as well")
    p.add_argument("--threads", type=int, default=0, help="torch threads")
    p.add_argument("--variants", default="float32",
                   help="comma-separated export variants to check: float32,float16,int8 (default float32)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)

    rows: list[Row] = []
    if not a.skip_fixtures:
        F.main(["--out", str(a.fixtures)])
    rows += check_fixtures(a.fixtures)

    clip_bin: Optional[Path] = a.clip_bin
    if clip_bin is not None and not (clip_bin.is_file() or shutil.which(str(clip_bin))):
        print(f"--clip-bin {clip_bin}: not found; skipping the CLI checks")
        clip_bin = None
    if clip_bin is not None and (a.fixtures / "tiny-vit" / E.CONFIG_FILE).is_file():
        tiny = E.build_clip(F.TINY["tiny-vit"]["hp"], F.TINY["tiny-vit"]["seed"])
        rows += run_cli(clip_bin, a.fixtures / "tiny-vit", "tiny-vit", tiny, 224)

    if not a.fixtures_only:
        for arch in [s for s in a.archs.split(",") if s]:
            for variant in [v for v in a.variants.split(",") if v]:
                if variant not in E.COSINE_MIN:
                    p.error(f"--variants: unknown {variant!r}")
                d, ckpt, secs = export_full(arch, a.seed, a.work_dir, a.force, variant)
                if secs:
                    print(f"{arch} {variant}: exported in {secs:.0f}s")
                rows += check_full(arch, d, ckpt, a.seed, variant)
            d = a.work_dir / slug(arch)
            ckpt = d / f"{slug(arch)}-random-seed{a.seed}.pt"
            if clip_bin is not None and (d / E.CONFIG_FILE).is_file():
                clip = E._import_clip()
                ref, _ = clip.load(str(ckpt), device="cpu", jit=False)
                rows += run_cli(clip_bin, d, arch, ref.eval(), json.loads((d / E.CONFIG_FILE).read_text())
                                ["image_size"])

    import onnxruntime

    print()
    print(f"Parity report: ONNX Runtime {onnxruntime.__version__} (CPU) vs PyTorch {torch.__version__} reference "
          f"(fp32 bounds: cosine >= {COS_MIN}, max abs diff <= {REL_MAX} x max abs ref; fp16 rows: cosine >= {E.COSINE_MIN['float16']}, int8 rows: cosine >= {E.COSINE_MIN['int8']})")
    print_table(rows)
    bad = [r for r in rows if not r["ok"]]
    if bad:
        print(f"{len(bad)} check(s) out of bounds")
        return 1
    print(f"all {len(rows)} checks within bounds")
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.exit(main())
