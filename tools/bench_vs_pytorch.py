#!/usr/bin/env python3
"""clip-rs against OpenAI's PyTorch reference, side by side, in one run.

    export CARGO_TARGET_DIR=target            # or any; --bin-dir must point at its release/
    cargo build --release --bin clip --example bench_encode
    python tools/bench_vs_pytorch.py --model /work/models/vit-b-32 \\
        --int8 /work/models/vit-b-32-int8 [--threads 2] [--quick] \\
        [--json docs/performance.json] [--markdown docs/performance-table.md]

For the same inputs, each measurement alternates the reference and clip-rs (reference
first on even repetitions, clip-rs first on odd ones, a short pause between turns so that
neither side's idle-spinning threads steal the other's cores), repeats, and reports
medians and their ratio from this one run. Both sides use the same thread count:
`torch.set_num_threads(T)` and clip-rs `--threads T` / `with_intra_threads(T)`.

Reference: `clip.load(<state dict>.pt, device="cpu", jit=False)` (PyPI clip-anytorch, fp32),
`preprocess(Image.open(f))`, `clip.tokenize(texts, truncate=True)`, `encode_image`,
`encode_text`, under `torch.no_grad()`. clip-rs: the model exported from the same weights
(tools/export_onnx.py), timed in-process by `examples/bench_encode.rs` (model loaded once)
and as whole `clip` processes (start-up, ONNX Runtime session creation and file output
included) for the file -> embedding rows.

Rows: preprocess per image; tokenize per text; image / text encode at batch 1 and 32;
file -> embedding at batch 1 (photos; mixed texts); folder throughput at batch 32 (small
photos; >= 12 MP camera JPEGs made with Pillow into --scratch); peak RSS of the camera job;
cold start (process start -> first embedding); fp32 GFLOP/s of the image tower against the
measured fp32 matmul peak; int8 image batch 32. Each row gives the fidelity of clip-rs's
output against the reference (bit-exact tensors / ids, or the minimum embedding cosine).

Markdown goes to stdout (and --markdown), everything else to --json.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from bench_lib import inputs, machine  # noqa: E402

FLOPS_PER_IMAGE = 8.82e9  # ViT-B/32 image tower, 2 flops per multiply-add (REFERENCE.md 3)

# (width, layers, patch, input side) of the OpenAI ViT image towers.
VIT_TOWERS = {
    "ViT-B/32": (768, 12, 32, 224),
    "ViT-B/16": (768, 12, 16, 224),
    "ViT-L/14": (1024, 24, 14, 224),
    "ViT-L/14@336px": (1024, 24, 14, 336),
}


def image_tower_flops(arch: str, pooled_last_block: bool = False) -> float | None:
    """fp32 FLOPs (2 per multiply-add) of one image through a ViT image tower: patch
    embedding, per layer the QKV / output projections, the 4x MLP and the two attention
    products, and the final projection (LayerNorms, softmax and GELU are left out, <1 %).
    None for the ResNets (not counted here). ViT-B/32 gives REFERENCE.md's 8.82 GFLOP.

    With ``pooled_last_block`` (an export whose config says so: tools/export_onnx.py), the
    last block computes its query, attention, output projection and MLP for the class token
    only, which is what that model executes (ViT-B/32: 8.23 GFLOP)."""
    if arch not in VIT_TOWERS:
        return None
    width, layers, patch, side = VIT_TOWERS[arch]
    patches = (side // patch) ** 2
    tokens = patches + 1
    macs = patches * 3 * patch * patch * width  # conv1 as a matmul
    macs += layers * (tokens * width * 12 * width + 2 * tokens * tokens * width)
    macs += width * (512 if width == 768 else 768)  # proj (embed dim 512 for B, 768 for L)
    if pooled_last_block:  # every row but the class token: only its keys and values
        macs -= (tokens - 1) * (10 * width * width + 2 * tokens * width)
    return 2.0 * macs


assert abs(image_tower_flops("ViT-B/32") - FLOPS_PER_IMAGE) / FLOPS_PER_IMAGE < 0.005
assert abs(image_tower_flops("ViT-B/32", pooled_last_block=True) - 8.23e9) < 0.005e9  # 49 rows x (10 w^2 + 2 t w) fewer
PAUSE_S = 0.2  # between turns: lets ONNX Runtime's / OpenMP's spinning workers go idle


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------------------
# The reference, in a child process: whole jobs whose peak RSS and start-up we measure.
# --------------------------------------------------------------------------------------

def ref_job(spec_path: str) -> None:
    """Runs one reference job described by a JSON file and writes its result beside it.

    `kind` "images": the straightforward batched loop
    `torch.stack([preprocess(Image.open(f)) for f in batch])` -> `encode_image`, in batches
    of `batch`. Times: from `t_spawn` (the parent's clock before it started this process) to
    the model being loaded and to the first embedding; the loop alone."""
    with open(spec_path) as f:
        spec = json.load(f)
    import numpy as np
    import torch
    import clip
    from PIL import Image

    torch.set_num_threads(spec["threads"])
    model, preprocess = clip.load(spec["ckpt"], device="cpu", jit=False)
    model.eval()
    t_loaded = time.time()
    paths, batch = spec["paths"], spec["batch"]
    outs, first = [], None
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(paths), batch):
            pixels = torch.stack([preprocess(Image.open(p)) for p in paths[i : i + batch]])
            outs.append(model.encode_image(pixels))
            if first is None:
                first = time.time()
    loop_s = time.perf_counter() - t0
    np.save(spec["out"], torch.cat(outs).float().numpy())
    with open(spec["result"], "w") as f:
        json.dump({
            "loop_s": loop_s,
            "load_s": t_loaded - spec["t_spawn"],
            "first_embedding_s": first - spec["t_spawn"],
        }, f)


def run_measured(argv, env, stdin_path=None, stdout_path=None, rss=False):
    """Runs a process; returns (wall seconds, peak RSS KiB or None, exit status).

    The peak RSS comes from `/usr/bin/time -f %M` (GNU time, itself a small process), not
    from this process's wait4: on Linux a child forked from this large Python process keeps
    the forked copy's high-water mark across exec, so its ru_maxrss would report our size."""
    rss_file = None
    if rss:
        rss_file = tempfile.NamedTemporaryFile(suffix=".rss", delete=False).name
        argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file, *argv]
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err = tempfile.TemporaryFile()
    try:
        t = time.perf_counter()
        p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=err)
        _, status, _ = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin_path:
            stdin.close()
        if stdout_path:
            stdout.close()
    if p.returncode != 0:
        err.seek(0)
        raise RuntimeError(f"{argv[0]} failed ({p.returncode}): {err.read().decode(errors='replace')[-2000:]}")
    peak = None
    if rss_file:
        with open(rss_file) as f:
            peak = int(f.read().split()[-1])
        os.unlink(rss_file)
    return wall, peak, p.returncode


# --------------------------------------------------------------------------------------
# clip-rs in-process: examples/bench_encode.rs over a pipe.
# --------------------------------------------------------------------------------------

class RustBench:
    def __init__(self, exe: str, env: dict):
        self.proc = subprocess.Popen([exe], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def __call__(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench_encode exited during {cmd.get('cmd')}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"bench_encode {cmd.get('cmd')}: {answer.get('error')}")
        return answer

    def close(self):
        try:
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - best effort at exit
            self.proc.kill()


# --------------------------------------------------------------------------------------
# Alternation.
# --------------------------------------------------------------------------------------

def alternate(name, ref_fn, rs_fn, reps, warmup=True):
    """Calls ref_fn and rs_fn alternately `reps` times (order swapped every repetition);
    each returns seconds per unit. Returns (ref samples, clip-rs samples)."""
    log(f"[{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}] {name} ({reps} reps)")
    if warmup:
        ref_fn()
        time.sleep(PAUSE_S)
        rs_fn()
        time.sleep(PAUSE_S)
    ref, rs = [], []
    for r in range(reps):
        pair = [(ref_fn, ref), (rs_fn, rs)]
        if r % 2:
            pair.reverse()
        for fn, out in pair:
            out.append(fn())
            time.sleep(PAUSE_S)
    return ref, rs


def floor6(x: float) -> str:
    """A lower bound printed with 6 decimals, rounded down (0.9999996 is not "≥ 1.000000")."""
    import math

    return f"{math.floor(x * 1e6) / 1e6:.6f}"


def cos_min(a, b):
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float((num / den).min())


# --------------------------------------------------------------------------------------
# The benchmark.
# --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/work/models/vit-b-32",
                    help="clip-rs model dir (visual.onnx, textual.onnx, clip_config.json) holding "
                         "or beside the reference state dict")
    ap.add_argument("--ckpt", help="reference state dict for clip.load (default: the *.pt in --model)")
    ap.add_argument("--int8", help="int8 export of the same weights (tools/export_onnx.py --int8)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin-dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release"),
                    help="folder holding clip and examples/bench_encode (default: $CARGO_TARGET_DIR/release)")
    ap.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "clip-rs-bench"),
                    help="where generated photos and outputs go (not the repository)")
    ap.add_argument("--quick", action="store_true", help="few repetitions and images (for testing the harness)")
    ap.add_argument("--reps", type=int, help="repetitions per row (default 5, --quick 2)")
    ap.add_argument("--camera", type=int, help="camera-size JPEGs (default 200, --quick 16)")
    ap.add_argument("--camera-reps", type=int, help="repetitions of the camera-folder job (default 3, --quick 1)")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--markdown", help="also write the markdown table here")
    ap.add_argument("--ref-job", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ref_job:
        ref_job(args.ref_job)
        return
    if not os.access("/usr/bin/time", os.X_OK):
        # Needed for the peak-RSS rows, ~10 minutes in: fail now, not then.
        sys.exit("/usr/bin/time (GNU time) is missing: apt-get install time")

    reps = args.reps or (2 if args.quick else 5)
    n_camera = args.camera or (16 if args.quick else 200)
    camera_reps = args.camera_reps or (1 if args.quick else 3)
    n_small = 16 if args.quick else 32
    n_folder = 32 if args.quick else 96
    folder_reps = 1 if args.quick else 3
    n_b1_images = 4 if args.quick else 8
    T = args.threads
    ckpt = args.ckpt or next((os.path.join(args.model, f) for f in sorted(os.listdir(args.model)) if f.endswith(".pt")), None)
    if not ckpt:
        sys.exit(f"no reference state dict (*.pt) in {args.model}: pass --ckpt")
    clip_exe = os.path.join(args.bin_dir, "clip")
    bench_exe = os.path.join(args.bin_dir, "examples", "bench_encode")
    for exe in (clip_exe, bench_exe):
        if not os.path.exists(exe):
            sys.exit(f"missing {exe}: cargo build --release --bin clip --example bench_encode")
    env = dict(os.environ)
    if "ORT_DYLIB_PATH" not in env:
        import onnxruntime

        capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
        libs = sorted(f for f in os.listdir(capi) if f.startswith("libonnxruntime.so"))
        env["ORT_DYLIB_PATH"] = os.path.join(capi, libs[-1])
    os.makedirs(args.scratch, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=args.scratch)
    # `clip --model-cache` keeps ONNX Runtime's optimised graphs in a cache directory (off by
    # default); a fresh one per run, for the cold-start row that measures it.
    model_cache = os.path.join(work, "model-cache")
    env["CLIP_RS_CACHE_DIR"] = model_cache

    import numpy as np
    import onnxruntime
    import PIL
    import torch
    import clip
    from PIL import Image

    started = datetime.datetime.now(datetime.timezone.utc)
    info = machine.cpu_info()
    info.update({
        "threads": T, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "pillow": PIL.__version__, "clip_anytorch": importlib.metadata.version("clip-anytorch"),
        "started_utc": started.isoformat(timespec="seconds"), "load_average_start": machine.load_average(),
        "mode": "quick" if args.quick else "full", "reps": reps,
        "model": args.model, "int8_model": args.int8, "ckpt": ckpt,
        "git_commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(),
        "clip_binary_mtime_utc": datetime.datetime.fromtimestamp(os.path.getmtime(clip_exe), datetime.timezone.utc)
        .isoformat(timespec="seconds"),
    })
    log(f"machine: {info}")

    # Inputs.
    photos = inputs.small_photos(os.path.join(args.scratch, "small"), n_small)
    texts = [t for _, t in inputs.mixed_texts(*((8, 4, 4) if args.quick else (16, 8, 8)))]
    log(f"making {n_camera} camera-size JPEGs in {args.scratch}/camera (once)")
    camera = inputs.camera_photos(os.path.join(args.scratch, "camera"), n_camera, log=log)
    texts_file = os.path.join(work, "texts.txt")
    with open(texts_file, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")

    # The reference.
    torch.set_num_threads(T)
    t = time.perf_counter()
    model, preprocess = clip.load(ckpt, device="cpu", jit=False)
    model.eval()
    log(f"reference loaded in {time.perf_counter() - t:.1f}s")

    # clip-rs in-process.
    rs = RustBench(bench_exe, env)
    loaded = rs(cmd="load", name="fp32", model=args.model, threads=T)
    info["clip_rs"] = loaded["describe"]
    if args.int8:
        rs(cmd="load", name="int8", model=args.int8, threads=T)

    rows = []
    results = {"machine": info, "rows": rows}

    def row(key, label, unit, ref_s, rs_s, *, target=None, kind="speedup", fidelity="", scale=1.0, extra=None):
        ref_m, rs_m = median(ref_s), median(rs_s)
        r = {"key": key, "label": label, "unit": unit, "reference": ref_m * scale, "clip_rs": rs_m * scale,
             "reference_samples": ref_s, "clip_rs_samples": rs_s, "fidelity": fidelity, "target": target}
        if kind == "speedup":
            r["ratio"] = ref_m / rs_m
            r["ratio_text"] = f"{r['ratio']:.2f}× faster" if r["ratio"] >= 1 else f"{1 / r['ratio']:.2f}× slower"
            r["met"] = None if target is None else r["ratio"] >= target
            r["target_text"] = "" if target is None else f"≥ {target}×"
        else:  # "fraction": clip-rs / reference, lower is better
            r["ratio"] = rs_m / ref_m
            r["ratio_text"] = f"{r['ratio']:.2f}× of ref"
            r["met"] = None if target is None else r["ratio"] <= target
            r["target_text"] = "" if target is None else f"≤ {target}×"
        if extra:
            r.update(extra)
        rows.append(r)
        log(f"  -> ref {r['reference']:.4g} {unit}, clip-rs {r['clip_rs']:.4g} {unit}, {r['ratio_text']} {fidelity}")
        return r

    # 1. Preprocess per image (real + small photos; decode included on both sides).
    ref_pre = {}

    def ref_preprocess():
        t0 = time.perf_counter()
        for p in photos:
            ref_pre[p] = preprocess(Image.open(p))
        return (time.perf_counter() - t0) / len(photos)

    pre_npy = os.path.join(work, "pixels_rs.npy")

    def rs_preprocess():
        return sum(rs(cmd="preprocess", paths=photos, out=pre_npy)["times"]) / len(photos)

    a, b = alternate("preprocess per image", ref_preprocess, rs_preprocess, reps)
    pixels = torch.stack([ref_pre[p] for p in photos])
    pixels_np = pixels.numpy().astype(np.float32)
    rs_pixels = np.load(pre_npy)
    exact = bool(np.array_equal(pixels_np.view(np.uint32), rs_pixels.view(np.uint32)))
    row("preprocess", f"preprocess, per image ({len(photos)} photos, 1 thread each)", "ms", a, b, scale=1e3,
        fidelity="bit-exact" if exact else f"DIFFERS (max {np.abs(pixels_np - rs_pixels).max():.3g})")
    pixels_path = os.path.join(work, "pixels_ref.npy")
    np.save(pixels_path, pixels_np)

    # 2. Tokenize per text.
    def ref_tokenize():
        t0 = time.perf_counter()
        for t_ in texts:
            clip.tokenize([t_], truncate=True)
        return (time.perf_counter() - t0) / len(texts)

    ids_rs_npy = os.path.join(work, "ids_rs.npy")

    def rs_tokenize():
        return sum(rs(cmd="tokenize", texts=texts, out=ids_rs_npy)["times"]) / len(texts)

    a, b = alternate("tokenize per text", ref_tokenize, rs_tokenize, reps)
    ids = clip.tokenize(texts, truncate=True)
    ids_np = ids.numpy().astype(np.int32)
    exact = bool(np.array_equal(ids_np, np.load(ids_rs_npy)))
    eot = ids_np.argmax(1)
    row("tokenize", f"tokenize, per text ({len(texts)} mixed texts, {int(eot.min()) + 1}–{int(eot.max()) + 1} tokens)",
        "µs", a, b, scale=1e6, fidelity="identical ids" if exact else "DIFFERENT ids")
    ids_path = os.path.join(work, "ids_ref.npy")
    np.save(ids_path, ids_np)

    # 3. Image encode, batch 1 and 32 (the same preprocessed tensors on both sides).
    with torch.no_grad():
        ref_img = model.encode_image(pixels).float().numpy()
    b32 = min(32, len(photos))
    px1 = os.path.join(work, "pixels_b1.npy")
    np.save(px1, pixels_np[:n_b1_images])

    def ref_img_b1():
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(n_b1_images):
                model.encode_image(pixels[i : i + 1])
        return (time.perf_counter() - t0) / n_b1_images

    out_b1 = os.path.join(work, "img_b1_rs.npy")

    def rs_img_b1():
        return sum(rs(cmd="encode_image", name="fp32", pixels=px1, batch=1, out=out_b1)["times"]) / n_b1_images

    a, b = alternate("image encode batch 1", ref_img_b1, rs_img_b1, reps)
    row("image_b1", "image encode, batch 1 (per image)", "ms", a, b, scale=1e3,
        fidelity=f"cos ≥ {floor6(cos_min(ref_img[:n_b1_images], np.load(out_b1)))}")

    pxb = os.path.join(work, "pixels_b32.npy")
    np.save(pxb, pixels_np[:b32])

    def ref_img_b32():
        t0 = time.perf_counter()
        with torch.no_grad():
            model.encode_image(pixels[:b32])
        return (time.perf_counter() - t0) / b32

    out_b32 = os.path.join(work, "img_b32_rs.npy")

    def rs_img_b32():
        return sum(rs(cmd="encode_image", name="fp32", pixels=pxb, batch=b32, out=out_b32)["times"]) / b32

    a, b = alternate(f"image encode batch {b32}", ref_img_b32, rs_img_b32, reps)
    rs_img32 = np.load(out_b32)
    img32 = row("image_b32", f"image encode, batch {b32} (per image)", "ms", a, b, scale=1e3, target=1.0,
                fidelity=f"cos ≥ {floor6(cos_min(ref_img[:b32], rs_img32))}")

    # 4. Text encode, batch 1 and 32 (mixed texts; clip-rs trims each batch after its last EOT).
    with torch.no_grad():
        ref_txt = model.encode_text(ids).float().numpy()

    def ref_txt_b1():
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(len(texts)):
                model.encode_text(ids[i : i + 1])
        return (time.perf_counter() - t0) / len(texts)

    out_t1 = os.path.join(work, "txt_b1_rs.npy")

    def rs_txt_b1():
        return sum(rs(cmd="encode_text", name="fp32", tokens=ids_path, batch=1, out=out_t1)["times"]) / len(texts)

    a, b = alternate("text encode batch 1", ref_txt_b1, rs_txt_b1, reps)
    row("text_b1", f"text encode, batch 1 (per text, {len(texts)} mixed texts)", "ms", a, b, scale=1e3,
        fidelity=f"cos ≥ {floor6(cos_min(ref_txt, np.load(out_t1)))}")

    tb = min(32, len(texts))

    def ref_txt_b32():
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(texts), tb):
                model.encode_text(ids[i : i + tb])
        return (time.perf_counter() - t0) / len(texts)

    out_t32 = os.path.join(work, "txt_b32_rs.npy")

    def rs_txt_b32():
        return sum(rs(cmd="encode_text", name="fp32", tokens=ids_path, batch=tb, out=out_t32)["times"]) / len(texts)

    a, b = alternate(f"text encode batch {tb}", ref_txt_b32, rs_txt_b32, reps)
    row("text_b32", f"text encode, batch {tb} (per text, mixed: widest row {int(eot.max()) + 1} tokens)", "ms",
        a, b, scale=1e3, target=2.0, fidelity=f"cos ≥ {floor6(cos_min(ref_txt, np.load(out_t32)))}")

    out_tbk = os.path.join(work, "txt_b32_bucket_rs.npy")

    def rs_txt_bucket():
        return sum(rs(cmd="encode_text", name="fp32", tokens=ids_path, batch=tb, bucket=True, out=out_tbk)["times"]) / len(texts)

    a, b = alternate(f"text encode batch {tb}, length-bucketed", ref_txt_b32, rs_txt_bucket, reps)
    row("text_b32_bucketed", f"text encode, same {len(texts)} texts, batch size {tb} through the library "
        f"(`Clip::encode_tokens`: rows grouped by length into ≤ {tb}-row runs)", "ms", a, b, scale=1e3, target=2.0,
        fidelity=f"cos ≥ {floor6(cos_min(ref_txt, np.load(out_tbk)))}")

    # 5. File -> embedding at batch 1: the reference's per-file loop alone vs the whole
    #    `clip` process (start-up, session creation for both towers, .npy output).
    def ref_files_b1():
        t0 = time.perf_counter()
        with torch.no_grad():
            for p in photos:
                model.encode_image(preprocess(Image.open(p)).unsqueeze(0))
        return (time.perf_counter() - t0) / len(photos)

    out_f1 = os.path.join(work, "files_b1_rs.npy")
    base = ["--model", args.model, "--threads", str(T), "--quiet"]

    def rs_files_b1():
        wall, _, _ = run_measured([clip_exe, "embed-image", *base, "--batch-size", "1", "--out", out_f1, *photos], env)
        return wall / len(photos)

    a, b = alternate("file -> embedding, images, batch 1", ref_files_b1, rs_files_b1, reps)
    row("files_b1", f"photo file → embedding, batch 1 (per image, {len(photos)} photos; clip-rs whole process)",
        "ms", a, b, scale=1e3, target=1.8, fidelity=f"cos ≥ {floor6(cos_min(ref_img, np.load(out_f1)))}")

    def ref_texts_b1():
        t0 = time.perf_counter()
        with torch.no_grad():
            for t_ in texts:
                model.encode_text(clip.tokenize([t_], truncate=True))
        return (time.perf_counter() - t0) / len(texts)

    out_te = os.path.join(work, "embed_text_rs.npy")

    def rs_embed_text():
        return sum(rs(cmd="embed_text", name="fp32", texts=texts, out=out_te)["times"]) / len(texts)

    a, b = alternate("text -> embedding, batch 1, in-process", ref_texts_b1, rs_embed_text, reps)
    row("embed_text_b1", f"text → embedding, batch 1 (per text: tokenize + encode, {len(texts)} mixed texts; model loaded)",
        "ms", a, b, scale=1e3, target=2.5, fidelity=f"cos ≥ {floor6(cos_min(ref_txt, np.load(out_te)))}")

    out_tf = os.path.join(work, "texts_b1_rs.npy")

    def rs_texts_b1():
        wall, _, _ = run_measured([clip_exe, "embed-text", *base, "--truncate", "--batch-size", "1", "--out", out_tf],
                                  env, stdin_path=texts_file)
        return wall / len(texts)

    a, b = alternate("text -> embedding, batch 1", ref_texts_b1, rs_texts_b1, reps)
    row("texts_b1", f"text → embedding, batch 1 (per text, {len(texts)} mixed texts; clip-rs whole process incl. start-up and text tower)",
        "ms", a, b, scale=1e3, fidelity=f"cos ≥ {floor6(cos_min(ref_txt, np.load(out_tf)))}")

    # 6. Folder throughput at batch 32: small photos (in-process reference loop).
    folder = inputs.small_photos(os.path.join(args.scratch, "small"), n_folder)
    with torch.no_grad():
        ref_folder_img = model.encode_image(torch.stack([preprocess(Image.open(p)) for p in folder])).float().numpy()

    def ref_folder_small():
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(folder), 32):
                model.encode_image(torch.stack([preprocess(Image.open(p)) for p in folder[i : i + 32]]))
        return (time.perf_counter() - t0) / len(folder)

    out_fs = os.path.join(work, "folder_small_rs.npy")

    def rs_folder_small():
        wall, _, _ = run_measured([clip_exe, "embed-image", *base, "--batch-size", "32", "--out", out_fs, *folder], env)
        return wall / len(folder)

    a, b = alternate("folder of small photos, batch 32", ref_folder_small, rs_folder_small, folder_reps, warmup=False)
    row("folder_small", f"small photos → embeddings, batch 32 ({len(folder)} photos; ref: its loop; clip-rs: whole process)",
        "ms/image", a, b, scale=1e3, fidelity=f"cos ≥ {floor6(cos_min(ref_folder_img, np.load(out_fs)))}")

    # 7. Camera photos: the reference job in its own process (for its peak RSS); its loop alone
    #    against the whole clip process.
    ref_jobs, rs_rss = [], []
    out_cam_ref = os.path.join(work, "camera_ref.npy")
    out_cam_rs = os.path.join(work, "camera_rs.npy")

    def ref_camera():
        spec = os.path.join(work, "camera_job.json")
        result = os.path.join(work, "camera_result.json")
        with open(spec, "w") as f:
            json.dump({"ckpt": ckpt, "threads": T, "paths": camera, "batch": 32, "out": out_cam_ref,
                       "result": result, "t_spawn": time.time()}, f)
        _, rss, _ = run_measured([sys.executable, os.path.abspath(__file__), "--ref-job", spec], env, rss=True)
        with open(result) as f:
            r = json.load(f)
        r["maxrss_kib"] = rss
        ref_jobs.append(r)
        return r["loop_s"] / len(camera)

    def rs_camera():
        wall, rss, _ = run_measured([clip_exe, "embed-image", *base, "--batch-size", "32", "--out", out_cam_rs, *camera], env,
                                    rss=True)
        rs_rss.append(rss)
        return wall / len(camera)

    a, b = alternate(f"folder of {len(camera)} camera JPEGs, batch 32", ref_camera, rs_camera, camera_reps, warmup=False)
    row("folder_camera", f"{len(camera)} camera JPEGs (4032×3024) → embeddings, batch 32 (ref: its loop; clip-rs: whole process)",
        "ms/image", a, b, scale=1e3, target=2.5,
        fidelity=f"cos ≥ {floor6(cos_min(np.load(out_cam_ref), np.load(out_cam_rs)))}")
    row("rss", f"peak RSS of that job ({len(camera)} camera JPEGs, batch 32)", "MiB",
        [j["maxrss_kib"] / 1024 for j in ref_jobs], [x / 1024 for x in rs_rss], kind="fraction", target=0.5)

    # 8. Cold start: process start -> first embedding of one photo.
    one = photos[0]
    out_cold = os.path.join(work, "cold_rs.npy")

    def ref_cold():
        spec = os.path.join(work, "cold_job.json")
        result = os.path.join(work, "cold_result.json")
        with open(spec, "w") as f:
            json.dump({"ckpt": ckpt, "threads": T, "paths": [one], "batch": 1, "out": os.path.join(work, "cold_ref.npy"),
                       "result": result, "t_spawn": time.time()}, f)
        run_measured([sys.executable, os.path.abspath(__file__), "--ref-job", spec], env)
        with open(result) as f:
            return json.load(f)["first_embedding_s"]

    def rs_cold():
        wall, _, _ = run_measured([clip_exe, "embed-image", *base, "--batch-size", "1", "--out", out_cold, one], env)
        return wall

    a, b = alternate("cold start", ref_cold, rs_cold, max(2, reps - 2), warmup=True)
    row("cold_start", "cold start: process start → first image embedding (clip-rs: until the process has exited)",
        "s", a, b, kind="fraction", target=0.5)

    def rs_cold_cached():
        wall, rss, _ = run_measured([clip_exe, "embed-image", *base, "--model-cache", "--batch-size", "1",
                                     "--out", out_cold, one], env, rss=True)
        cached_rss.append(rss)
        return wall

    cached_rss = []
    a, b = alternate("cold start, --model-cache (warm)", ref_cold, rs_cold_cached, max(2, reps - 2), warmup=True)
    row("cold_start_model_cache", "cold start with `--model-cache`, cache written by the warm-up run "
        f"(clip-rs peak RSS {median(cached_rss) / 1024:.0f} MiB)", "s", a, b, kind="fraction", target=0.5)

    # 9. GFLOP/s of the image tower at batch 32 against the measured fp32 matmul peak.
    with open(os.path.join(args.model, "clip_config.json")) as f:
        model_cfg = json.load(f)
    arch = model_cfg.get("architecture", "")
    pooled = bool(((model_cfg.get("exporter") or {}).get("pooled_last_block") or {}).get("visual"))
    flops = image_tower_flops(arch)
    flops_rs = image_tower_flops(arch, pooled_last_block=pooled)
    log("measuring the fp32 matmul peak")
    peak_torch = machine.torch_sgemm_gflops(T)
    peak_ort = machine.ort_sgemm_gflops(T)
    torch.set_num_threads(T)
    peak = max(p for p in (peak_torch, peak_ort) if p)
    results["peak"] = {"torch_mm_4096_gflops": peak_torch, "ort_matmul_4096_gflops": peak_ort, "peak_gflops": peak}
    if flops is None:
        log(f"no FLOP count for {arch or 'this architecture'}: GFLOP/s row left out")
    else:
        g_ref = flops / (img32["reference"] / 1e3) / 1e9
        g_rs = flops_rs / (img32["clip_rs"] / 1e3) / 1e9
        executed = (f"{flops / 1e9:.2f} GFLOP/image" if flops_rs == flops else
                    f"reference {flops / 1e9:.2f}, clip-rs {flops_rs / 1e9:.2f} GFLOP/image executed: last block "
                    f"at the class token only")
        rows.append({
            "key": "gflops",
            "label": f"image tower fp32 GFLOP/s at batch {b32} ({arch}: {executed}) vs measured "
                     f"fp32 matmul peak {peak:.0f} GFLOP/s (torch.mm {peak_torch:.0f}, ORT MatMul "
                     f"{peak_ort or float('nan'):.0f}; 4096², {T} threads)",
            "unit": "GFLOP/s", "reference": g_ref, "clip_rs": g_rs, "ratio": g_rs / peak,
            "ratio_text": f"clip-rs at {100 * g_rs / peak:.0f} % of peak (ref {100 * g_ref / peak:.0f} %)",
            "target": 0.8, "target_text": "≥ 80 % of peak", "met": g_rs / peak >= 0.8, "fidelity": "",
        })

    # 10. int8 image tower at batch 32.
    if args.int8:
        out_i8 = os.path.join(work, "img_b32_int8.npy")

        def rs_int8():
            return sum(rs(cmd="encode_image", name="int8", pixels=pxb, batch=b32, out=out_i8)["times"]) / b32

        a, b = alternate(f"int8 image encode batch {b32}", ref_img_b32, rs_int8, reps)
        i8 = np.load(out_i8)
        row("int8_b32", f"image encode int8 (dynamic quantization), batch {b32} (per image) vs reference fp32", "ms",
            a, b, scale=1e3, target=1.6,
            fidelity=f"cos vs clip-rs fp32 ≥ {cos_min(rs_img32, i8):.4f} (vs ref {cos_min(ref_img[:b32], i8):.4f})")

    rs.close()
    info["load_average_end"] = machine.load_average()
    info["finished_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    info["command"] = "python tools/bench_vs_pytorch.py " + " ".join(sys.argv[1:])

    md = markdown(results)
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)
            f.write("\n")


def fmt(x):
    if x is None or x != x:
        return "–"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def markdown(results) -> str:
    m = results["machine"]
    out = [
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, SIMD: {' '.join(m['simd_flags'])}; "
        f"kernel {m['kernel']}; load average {m['load_average_start']} at start, {m.get('load_average_end')} at end.",
        f"Threads: {m['threads']} for both. Reference: torch {m['torch']} + clip-anytorch, Pillow {m['pillow']}. "
        f"clip-rs: {m.get('clip_rs', '')}; onnxruntime {m['onnxruntime']}.",
        f"Run: {m['started_utc']} – {m.get('finished_utc')}, {m['mode']} mode, median of {m['reps']} alternating repetitions "
        f"(camera job: fewer, see JSON). Command: `{m.get('command', '')}`",
        "",
        "| measurement | unit | reference | clip-rs | clip-rs vs reference | target | met | fidelity |",
        "|---|---|---:|---:|---|---|---|---|",
    ]
    for r in results["rows"]:
        met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
        out.append(f"| {r['label']} | {r['unit']} | {fmt(r['reference'])} | {fmt(r['clip_rs'])} | {r['ratio_text']} | "
                   f"{r.get('target_text', '')} | {met} | {r['fidelity']} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
