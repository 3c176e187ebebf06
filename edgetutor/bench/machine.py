"""The machine a benchmark ran on, and its memory bandwidth.

Generating one token reads every weight of the model once, so on a small CPU the speed limit is
memory bandwidth divided by the model's size: `ceiling_tokens_per_s`. The bandwidth is measured
with numpy summing a buffer far larger than any CPU cache, split between as many threads as
llama.cpp gets: the same access pattern (parallel sequential reads) as a token's pass over the
weights. Other tools may report more (`sysbench memory` counts differently); the ceiling is a
guide to what a bigger model will do, not a promise.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Any

from ..patient.llm import physical_cores
from ..portable import physical_memory_bytes

BANDWIDTH_BUFFER_MB = 256  # well past the last-level cache of laptops, servers and the Pi
BANDWIDTH_REPEATS = 5


def cpu_name() -> str:
    """The CPU's (or board's) marketing name from /proc, else platform.processor(), else '?'."""
    with contextlib.suppress(OSError):  # no device tree: not a board such as the Pi
        model = Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode("utf-8", "replace")
        if model:
            return model  # e.g. "Raspberry Pi 5 Model B Rev 1.0": more telling than the core name
    with contextlib.suppress(OSError):  # no /proc (not Linux)
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Processor") and value.strip():
                return value.strip()
    return platform.processor() or "?"


def memory_total_mb() -> float | None:
    """Physical memory in MB, or None where the OS does not say."""
    total = physical_memory_bytes()
    return None if total is None else round(total / 1e6, 0)


def read_bandwidth_gbs(
    buffer_mb: int = BANDWIDTH_BUFFER_MB, repeats: int = BANDWIDTH_REPEATS
) -> float | None:
    """Sequential read bandwidth of main memory in GB/s (best of `repeats`, one thread).

    One thread, as numpy runs it: llama.cpp reads with every thread it has, so on machines whose
    single core cannot saturate the memory bus this is a lower bound. None if the buffer cannot
    be allocated (a board with very little memory).
    """
    import numpy as np

    try:
        buf = np.ones(buffer_mb * 1_000_000 // 8, dtype=np.float64)
    except MemoryError:
        return None
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        buf.sum()
        best = min(best, time.perf_counter() - start)
    return round(buf.nbytes / best / 1e9, 1) if best > 0 else None


def describe(threads: int, measure_bandwidth: bool = True) -> dict[str, Any]:
    """What the report says about the machine (`threads`: what llama.cpp was given)."""
    return {
        "system": platform.system(),
        "arch": platform.machine(),
        "cpu": cpu_name(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count() or 1,
        "threads": threads,
        "memory_total_mb": memory_total_mb(),
        "memory_read_gbs": read_bandwidth_gbs(threads) if measure_bandwidth else None,
        "python": platform.python_version(),
    }
