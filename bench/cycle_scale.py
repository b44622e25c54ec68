"""A whole run of one large org, as the daemon does it: pull, clean, forecast, plan, record.

The demo warehouse at 20,000 SKUs (two years of daily history, 7.7M rows in a gzipped CSV), read
by the files source, planned as a dry run into a SQLite state store, twice: the first run has
no earlier run to learn from, the second reads the first's models and windows. Each run is a
``restock run`` process of its own: wall and CPU seconds, its peak RSS, and the run's own step
timings (``stats.seconds`` of its summary). Generating the warehouse is not timed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import save_result
from bench.machine import describe

RESULTS = Path(__file__).parent / "results" / "cycle_scale.json"
SKUS, SEED = 20_000, 7

ORG = """org: bench
mode: dry_run
currency: EUR
source: {{connector: files, path: {warehouse}, as_of: history_end}}
order_sink: {{connector: files, path: {folder}/outbox}}
summary_sinks:
  - {{connector: files, path: {folder}/summaries}}
policy: {{service_level: 0.95, review_period_days: 7}}
forecast: {{freq: D, history_days: 730, statsmodels_seconds: 0}}
"""


def setup(folder: Path) -> tuple[Path, int]:
    from restock.demo import generate

    made = generate(folder / "warehouse", seed=SEED, skus=SKUS)
    config = folder / "config"
    (config / "orgs").mkdir(parents=True)
    (config / "orgs" / "bench.yaml").write_text(
        ORG.format(warehouse=folder / "warehouse", folder=folder))
    (config / "restock.yaml").write_text(f"state_url: sqlite:///{folder / 'state.sqlite'}\n")
    for path in (config / "orgs" / "bench.yaml", config / "restock.yaml"):
        path.chmod(0o640)
    return config, made.history_rows


def one_run(config: Path) -> dict:
    """``restock run`` in a child process: its wall, CPU and peak RSS, and its step timings."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "restock.cli", "run", "--org", "bench",
                           "--config", str(config), "--json"],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        return {"failed": done.stderr.strip().splitlines()[-1:]}
    summary = json.loads(done.stdout)
    return {"wall_seconds": round(wall, 2),
            "cpu_seconds": round(after.ru_utime + after.ru_stime
                                 - before.ru_utime - before.ru_stime, 2),
            "peak_rss_mib": round(after.ru_maxrss / 1024),   # the largest child so far
            "steps_seconds": summary["stats"]["seconds"],
            "held_lines": sum(len(order["lines"]) for order in summary["held"]),
            "status": summary["status"]}


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="restock-bench-") as name:
        config, rows = setup(Path(name))
        runs = [one_run(config), one_run(config)]
    result = {"skus": SKUS, "history_rows": rows, "machine": describe(),
              "load_average_1min": os.getloadavg()[0], "first_run": runs[0],
              "second_run": runs[1]}
    save_result(RESULTS, result)
    print(f"cycle_scale: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
