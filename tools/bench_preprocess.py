#!/usr/bin/env python3
"""Time CLIP's reference preprocessing against `clip preprocess` on the same files.

    /work/venv/bin/python tools/bench_preprocess.py [--clip target/release/clip] [--copies 4] [--runs 5] [FILES...]

* reference: `preprocess(Image.open(f))` for every file, in this (already started)
  Python process, torch limited to 1 thread; Python start-up is excluded;
* clip-rs: the whole `clip preprocess --threads 1 --out TMP FILES...` process
  (start-up, reading, decoding, writing the .npy files included), then with more
  threads;
* Pillow's decoding alone (`Image.open(f).load()`), the same libjpeg-turbo work that
  exact preprocessing has to do: a floor for both sides.

Prints the median of `--runs` runs of each, per-image times and the ratio. The
outputs of the first clip-rs run are also compared with the reference tensors
bit for bit. Default files: the JPEG photos of tests/data/images, `--copies`
times each (copied under distinct names).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def default_clip() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "clip"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=default_clip())
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("files", nargs="*", type=Path)
    args = ap.parse_args()

    import torch
    import PIL
    from PIL import Image
    from clip.clip import _transform

    torch.set_num_threads(1)
    preprocess = _transform(args.size)

    srcs = args.files or sorted(p for p in (ROOT / "tests/data/images").glob("*.jpg") if not p.name.startswith("png_"))
    work = Path(tempfile.mkdtemp(prefix="clip-bench-"))
    try:
        inputs = work / "in"
        inputs.mkdir()
        files = []
        for k in range(args.copies):
            for p in srcs:
                dst = inputs / f"{k}_{p.name}"
                shutil.copy(p, dst)
                files.append(dst)

        cpu = {"ref": [], "clip": []}

        def run_reference() -> float:
            c, t = time.process_time(), time.perf_counter()
            for f in files:
                preprocess(Image.open(f))
            cpu["ref"].append(time.process_time() - c)
            return time.perf_counter() - t

        def run_decode_only() -> float:
            # Pillow's JPEG decoding alone (libjpeg-turbo, as in `clip preprocess`): the part
            # of the reference's loop that exact preprocessing cannot skip.
            t = time.perf_counter()
            for f in files:
                with Image.open(f) as im:
                    im.load()
            return time.perf_counter() - t

        def child_cpu() -> float:
            r = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r.ru_utime + r.ru_stime

        def run_clip(threads: int, out: Path) -> float:
            cmd = [str(args.clip), "preprocess", "--out", str(out), "--size", str(args.size), "--threads", str(threads)]
            c, t = child_cpu(), time.perf_counter()
            subprocess.run(cmd + [str(f) for f in files], check=True)
            if threads == 1:
                cpu["clip"].append(child_cpu() - c)
            return time.perf_counter() - t

        # Warm-up (page cache, lazy imports) and the exactness check.
        run_reference()
        out = work / "out"
        run_clip(1, out)
        mismatches = 0
        for f in files:
            ref = preprocess(Image.open(f)).numpy()
            got = np.load(out / f"{f.name}.npy")
            if got.dtype != np.float32 or got.shape != ref.shape or got.tobytes() != ref.astype("<f4").tobytes():
                mismatches += 1
                print(f"MISMATCH: {f.name}", file=sys.stderr)

        cpu["ref"].clear()
        cpu["clip"].clear()
        ref_times, rs_times, decode_times = [], [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            ref_times.append(run_reference())
            rs_times.append(run_clip(1, work / "out1"))
            decode_times.append(run_decode_only())
        thread_times = {}
        for threads in sorted({2, os.cpu_count() or 1}):
            thread_times[threads] = statistics.median(run_clip(threads, work / f"out{threads}") for _ in range(args.runs))

        n = len(files)
        ref_med, rs_med = statistics.median(ref_times), statistics.median(rs_times)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; Pillow {PIL.__version__}, torch {torch.__version__}")
        print(f"{n} files ({len(srcs)} distinct x {args.copies}), size {args.size}, median of {args.runs} runs")
        print(f"reference preprocess(Image.open(f)) loop : {ref_med * 1e3:9.1f} ms  ({ref_med / n * 1e3:.2f} ms/image)")
        dec_med = statistics.median(decode_times)
        print(f"  of which Pillow's decoding alone         : {dec_med * 1e3:9.1f} ms  ({dec_med / n * 1e3:.2f} ms/image; Image.open + load)")
        print(f"clip preprocess --threads 1 (process)     : {rs_med * 1e3:9.1f} ms  ({rs_med / n * 1e3:.2f} ms/image)")
        for threads, t in thread_times.items():
            print(f"clip preprocess --threads {threads} (process)     : {t * 1e3:9.1f} ms  ({t / n * 1e3:.2f} ms/image)")
        print(f"speed-up, 1 thread, wall time: {ref_med / rs_med:.2f}x")
        ref_cpu, rs_cpu = statistics.median(cpu["ref"]), statistics.median(cpu["clip"])
        print(f"CPU time (user+sys), 1 thread: reference {ref_cpu / n * 1e3:.2f} ms/image, clip {rs_cpu / n * 1e3:.2f} ms/image: {ref_cpu / rs_cpu:.2f}x")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} (wall-time ratios are only meaningful on an idle machine)")
        print(f"bit-identical outputs: {n - mismatches}/{n}")
        if mismatches:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
