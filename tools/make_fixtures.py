#!/usr/bin/env python3
"""Generate the tiny test models and their golden outputs under tests/data/models/.

Every model is a seeded random-init instance of the reference
``clip.model.CLIP`` (real structure, tiny widths), exported with
``tools/export_onnx.py``. Goldens come from the PyTorch reference in fp32 on
CPU, never from ONNX output:

* ``inputs/pixel_values.npy``  float32 ``[N,3,224,224]``: photos from
  scikit-image's data folder through the reference ``preprocess``
  (``clip.clip._transform(224)``), Pillow pinned (see tools/requirements.txt);
* ``inputs/input_ids.npy``     int32 ``[M,77]``: ``clip.tokenize(texts, truncate=True)``;
* ``inputs/texts.json``        the texts, in order;
* ``inputs/photos.json``       the photo file names (scikit-image ``skimage/data``);
* ``golden/image_embeds.npy``  float32 ``model.encode_image(pixel_values)``;
* ``golden/text_embeds.npy``   float32 ``model.encode_text(input_ids)``;
* ``golden/logits_per_image.npy`` float32 ``model(image, text)[0]``.

Fixtures: ``tiny-vit`` (ViT), ``tiny-vit-fp16`` (same weights, fp16 ONNX),
``tiny-rn`` (ModifiedResNet), ``micro`` (a valid micro model with a 10-token
vocabulary, the base of the error cases) and ``broken/*`` (error cases), and,
when transformers is installed, ``tiny-hf`` (a transformers.js-style layout).
``MANIFEST.json`` records the hyperparameters, file sizes and the measured
ONNX Runtime vs golden differences.

Usage: ``python3 tools/make_fixtures.py [--out tests/data/models] [--only tiny-vit,...]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_onnx as E  # noqa: E402

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "data" / "models"

PHOTOS = ["chelsea.png", "rocket.jpg", "camera.png"]  # RGB PNG, JPEG, grayscale PNG (also in tests/data/images)
TEXTS = [
    "a photo of an astronaut",
    "a photo of a rocket",
    "a black and white photo of a man with a camera",
    "A PHOTO OF A CAT!!",
    "",
    "caf\u00e9 na\u00efve \u201csmart quotes\u201d &amp; entities  \t with   spaces",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 and emoji \U0001f680",
    ("This is a deliberately long passage of text that goes on and on, describing a rocket standing on its "
     "launch pad at dawn, an astronaut waving at the cameras, a photographer adjusting a tripod, clouds drifting "
     "over the hills, and many other details that push the token count well past the seventy-seven token "
     "context window of CLIP so that truncation must happen, and then it keeps going with even more words about "
     "the weather, the crowd, the noise of the engines and the long wait before the countdown finally begins."),
]

TINY: dict[str, dict[str, Any]] = {
    "tiny-vit": dict(seed=0, hp=dict(embed_dim=32, image_resolution=224, vision_layers=2, vision_width=64,
                                     vision_patch_size=32, context_length=77, vocab_size=49408,
                                     transformer_width=16, transformer_heads=2, transformer_layers=2)),
    "tiny-rn": dict(seed=1, hp=dict(embed_dim=32, image_resolution=224, vision_layers=(1, 1, 1, 1), vision_width=8,
                                    vision_patch_size=None, context_length=77, vocab_size=49408,
                                    transformer_width=8, transformer_heads=2, transformer_layers=2)),
}
MICRO = dict(seed=2, hp=dict(embed_dim=8, image_resolution=32, vision_layers=1, vision_width=64,
                             vision_patch_size=16, context_length=77, vocab_size=10,
                             transformer_width=8, transformer_heads=2, transformer_layers=1))


def photo_path(name: str) -> Path:
    """Path of a scikit-image sample photo."""
    import skimage

    p = Path(skimage.__file__).parent / "data" / name
    if not p.is_file():
        raise FileNotFoundError(f"{p}: scikit-image sample photo not found")
    return p


def make_inputs(n_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference-preprocessed pixel values and token ids."""
    from PIL import Image

    clip = E._import_clip()
    preprocess = clip.clip._transform(n_px)
    pix = torch.stack([preprocess(Image.open(photo_path(n))) for n in PHOTOS]).numpy().astype(np.float32)
    ids = clip.tokenize(TEXTS, truncate=True).numpy().astype(np.int32)
    return pix, ids


def goldens(model: torch.nn.Module, pix: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Reference outputs in fp32 on CPU."""
    with torch.no_grad():
        img = torch.from_numpy(pix)
        txt = torch.from_numpy(ids.astype(np.int64))
        return {
            "image_embeds": model.encode_image(img).float().numpy(),
            "text_embeds": model.encode_text(txt).float().numpy(),
            "logits_per_image": model(img, txt)[0].float().numpy(),
        }


def write_fixture(d: Path, pix: np.ndarray, ids: np.ndarray, gold: dict[str, np.ndarray]) -> None:
    (d / "inputs").mkdir(parents=True, exist_ok=True)
    (d / "golden").mkdir(parents=True, exist_ok=True)
    np.save(d / "inputs" / "pixel_values.npy", pix)
    np.save(d / "inputs" / "input_ids.npy", ids)
    (d / "inputs" / "texts.json").write_text(json.dumps(TEXTS, ensure_ascii=False, indent=1) + "\n")
    (d / "inputs" / "photos.json").write_text(json.dumps(PHOTOS) + "\n")
    for k, v in gold.items():
        np.save(d / "golden" / f"{k}.npy", v.astype(np.float32))


def ort_vs_golden(d: Path, pix: np.ndarray, ids: np.ndarray, gold: dict[str, np.ndarray]) -> dict[str, Any]:
    """Measured ONNX Runtime output vs the goldens (what the Rust tests will see)."""
    cfg = json.loads((d / E.CONFIG_FILE).read_text())
    vdt = np.float16 if cfg["visual_dtype"] == "float16" else np.float32
    vs = E.ort_session(d / E.VISUAL_FILE)
    ts = E.ort_session(d / E.TEXTUAL_FILE)
    img = vs.run(None, {"pixel_values": pix.astype(vdt)})[0]
    txt = ts.run(None, {"input_ids": ids.astype(np.int64)})[0]
    n = int(ids.argmax(-1).max()) + 1
    txt_dyn = ts.run(None, {"input_ids": ids[:, :n].astype(np.int64)})[0]
    short = np.nonzero(ids.argmax(-1) < 20)[0]
    ns = int(ids[short].argmax(-1).max()) + 1
    txt_short = ts.run(None, {"input_ids": ids[short, :ns].astype(np.int64)})[0]
    return {"image": E.compare(gold["image_embeds"], img), "text": E.compare(gold["text_embeds"], txt),
            "text_dynamic": {**E.compare(gold["text_embeds"], txt_dyn), "seq": n},
            "text_short": {**E.compare(gold["text_embeds"][short], txt_short), "seq": ns}}


def size_of(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def build_tiny(name: str, out: Path, pix: np.ndarray, ids: np.ndarray, manifest: dict[str, Any]) -> None:
    spec = TINY[name]
    model = E.build_clip(spec["hp"], spec["seed"])
    gold = goldens(model, pix, ids)
    variants = [(name, False)] + ([(name + "-fp16", True)] if name == "tiny-vit" else [])
    for vname, fp16 in variants:
        d = out / vname
        if d.exists():
            shutil.rmtree(d)
        prep = E.prepare_openai(model, {"kind": "random-init", "checkpoint": None, "seed": spec["seed"],
                                        "fixture": vname})
        E.export_prepared(prep, d, fp16=fp16, quiet=True)
        _strip_verification(d)
        write_fixture(d, pix, ids, gold)
        meas = ort_vs_golden(d, pix, ids, gold)
        hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec["hp"].items()}
        manifest[vname] = {"seed": spec["seed"], "hyperparameters": hp, "bytes": size_of(d),
                           "ort_vs_golden": meas}
        print(f"{vname}: {size_of(d) / 1e6:.2f} MB")
        if not E.print_verification(meas, "float16" if fp16 else "float32"):
            # A fixture whose ONNX Runtime output misses its goldens must not be committed.
            raise SystemExit(f"{vname}: ONNX Runtime output outside the bounds against the goldens")


def _strip_verification(d: Path) -> None:
    """Drop the run-specific verification numbers from a fixture's config (keeps regeneration diffs small)."""
    p = d / E.CONFIG_FILE
    cfg = json.loads(p.read_text())
    cfg["exporter"].pop("verification", None)
    p.write_text(json.dumps(cfg, indent=2) + "\n")


def build_micro_and_broken(out: Path, manifest: dict[str, Any]) -> None:
    """A valid micro model and the error cases derived from it."""
    import onnx
    from onnx import TensorProto, helper

    model = E.build_clip(MICRO["hp"], MICRO["seed"])
    micro = out / "micro"
    if micro.exists():
        shutil.rmtree(micro)
    prep = E.prepare_openai(model, {"kind": "random-init", "checkpoint": None, "seed": MICRO["seed"],
                                    "fixture": "micro"})
    E.export_prepared(prep, micro, quiet=True)
    _strip_verification(micro)
    # Golden for the micro model: a fixed pixel tensor and fixed ids (vocab 10: SOT=8, EOT=9).
    rng = np.random.default_rng(MICRO["seed"])
    pix = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    ids = np.zeros((2, 77), dtype=np.int32)
    ids[0, :4] = [8, 3, 5, 9]
    ids[1, :3] = [8, 1, 9]
    gold = goldens(model, pix, ids)
    (micro / "inputs").mkdir(exist_ok=True)
    (micro / "golden").mkdir(exist_ok=True)
    np.save(micro / "inputs" / "pixel_values.npy", pix)
    np.save(micro / "inputs" / "input_ids.npy", ids)
    for k, v in gold.items():
        np.save(micro / "golden" / f"{k}.npy", v.astype(np.float32))
    manifest["micro"] = {"seed": MICRO["seed"], "hyperparameters": MICRO["hp"], "bytes": size_of(micro)}

    broken = out / "broken"
    if broken.exists():
        shutil.rmtree(broken)

    def clone(name: str) -> Path:
        d = broken / name
        d.mkdir(parents=True)
        for f in (E.VISUAL_FILE, E.TEXTUAL_FILE, E.CONFIG_FILE):
            shutil.copy(micro / f, d / f)
        return d

    cases: dict[str, str] = {}
    # 1. visual.onnx truncated to half its bytes.
    d = clone("truncated-onnx")
    data = (d / E.VISUAL_FILE).read_bytes()
    (d / E.VISUAL_FILE).write_bytes(data[: len(data) // 2])
    cases["truncated-onnx"] = "visual.onnx cut to half its bytes (corrupt protobuf)"
    # 2. visual.onnx is not an ONNX file at all.
    d = clone("not-onnx")
    (d / E.VISUAL_FILE).write_text("this is not an ONNX model\n")
    cases["not-onnx"] = "visual.onnx is a text file"
    # 3. textual.onnx missing.
    d = clone("missing-textual")
    (d / E.TEXTUAL_FILE).unlink()
    cases["missing-textual"] = "textual.onnx absent"
    # 4. config missing.
    d = clone("missing-config")
    (d / E.CONFIG_FILE).unlink()
    cases["missing-config"] = "clip_config.json absent"
    # 5. config not valid JSON.
    d = clone("invalid-config-json")
    (d / E.CONFIG_FILE).write_text('{"format": "clip-rs/1", "embed_dim": 8,\n')
    cases["invalid-config-json"] = "clip_config.json truncated (invalid JSON)"
    # 6. config disagrees with the model (embed_dim 9 vs the models' 8).
    d = clone("config-embed-dim-mismatch")
    cfg = json.loads((d / E.CONFIG_FILE).read_text())
    cfg["embed_dim"] = 9
    (d / E.CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    cases["config-embed-dim-mismatch"] = "config embed_dim 9, models output 8"
    # 7. config image_size disagrees with the visual model's input (48 vs 32).
    d = clone("config-image-size-mismatch")
    cfg = json.loads((d / E.CONFIG_FILE).read_text())
    cfg["image_size"] = 48
    (d / E.CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    cases["config-image-size-mismatch"] = "config image_size 48, visual.onnx takes 32x32"
    # 8. unknown format string.
    d = clone("unknown-format")
    cfg = json.loads((d / E.CONFIG_FILE).read_text())
    cfg["format"] = "clip-rs/999"
    (d / E.CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    cases["unknown-format"] = 'config format "clip-rs/999"'

    def rename(path: Path, old: str, new: str) -> None:
        m = onnx.load(str(path))
        for io in list(m.graph.input) + list(m.graph.output):
            if io.name == old:
                io.name = new
        for node in m.graph.node:
            node.input[:] = [new if n == old else n for n in node.input]
            node.output[:] = [new if n == old else n for n in node.output]
        onnx.checker.check_model(m)
        onnx.save(m, str(path))

    # 9. wrong input name on the visual model.
    d = clone("wrong-input-name")
    rename(d / E.VISUAL_FILE, "pixel_values", "image")
    cases["wrong-input-name"] = 'visual.onnx input named "image" instead of "pixel_values"'
    # 10. wrong output name on the text model.
    d = clone("wrong-output-name")
    rename(d / E.TEXTUAL_FILE, "text_embeds", "embeddings")
    cases["wrong-output-name"] = 'textual.onnx output named "embeddings" instead of "text_embeds"'
    # 11. wrong input dtype: textual.onnx takes int32 ids (a Cast to int64 inserted).
    d = clone("wrong-input-dtype")
    m = onnx.load(str(d / E.TEXTUAL_FILE))
    inp = m.graph.input[0]
    for node in m.graph.node:
        node.input[:] = ["input_ids_i64" if n == "input_ids" else n for n in node.input]
    m.graph.node.insert(0, helper.make_node("Cast", ["input_ids"], ["input_ids_i64"], to=TensorProto.INT64))
    inp.type.tensor_type.elem_type = TensorProto.INT32
    onnx.checker.check_model(m)
    onnx.save(m, str(d / E.TEXTUAL_FILE))
    cases["wrong-input-dtype"] = "textual.onnx input_ids is int32 instead of int64"
    # 12. wrong input rank: visual.onnx takes [batch, 3*32*32] (a Reshape inserted).
    d = clone("wrong-input-rank")
    m = onnx.load(str(d / E.VISUAL_FILE))
    inp = m.graph.input[0]
    for node in m.graph.node:
        node.input[:] = ["pixel_values_4d" if n == "pixel_values" else n for n in node.input]
    shape = helper.make_tensor("pv_shape", TensorProto.INT64, [4], [-1, 3, 32, 32])
    m.graph.initializer.append(shape)
    m.graph.node.insert(0, helper.make_node("Reshape", ["pixel_values", "pv_shape"], ["pixel_values_4d"]))
    dims = inp.type.tensor_type.shape.dim
    batch_dim = dims[0].dim_param or "batch"
    del dims[:]
    new = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [batch_dim, 3 * 32 * 32])
    inp.CopyFrom(new)
    onnx.checker.check_model(m)
    onnx.save(m, str(d / E.VISUAL_FILE))
    cases["wrong-input-rank"] = "visual.onnx input is [batch, 3072] instead of [batch, 3, 32, 32]"

    lines = ["# Broken model directories (error-path tests)", "",
             "Each is a copy of `../micro/` (a valid micro model: image 32, embed_dim 8, vocab 10) with one "
             "defect. Loading each must give a typed error, never a panic.", "",
             "| directory | defect |", "| --- | --- |"]
    lines += [f"| `{k}/` | {v} |" for k, v in cases.items()]
    (broken / "README.md").write_text("\n".join(lines) + "\n")
    manifest["broken"] = {"cases": cases, "bytes": size_of(broken)}
    build_static_batch(micro, out)
    print(f"micro: {size_of(micro) / 1e3:.1f} kB, broken: {size_of(broken) / 1e3:.1f} kB")


def build_static_batch(micro: Path, out: Path, batch: int = 2) -> None:
    """`static-batch-2/`: `micro/` with both towers' batch dimension fixed to 2 (input and
    output), as some third-party exports have; clip-ort runs such towers in chunks of that
    size. A valid model: its outputs are micro's (the tests compare with micro's goldens)."""
    import onnx

    d = out / f"static-batch-{batch}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    shutil.copy(micro / E.CONFIG_FILE, d / E.CONFIG_FILE)
    for f in (E.VISUAL_FILE, E.TEXTUAL_FILE):
        m = onnx.load(str(micro / f))
        for io in list(m.graph.input) + list(m.graph.output):
            dim = io.type.tensor_type.shape.dim[0]
            dim.ClearField("dim_param")
            dim.dim_value = batch
        onnx.checker.check_model(m)
        onnx.save(m, str(d / f))


def build_tiny_hf(out: Path, pix: np.ndarray, ids: np.ndarray, manifest: dict[str, Any]) -> Optional[str]:
    """A transformers.js-style layout from a random-init tiny HF CLIPModel (skipped without transformers)."""
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return "tiny-hf skipped (transformers is not installed)"
    from _clip_export.hf_fixture import build_tiny_hf as build  # type: ignore
    return build(out, pix, ids, TEXTS, manifest)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture root (default tests/data/models)")
    p.add_argument("--only", default="", help="comma-separated subset: tiny-vit,tiny-rn,micro,tiny-hf")
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    only = {s for s in a.only.split(",") if s}
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "MANIFEST.json"
    manifest: dict[str, Any] = json.loads(mpath.read_text()) if mpath.is_file() else {}
    import PIL
    import onnxruntime

    manifest["_versions"] = {"torch": torch.__version__.split("+")[0], "pillow": PIL.__version__,
                             "onnxruntime": onnxruntime.__version__, "clip-anytorch": _version("clip-anytorch"),
                             "onnx_opset": 18}
    pix, ids = make_inputs(224)
    for name in ("tiny-vit", "tiny-rn"):
        if not only or name in only:
            build_tiny(name, out, pix, ids, manifest)
    if not only or "micro" in only:
        build_micro_and_broken(out, manifest)
    if not only or "tiny-hf" in only:
        msg = build_tiny_hf(out, pix, ids, manifest)
        if msg:
            print(msg)
    mpath.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {mpath}; total {size_of(out) / 1e6:.2f} MB")
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.exit(main())
