"""What machine a timing came from, and a fixed reference workload to relate machines by.

The same restock code planned 100,000 SKUs in 4.4 s of CPU on one machine and 8.6 s on
another, and forecast 26,015 or 10,177 series per second per core: a figure without its machine
says little. ``describe()`` records the CPU's name and the CPU seconds of two fixed workloads
(a pure-Python loop, like the plan's per-line work, and single-threaded numpy arithmetic, like
the forecasting), so a figure can be scaled to another machine by the ratio of these.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from bench._common import best_of

LOOP_STEPS = 10_000_000
ARRAY_SHAPE = (2_000, 2_000)
ARRAY_ROUNDS = 20


def describe() -> dict:
    """CPU name, core count, and the best of three CPU-second timings of each reference."""
    return {"cpu": _cpu_name(), "cores": os.cpu_count(),
            "python": platform.python_version(),
            "reference_python_loop_seconds": _best(_python_loop),
            "reference_numpy_seconds": _best(_numpy_work)}


def _best(work, repeats: int = 3) -> float:
    return round(best_of(work, repeats)[0], 3)


def _python_loop() -> int:
    total = 0
    for step in range(LOOP_STEPS):
        total += step
    return total


def _numpy_work() -> float:
    # Element-wise arithmetic and a cumulative sum over a 32 MB array: memory-bound work like
    # the forecasting's smoothing, and no BLAS, whose threads would blur a one-core figure.
    values = np.random.default_rng(1).random(ARRAY_SHAPE)
    out = 0.0
    for _ in range(ARRAY_ROUNDS):
        out += float(np.cumsum(values * 0.9 + 0.1, axis=1)[:, -1].sum())
    return out


def _cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
