"""How long the live planner takes to learn each SKU's spread from its own closed windows.

An org of 20,000 and one of 100,000 SKUs, each with 52 weekly runs already recorded (every SKU's
window over 21 days of lead time + review) and two years of daily history at 100 rows per SKU,
in a SQLite state store in a temporary folder: reading back the windows that have closed
(``forecast_windows.closed_windows``) and learning from them (``learn_spread``). CPU seconds of
this process, best of two; the machine's load is recorded beside them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench._common import best_of, save_result
from bench.machine import describe

RESULTS = Path(__file__).parent / "results" / "spread_learning.json"
TODAY = date(2026, 11, 26)
RUNS, ROWS_PER_SKU, SEED = 52, 100, 20261126


def org(skus: int, folder: Path) -> dict:
    from restock.forecast_windows import closed_windows, learn_spread
    from restock.store import open_store

    store = open_store(f"sqlite:///{folder / f'state-{skus}.sqlite'}")
    names = [f"S{i:06d}" for i in range(skus)]
    started = time.process_time()
    for run in range(RUNS):
        store.windows.record("bench", f"run-{run}", TODAY - timedelta(weeks=run + 1),
                             pd.DataFrame({"sku": names, "horizon_days": 21.0,
                                           "horizon_mean": 10.0, "horizon_sd": 3.0}))
    recording = (time.process_time() - started) / RUNS
    history, items = _history(names), pd.DataFrame({
        "sku": names, "lead_time_days": 14.0, "review_period_days": 7.0, "demand_rate": 0.5,
        "demand_sd": 0.8})
    start = TODAY - timedelta(days=730)
    read, windows = best_of(lambda: closed_windows(store.windows, "bench", TODAY, 7, start))
    learn, learnt = best_of(lambda: learn_spread(items, history, windows))
    store.close()
    return {"skus": skus, "history_rows": len(history), "windows": len(windows),
            "cpu_seconds_recording_one_run": round(recording, 3),
            "cpu_seconds_reading": round(read, 3), "cpu_seconds_learning": round(learn, 3),
            "skus_learnt": int((learnt["spread_windows"] > 0).sum())}


def _history(names: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    rows = len(names) * ROWS_PER_SKU
    days = np.datetime64(TODAY - timedelta(days=730)) + rng.integers(0, 730, rows)
    return pd.DataFrame({"sku": np.array(names)[rng.integers(0, len(names), rows)],
                         "date": days.astype("datetime64[ns]"),
                         "quantity": rng.integers(1, 5, rows).astype(float)})


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="restock-bench-") as folder:
        result = {"runs_recorded": RUNS, "history_rows_per_sku": ROWS_PER_SKU,
                  "store": "sqlite", "load_average_1min": os.getloadavg()[0],
                  "machine": describe(),
                  "orgs": [org(n, Path(folder)) for n in (20_000, 100_000)]}
    save_result(RESULTS, result)
    print(f"spread_learning: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
