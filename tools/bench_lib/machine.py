"""Machine facts and the measured fp32 matrix-multiply peak."""
from __future__ import annotations

import os
import platform
import statistics
import time


def cpu_info() -> dict:
    model, flags = "unknown", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    simd = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c")))
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "simd_flags": simd,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def torch_sgemm_gflops(threads: int, n: int = 4096, reps: int = 5) -> float:
    """Median GFLOP/s of an n x n fp32 `torch.mm` (2 n^3 flops) with `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def ort_sgemm_gflops(threads: int, n: int = 4096, reps: int = 5) -> float | None:
    """Median GFLOP/s of one fp32 MatMul node on ONNX Runtime (MLAS) with `threads` threads:
    the peak ONNX Runtime itself reaches on this CPU."""
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal((n, n), dtype=np.float32),
             "b": rng.standard_normal((n, n), dtype=np.float32)}
    sess.run(None, feeds)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9
