"""Helpers of tools/bench_vs_pytorch.py: inputs (photos, texts), machine facts, timing."""
