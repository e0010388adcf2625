#!/usr/bin/env python3
"""Generate the zero-shot goldens under tests/data/zero_shot/ from the PyTorch reference.

Two files, both JSON (float32 values written exactly as Python floats):

``ensemble_math.json``
    Random prompt embeddings ``[C, T, D]`` and image embeddings ``[N, D]`` (NumPy,
    seeded) and, per logit scale, what OpenAI's notebook
    ``Prompt_Engineering_for_ImageNet.ipynb`` computes from them in torch float32::

        class_embeddings /= class_embeddings.norm(dim=-1, keepdim=True)
        class_embedding = class_embeddings.mean(dim=0)
        class_embedding /= class_embedding.norm()
        logits = logit_scale.exp() * image_features @ zeroshot_weights

    (the notebook hard-codes 100 for ``logit_scale.exp()``; we take the model's own
    scale), the softmax and ``topk(3)``; plus a NumPy float64 cross-check of the same
    math. Read by ``clip-core/tests/zero_shot.rs``.

``tiny_vit_classify.json``
    The reference model behind ``tests/data/models/tiny-vit`` rebuilt with the seed and
    hyperparameters of ``tests/data/models/MANIFEST.json`` (``tools/make_fixtures.py``),
    checked to reproduce ``tiny-vit/golden/image_embeds.npy`` first, then on photos from
    ``tests/data/images`` through the reference ``preprocess``:

    * ``probs_none``: ``model(image, clip.tokenize(labels))[0].softmax(-1)``;
    * ``probs_imagenet``: the notebook's 80-template ensemble of each label, with the
      model's ``logit_scale.exp()``.

    Read by ``tests/classify_cli.rs``.

Usage: ``/work/venv/bin/python tools/gen_zero_shot_goldens.py [--out tests/data/zero_shot]``
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_onnx as E  # noqa: E402
import make_fixtures as F  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "tests" / "data" / "images"
MODELS = REPO / "tests" / "data" / "models"

# Real photos (RGB PNG, JPEG, grayscale PNG, ...), all in tests/data/images.
PHOTOS = ["chelsea.png", "rocket.jpg", "china.jpg", "camera.png", "flower.jpg", "coins.png"]
LABELS = ["rocket", "cameraman", "palace", "a tabby cat", "flower", "coins"]
# Raw logit scales: random initialisation (ln(1/0.07), as the fixtures) and released models (ln 100).
LOGIT_SCALES = [float(np.float32(np.log(1 / 0.07))), float(np.float32(np.log(100.0)))]


def f32(a: Any) -> Any:
    """Nested lists of Python floats, exactly the float32 values."""
    return np.asarray(a, dtype=np.float32).astype(np.float64).tolist()


def notebook_weights(prompt_embeds: torch.Tensor) -> torch.Tensor:
    """[C, T, D] raw text embeddings -> [C, D] class embeddings, the notebook's loop verbatim."""
    weights = []
    for class_embeddings in prompt_embeds:
        class_embeddings = class_embeddings / class_embeddings.norm(dim=-1, keepdim=True)
        class_embedding = class_embeddings.mean(dim=0)
        class_embedding = class_embedding / class_embedding.norm()
        weights.append(class_embedding)
    return torch.stack(weights, dim=0)


def ensemble_math() -> dict[str, Any]:
    rng = np.random.default_rng(20261127)
    c, t, d, n = 5, 7, 16, 4
    # Rows of very different norms, so a forgotten per-prompt normalisation shows.
    prompt = (rng.standard_normal((c, t, d)) * rng.uniform(0.1, 10.0, (c, t, 1))).astype(np.float32)
    image = (rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, (n, 1))).astype(np.float32)
    cases = []
    with torch.no_grad():
        w = notebook_weights(torch.from_numpy(prompt))
        img = torch.from_numpy(image)
        img = img / img.norm(dim=-1, keepdim=True)
        for raw in LOGIT_SCALES:
            scale = torch.tensor(raw, dtype=torch.float32).exp()
            logits = scale * img @ w.T
            probs = logits.softmax(dim=-1)
            top = probs.topk(3, dim=-1)
            # NumPy float64 cross-check of the same math.
            p64 = prompt.astype(np.float64)
            p64 = p64 / np.linalg.norm(p64, axis=-1, keepdims=True)
            w64 = p64.mean(axis=1)
            w64 = w64 / np.linalg.norm(w64, axis=-1, keepdims=True)
            i64 = image.astype(np.float64) / np.linalg.norm(image.astype(np.float64), axis=-1, keepdims=True)
            l64 = np.exp(np.float64(np.float32(raw))) * i64 @ w64.T
            e64 = np.exp(l64 - l64.max(axis=-1, keepdims=True))
            pr64 = e64 / e64.sum(axis=-1, keepdims=True)
            assert np.abs(pr64 - probs.numpy()).max() < 1e-5, "torch and numpy disagree"
            cases.append({"logit_scale": raw, "label_embeddings": f32(w.numpy()), "logits": f32(logits.numpy()),
                          "probs": f32(probs.numpy()), "top3_indices": top.indices.tolist(),
                          "numpy_float64_probs": pr64.tolist()})
    return {"generator": "tools/gen_zero_shot_goldens.py", "torch": torch.__version__.split("+")[0],
            "numpy": np.__version__, "shape": {"labels": c, "templates": t, "dim": d, "images": n},
            "prompt_embeds": f32(prompt), "image_embeds": f32(image), "cases": cases}


def tiny_vit_classify() -> dict[str, Any]:
    from PIL import Image

    clip = E._import_clip()
    manifest = json.loads((MODELS / "MANIFEST.json").read_text())["tiny-vit"]
    hp = dict(manifest["hyperparameters"])
    if hp != F.TINY["tiny-vit"]["hp"] or manifest["seed"] != F.TINY["tiny-vit"]["seed"]:
        raise SystemExit("MANIFEST.json and tools/make_fixtures.py disagree on tiny-vit")
    model = E.build_clip(hp, manifest["seed"])
    fixture = MODELS / "tiny-vit"
    with torch.no_grad():
        pix = torch.from_numpy(np.load(fixture / "inputs" / "pixel_values.npy"))
        got = model.encode_image(pix).numpy()
    want = np.load(fixture / "golden" / "image_embeds.npy")
    diff = float(np.abs(got - want).max())
    if diff > 1e-6:
        raise SystemExit(f"rebuilt tiny-vit does not reproduce golden/image_embeds.npy (max diff {diff})")
    print(f"rebuilt tiny-vit reproduces golden/image_embeds.npy (max abs diff {diff:.3g})")

    preprocess = clip.clip._transform(hp["image_resolution"])
    templates = (REPO / "clip-core" / "data" / "imagenet_templates.txt").read_text().splitlines()
    assert len(templates) == 80
    with torch.no_grad():
        images = torch.stack([preprocess(Image.open(IMAGES / p)) for p in PHOTOS])
        logits_per_image, _ = model(images, clip.tokenize(LABELS))
        probs_none = logits_per_image.softmax(dim=-1)
        prompt = torch.stack([model.encode_text(clip.tokenize([t.format(label) for t in templates]))
                              for label in LABELS])
        w = notebook_weights(prompt)
        feats = model.encode_image(images)
        feats = feats / feats.norm(dim=-1, keepdim=True)
        probs_imagenet = (model.logit_scale.exp() * feats @ w.T).softmax(dim=-1)

    def margin(p: torch.Tensor) -> list[float]:
        s = p.sort(dim=-1, descending=True).values
        return (s[:, 0] - s[:, 1]).tolist()

    return {"generator": "tools/gen_zero_shot_goldens.py", "model": "tests/data/models/tiny-vit",
            "seed": manifest["seed"], "logit_scale": float(model.logit_scale.item()),
            "photos": PHOTOS, "labels": LABELS,
            "probs_none": f32(probs_none.numpy()), "top1_margin_none": margin(probs_none),
            "probs_imagenet": f32(probs_imagenet.numpy()), "top1_margin_imagenet": margin(probs_imagenet)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "zero_shot")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    for name, data in (("ensemble_math.json", ensemble_math()), ("tiny_vit_classify.json", tiny_vit_classify())):
        (a.out / name).write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {a.out / name}")
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.exit(main())
