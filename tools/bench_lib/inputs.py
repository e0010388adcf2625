"""The benchmark's inputs, all derived from files committed in the repository.

* real photos: the photographs in tests/data/images (scikit-image / scikit-learn samples);
* small photos: those photos plus seeded variants (crops, mirror images, re-encodings), at
  their own small sizes, written to a scratch folder;
* camera photos: >= 12 MP JPEGs (4032 x 3024, the 12 MP phone-camera size) upscaled from
  seeded crops of the real photos with Pillow, quality 90, 4:2:0, written to a scratch
  folder (never into the repository);
* texts: short prompts (CLIP's zero-shot templates with class names), single lines and
  whole multi-line passages from the tokenizer corpus (tests/data/tokenizer/corpus.bin.gz:
  fortune cookies in many languages), joined to one line each.
"""
from __future__ import annotations

import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, "tests", "data", "images")
REAL_PHOTOS = [
    "chelsea.png", "rocket.jpg", "camera.png", "china.jpg",
    "flower.jpg", "coins.png", "horse.png", "retina.jpg",
]
CAMERA_SIZE = (4032, 3024)  # 12.19 MP

PROMPT_TEMPLATES = [
    "a photo of a {}.", "a bad photo of the {}.", "itap of a {}.", "a close-up photo of a {}.",
    "a bright photo of the {}.", "a sculpture of a {}.", "art of the {}.", "a drawing of a {}.",
]
CLASSES = [
    "tabby cat", "space shuttle", "golden retriever", "daisy", "coffee mug", "horse cart",
    "lighthouse", "pizza", "school bus", "mountain bike", "goldfish", "red fox",
    "espresso", "volcano", "umbrella", "grand piano",
]


def real_photo_paths() -> list[str]:
    return [os.path.join(IMAGES, name) for name in REAL_PHOTOS]


def small_photos(folder: str, count: int) -> list[str]:
    """The real photos, then seeded variants of them, `count` files in all."""
    from PIL import Image, ImageOps

    os.makedirs(folder, exist_ok=True)
    rng = random.Random(1234)
    paths = []
    for i in range(count):
        src = REAL_PHOTOS[i % len(REAL_PHOTOS)]
        if i < len(REAL_PHOTOS):
            paths.append(os.path.join(IMAGES, src))
            continue
        out = os.path.join(folder, f"small_{i:04d}.jpg")
        params = (rng.uniform(0.6, 0.95), rng.random(), rng.random(), rng.random() < 0.5,
                  rng.choice([75, 85, 95]))
        if not os.path.exists(out):
            im = Image.open(os.path.join(IMAGES, src)).convert("RGB")
            frac, fx, fy, mirror, quality = params
            w, h = im.size
            cw, ch = int(w * frac), int(h * frac)
            x, y = int((w - cw) * fx), int((h - ch) * fy)
            im = im.crop((x, y, x + cw, y + ch))
            if mirror:
                im = ImageOps.mirror(im)
            im.save(out + ".tmp", "JPEG", quality=quality)
            os.replace(out + ".tmp", out)
        paths.append(out)
    return paths


def camera_photos(folder: str, count: int, log=print) -> list[str]:
    """`count` distinct 4032 x 3024 JPEGs (made once, then reused)."""
    from PIL import Image, ImageOps

    os.makedirs(folder, exist_ok=True)
    rng = random.Random(4321)
    paths = []
    made = 0
    for i in range(count):
        src = REAL_PHOTOS[i % len(REAL_PHOTOS)]
        frac, fx, fy, mirror = rng.uniform(0.7, 1.0), rng.random(), rng.random(), rng.random() < 0.5
        out = os.path.join(folder, f"camera_{i:04d}.jpg")
        paths.append(out)
        if os.path.exists(out):
            continue
        im = Image.open(os.path.join(IMAGES, src)).convert("RGB")
        w, h = im.size
        # Crop to 4:3 (landscape) before the upscale so every file is exactly 4032 x 3024.
        cw = int(min(w, h * 4 / 3) * frac)
        ch = int(cw * 3 / 4)
        x, y = int((w - cw) * fx), int((h - ch) * fy)
        im = im.crop((x, y, x + cw, y + ch)).resize(CAMERA_SIZE, Image.Resampling.BICUBIC)
        if mirror:
            im = ImageOps.mirror(im)
        im.save(out + ".tmp", "JPEG", quality=90, subsampling=2)
        os.replace(out + ".tmp", out)
        made += 1
        if made % 25 == 0:
            log(f"  made {made} camera photos")
    return paths


def mixed_texts(n_prompts: int = 16, n_lines: int = 8, n_passages: int = 8) -> list[tuple[str, str]]:
    """(kind, text) pairs: short prompts, single corpus lines, whole corpus passages."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from gen_tokenizer_goldens import read_texts

    rng = random.Random(77)
    out = []
    for i in range(n_prompts):
        out.append(("prompt", PROMPT_TEMPLATES[i % len(PROMPT_TEMPLATES)].format(CLASSES[i % len(CLASSES)])))
    texts, kinds = read_texts(os.path.join(ROOT, "tests", "data", "tokenizer", "corpus.bin.gz"))
    order = list(range(len(texts)))
    rng.shuffle(order)
    lines = [texts[i] for i in order if kinds[i] == "fortune-line" and 60 <= len(texts[i]) <= 200]
    passages = [texts[i] for i in order if kinds[i] == "fortune" and 300 <= len(texts[i]) <= 1500]
    out += [("line", " ".join(t.split())) for t in lines[:n_lines]]
    out += [("passage", " ".join(t.split())) for t in passages[:n_passages]]
    # Interleave kinds so that any prefix (and any batch) is a mix.
    rng.shuffle(out)
    return out
