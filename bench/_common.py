"""What the benchmarks share: the best of repeated timings, and how a result file is written."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int = 2,
            clock: Callable[[], float] = time.process_time) -> tuple[float, Any]:
    """The least time ``fn`` took over ``repeat`` calls by ``clock`` (CPU seconds of this
    process by default: on a shared machine wall time measures the neighbours), and its result.

    The previous call's result is dropped before each call: a plan's million objects would
    otherwise be rescanned by the cyclic collector during the next one, a cost a daemon (one
    plan at a time) never has.
    """
    best, out = float("inf"), None
    for _ in range(repeat):
        out = None
        start = clock()
        out = fn()
        best = min(best, clock() - start)
    return best, out


def save_result(path: Path, result: dict) -> None:
    """``result`` as indented JSON at ``path`` (bench/results/...), its folder made if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
