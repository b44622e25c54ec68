"""What a run's model catalog costs the state store: writing a row per SKU and reading the last
run's back (the planner does both every run), on SQLite and PostgreSQL.

For 20,000 and 100,000 SKUs: ``ModelCatalog.record`` (COPY on PostgreSQL) next to SQLAlchemy's
generic executemany insert of the same rows in the same run, then ``ModelCatalog.latest``.
Wall seconds, best of two, since on PostgreSQL much of the work is the server's; CPU seconds of
this process beside them. PostgreSQL is a private database made for the run on the server at
``RESTOCK_BENCH_PG`` (default: the local one), and left out, with the reason, when unreachable.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from bench._common import best_of, save_result
from bench.machine import describe

RESULTS = Path(__file__).parent / "results" / "run_store.json"
ADMIN_URL = os.environ.get("RESTOCK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SIZES = (20_000, 100_000)


def entries(n: int, run_id: str) -> list:
    from restock.store import CatalogEntry

    shared = [{"alpha": a} for a in (0.05, 0.1, 0.2, 0.3)] + [{}]   # as runs share them
    return [CatalogEntry(org="bench", run_id=run_id, sku=f"SKU-{i:06d}", model="SES",
                         demand_class="smooth", params=shared[i % len(shared)], mase=0.9,
                         rmsse=0.8, rate_per_day=1.25, window_start=date(2024, 11, 26),
                         window_end=date(2026, 11, 25), observations=700, code_version="bench",
                         chosen_by=("backtest", "steady")[i % 2])
            for i in range(n)]


def measure(url: str) -> list[dict]:
    from restock.store import open_store
    from restock.store.schema import model_catalog

    store = open_store(url)
    out = []
    try:
        for n in SIZES:
            runs = iter(range(1_000))

            def record(n=n, runs=runs) -> None:
                store.models.record(entries(n, f"run-{n}-{next(runs)}"))

            def generic(n=n, runs=runs) -> None:
                now = datetime.now(UTC)
                rows = [{**vars(e), "created_at": now} for e in entries(n, f"g-{next(runs)}")]
                with store.engine.begin() as conn:
                    conn.execute(model_catalog.insert(), rows)

            row = {"skus": n}
            for name, work in (("record", record), ("generic_executemany", generic)):
                row[f"{name}_wall_seconds"] = round(best_of(work, clock=time.perf_counter)[0], 3)
                row[f"{name}_cpu_seconds"] = round(best_of(work)[0], 3)
            store.models.record(entries(n, f"run-{n}-last"))
            wall, latest = best_of(lambda: store.models.latest("bench"), clock=time.perf_counter)
            row["latest_wall_seconds"] = round(wall, 3)
            row["latest_cpu_seconds"] = round(best_of(lambda: store.models.latest("bench"))[0], 3)
            row["latest_rows"] = len(latest)
            out.append(row)
    finally:
        store.close()
    return out


def postgres() -> dict:
    """The measurement on a private database, made and dropped here."""
    import sqlalchemy as sa

    name = f"restock_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as err:
        return {"skipped": f"PostgreSQL unreachable at {ADMIN_URL}: {err.__class__.__name__}"}
    try:
        return {"sizes": measure(ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="restock-bench-") as folder:
        sqlite = {"sizes": measure(f"sqlite:///{Path(folder) / 'state.sqlite'}")}
    result = {"machine": describe(), "load_average_1min": os.getloadavg()[0],
              "sqlite": sqlite, "postgresql": postgres()}
    save_result(RESULTS, result)
    print(f"run_store: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
