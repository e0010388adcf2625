#!/usr/bin/env python3
"""ONNX Runtime session settings on the clip-rs ViT-B/32 towers, measured with the Python
onnxruntime (the same 1.32.0 library clip-rs loads), to back proposals for clip-ort.

    python tools/bench_lib/ort_experiments.py --model /work/models/vit-b-32 [--threads 2] \\
        [--reps 3] [--json out.json]

Per tower (image at batch 1 and 32, text at batch 1 and 32 on 77 tokens and on short
prompts), each variant against the baseline clip-ort uses today (ORT_ENABLE_ALL,
intra_op_num_threads = T, defaults otherwise, model given as bytes):

* session creation time: from the .onnx file, and from an optimized model saved once
  (`optimized_model_filepath`) and reloaded with graph optimizations off — the "optimized
  model cache";
* `session.intra_op.allow_spinning = 0` (workers block instead of spinning between runs);
* `enable_mem_pattern = False`;
* peak RSS (a fresh process each) of loading both towers or the image tower only, from the
  file's bytes or its path, with the CPU arena or weight prepacking off;
* `onnxruntime.transformers.optimizer` fusions (Attention / SkipLayerNorm / QuickGelu …)
  on the exported graph: the fused-node counts, the speed and the cosine against the
  unfused graph.

Variants run interleaved (round-robin over repetitions) so that load drifts hit all alike.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort


def session(path_or_bytes, threads, *, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, spinning=True,
            mem_pattern=True, save_to=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = level
    so.enable_mem_pattern = mem_pattern
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if save_to:
        so.optimized_model_filepath = save_to
    t = time.perf_counter()
    s = ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])
    return s, time.perf_counter() - t


def op_counts(path) -> dict:
    m = onnx.load(path, load_external_data=False)
    return dict(collections.Counter(n.op_type for n in m.graph.node).most_common())


def cos_min(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


RSS_CHILD = r"""
import json, resource, sys, time
import numpy as np, onnxruntime as ort
cfg = json.loads(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sessions = []
t = time.perf_counter()
for path in cfg["paths"]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = cfg["threads"]
    for k, v in cfg.get("config", {}).items():
        so.add_session_config_entry(k, v)
    if "arena" in cfg:
        so.enable_cpu_mem_arena = cfg["arena"]
    src = open(path, "rb").read() if cfg["bytes"] else path
    sessions.append(ort.InferenceSession(src, so, providers=["CPUExecutionProvider"]))
    del src
create = time.perf_counter() - t
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = np.random.default_rng(0).standard_normal((cfg["batch"], 3, 224, 224), dtype=np.float32)
sessions[0].run(None, {"pixel_values": x})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_kib": base, "after_load_kib": after_load, "peak_kib": peak, "create_s": create}))
"""


def rss_experiments(model, threads, batch):
    """Peak RSS (fresh process each) of loading the towers and one image batch, per setting."""
    import subprocess

    vis = os.path.join(model, "visual.onnx")
    txt = os.path.join(model, "textual.onnx")
    configs = {
        "both towers, from bytes (clip-ort today)": {"paths": [vis, txt], "bytes": True},
        "both towers, from path": {"paths": [vis, txt], "bytes": False},
        "image tower only, from bytes": {"paths": [vis], "bytes": True},
        "image tower only, from path": {"paths": [vis], "bytes": False},
        "image tower only, from path, no CPU arena": {"paths": [vis], "bytes": False, "arena": False},
        "image tower only, from path, prepacking off": {"paths": [vis], "bytes": False,
                                                         "config": {"session.disable_prepacking": "1"}},
    }
    out = {}
    for name, cfg in configs.items():
        cfg = dict(cfg, threads=threads, batch=batch)
        res = subprocess.run([sys.executable, "-c", RSS_CHILD, json.dumps(cfg)], capture_output=True, text=True)
        try:
            out[name] = json.loads(res.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            out[name] = {"error": res.stderr[-500:]}
        print(name, out[name], file=sys.stderr, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/work/models/vit-b-32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json")
    ap.add_argument("--skip-fusion", action="store_true")
    ap.add_argument("--rss-only", action="store_true", help="only the peak-RSS experiments")
    ap.add_argument("--skip-rss", action="store_true", help="no peak-RSS experiments")
    args = ap.parse_args()
    T = args.threads
    work = tempfile.mkdtemp(prefix="ort-exp-")
    rng = np.random.default_rng(0)
    results = {"threads": T, "onnxruntime": ort.__version__, "towers": {}}

    towers = {
        "image": (os.path.join(args.model, "visual.onnx"), "vit", 12, 768),
        "text": (os.path.join(args.model, "textual.onnx"), "clip", 8, 512),
    }
    prompt = np.zeros((1, 77), np.int32)
    prompt[0, :8] = [49406, 320, 1125, 539, 320, 2368, 269, 49407]  # "a photo of a cat ." shape
    long_row = np.concatenate([[49406], rng.integers(1000, 40000, 75), [49407]]).astype(np.int32)[None]
    if not args.skip_rss:
        results["rss"] = rss_experiments(args.model, T, args.batch)
    for name, (path, mtype, heads, hidden) in ([] if args.rss_only else towers.items()):
        print(f"== {name}: {path}", file=sys.stderr, flush=True)
        data = open(path, "rb").read()
        r = results["towers"][name] = {}
        # Session creation: from the file's bytes (as clip-ort does), and via a cached optimized model.
        opt_path = os.path.join(work, f"{name}.opt.onnx")
        base, t_create = session(data, T, save_to=opt_path)
        _, t_create2 = session(data, T)
        _, t_cached = session(opt_path, T, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        _, t_cached2 = session(opt_path, T, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        r["create_s"] = {"from_onnx": [t_create, t_create2], "from_optimized_cache": [t_cached, t_cached2]}
        r["ops_after_ort_all"] = op_counts(opt_path)
        variants = {
            "baseline": base,
            "no_spinning": session(data, T, spinning=False)[0],
            "no_mem_pattern": session(data, T, mem_pattern=False)[0],
            "optimized_cache": session(opt_path, T, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)[0],
        }
        if not args.skip_fusion:
            try:
                from onnxruntime.transformers import optimizer

                fused = optimizer.optimize_model(path, model_type=mtype, num_heads=heads, hidden_size=hidden,
                                                 opt_level=0, use_gpu=False)
                fpath = os.path.join(work, f"{name}.fused.onnx")
                fused.save_model_to_file(fpath)
                r["fused_ops"] = op_counts(fpath)
                r["fusion_stats"] = fused.get_fused_operator_statistics()
                variants["transformers_fused"] = session(fpath, T)[0]
            except Exception as e:  # noqa: BLE001 - report, keep measuring the rest
                r["fusion_error"] = repr(e)[:500]
        if name == "image":
            feeds = {f"batch1": {"pixel_values": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)},
                     f"batch{args.batch}": {"pixel_values": rng.standard_normal((args.batch, 3, 224, 224), dtype=np.float32)}}
        else:
            feeds = {"batch1_prompt_8tok": {"input_ids": prompt[:, :8].copy()},
                     "batch1_77tok": {"input_ids": long_row},
                     f"batch{args.batch}_77tok": {"input_ids": np.repeat(long_row, args.batch, 0)}}
        ins = {v: {i.name: i.type for i in s.get_inputs()} for v, s in variants.items()}
        r["times_ms"] = {}
        r["cosine_vs_baseline"] = {}
        for fname, feed in feeds.items():
            outs = {}
            for v, s in variants.items():
                f = {k: (val.astype(np.int64) if "int64" in ins[v].get(k, "") else val) for k, val in feed.items()}
                outs[v] = s.run(None, f)[0]  # warm-up, and the output for the cosine
            samples = collections.defaultdict(list)
            for _ in range(args.reps):
                for v, s in variants.items():
                    f = {k: (val.astype(np.int64) if "int64" in ins[v].get(k, "") else val) for k, val in feed.items()}
                    t = time.perf_counter()
                    s.run(None, f)
                    samples[v].append(time.perf_counter() - t)
                    time.sleep(0.1)
            r["times_ms"][fname] = {v: 1e3 * statistics.median(x) for v, x in samples.items()}
            r["cosine_vs_baseline"][fname] = {v: cos_min(outs["baseline"], o) for v, o in outs.items()}
            print(fname, json.dumps(r["times_ms"][fname]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
