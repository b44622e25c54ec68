"""Soak: many orgs on one daemon with schedules compressed to seconds, for minutes on end.

Targets (issue 6): 200 orgs for 30 minutes with no missed or doubled slot, flat memory (RSS growth
< 10% after warm-up), no leaked file descriptors or database connections.

What runs: the real daemon (APScheduler, slot executor, slot claims, hot-reload polling, metrics)
over real org files and a real state store. The cycle is replaced by a stand-in that records a run
and its summary in the state store and holds its worker for ``--work-ms``: 200 orgs every few
seconds of the full forecasting cycle would need dozens of cores, and it is the daemon's
bookkeeping that a soak must prove. Every slot the stand-in sees is checked against the cron
schedule: missed = due but never run, doubled = run more than once.

    python -m bench.daemon_soak --minutes 30                     # the issue's target
    python -m bench.daemon_soak --minutes 3 --state-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "daemon_soak.json"


class StandInCycle:
    """Records each run in the store like the cycle does, then holds the worker briefly."""

    def __init__(self, work_seconds: float) -> None:
        self.work_seconds = work_seconds
        # Compact arrays, so the soak's own bookkeeping does not pass for the daemon's growth.
        self.slots: dict[str, array] = defaultdict(lambda: array("q"))
        self.lateness = array("d")
        self._lock = threading.Lock()

    def seen(self) -> Counter[tuple[str, datetime]]:
        """How often each (org, slot) ran."""
        return Counter((org, datetime.fromtimestamp(epoch, UTC))
                       for org, epochs in self.slots.items() for epoch in epochs)

    def __call__(self, config: Any, *, store: Any, clock: Any, stop: Any = None) -> Any:
        from restock.domain import Mode, RunStatus, RunSummary

        slot = clock.now()
        late = time.time() - slot.timestamp()
        run_id = f"soak-{config.org}-{slot:%Y%m%dT%H%M%S}"
        store.runs.start(config.org, run_id, Mode.AUTO, slot)
        time.sleep(self.work_seconds)
        summary = RunSummary(org=config.org, run_id=run_id, status=RunStatus.OK, mode=Mode.AUTO,
                             started_at=slot, finished_at=datetime.now(UTC),
                             currency="EUR")
        store.runs.finish(summary)
        with self._lock:
            self.slots[config.org].append(int(slot.timestamp()))
            self.lateness.append(late)
        return summary


def write_orgs(folder: Path, count: int, every: int) -> dict[str, str]:
    """``count`` org files; org i fires every ``every`` seconds, offset by i so load spreads."""
    folder.mkdir(parents=True, exist_ok=True)
    schedules = {}
    for i in range(count):
        org = f"soak-{i:04d}"
        schedules[org] = f"{i % every}/{every} * * * * *"
        (folder / f"{org}.yaml").write_text(
            f"org: {org}\nschedule: \"{schedules[org]}\"\ntimezone: UTC\n"
            f"source: {{connector: files, path: ./warehouse}}\n"
            f"order_sink: {{connector: files, path: ./outbox/{org}}}\n")
    return schedules


def due_slots(schedules: dict[str, str], start: datetime, end: datetime) -> set[tuple[str, datetime]]:
    """Every (org, fire time) with start < time <= end."""
    from restock.schedule import cron_trigger

    due = set()
    for org, schedule in schedules.items():
        trigger, when = cron_trigger(schedule, "UTC"), start
        while (when := trigger.get_next_fire_time(None, when + timedelta(microseconds=1))) <= end:
            due.add((org, when))
    return due


class Sampler:
    """Samples the process's RSS, open descriptors and the store's connections."""

    def __init__(self, state_url: str, db_path: Path | None) -> None:
        import psutil

        self.process, self.state_url, self.db_path = psutil.Process(), state_url, db_path
        self.samples: list[dict[str, float]] = []
        self._pg = None
        if state_url.startswith("postgresql"):
            import sqlalchemy as sa
            self._pg = sa.create_engine(state_url, poolclass=sa.pool.NullPool)

    def sample(self, elapsed: float) -> dict[str, float]:
        row = {"seconds": round(elapsed, 1),
               "rss_mb": round(self.process.memory_info().rss / 2**20, 2),
               "fds": self.process.num_fds(), "threads": self.process.num_threads(),
               "db_connections": self._connections()}
        self.samples.append(row)
        return row

    def _connections(self) -> int:
        if self._pg is not None:
            import sqlalchemy as sa
            with self._pg.connect() as conn:    # others than this sampler's own
                return int(conn.execute(sa.text(
                    "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = "
                    "current_database()")).scalar())
        name = self.db_path.name if self.db_path else ""
        return sum(1 for f in self.process.open_files() if Path(f.path).name == name)

    def close(self) -> None:
        if self._pg is not None:
            self._pg.dispose()


def soak(orgs: int, minutes: float, every: int, work_ms: float, state_url: str | None,
         parallel: int, sample_seconds: float) -> dict[str, Any]:
    from restock import log
    from restock.daemon import Daemon, SlotLedger
    from restock.settings import load_settings
    from restock.store import open_store

    log.configure(json=True, level="WARNING")
    with tempfile.TemporaryDirectory(prefix="restock-soak-") as tmp:
        root = Path(tmp)
        db_path = None if state_url else root / "state.db"
        url = state_url or f"sqlite:///{db_path}"
        schedules = write_orgs(root / "config" / "orgs", orgs, every)
        settings = load_settings(config_dir=root / "config", state_url=url, replica_id="soak",
                                 max_parallel_orgs=parallel, misfire_grace_seconds=every)
        cycle, store, ledger = StandInCycle(work_ms / 1000), open_store(url), None
        ledger = SlotLedger(url, replica="soak", pool_size=parallel + 2)
        daemon = Daemon(settings, runner=cycle, store=store, ledger=ledger)
        sampler = Sampler(url, db_path)
        before = sampler.sample(0.0)
        began = time.monotonic()
        daemon.start()
        # Slots count from when every org is scheduled: loading 200 files takes seconds.
        started, start_seconds = datetime.now(UTC), time.monotonic() - began
        end, final = began + minutes * 60, before
        while (now := time.monotonic()) < end:
            time.sleep(min(sample_seconds, max(end - now, 0)))
            daemon.reload()                       # what the service loop does between samples
            final = sampler.sample(time.monotonic() - began)
        stopped_at = datetime.now(UTC)
        clean = daemon.stop(timeout=60)
        claims = ledger.claims()
        stored_runs = _stored_runs(store)
        ledger.close()
        store.close()
        closed = sampler.sample(time.monotonic() - began)
        sampler.close()
    window = (started + timedelta(seconds=every), stopped_at - timedelta(seconds=2 * every))
    due = due_slots(schedules, *window)
    seen = cycle.seen()
    ran_in_window = {key for key in seen if window[0] < key[1] <= window[1]}
    missed = sorted(due - ran_in_window, key=lambda key: key[1])
    result = _report(orgs, minutes, every, work_ms, url, parallel, seen, sorted(cycle.lateness),
                     due, ran_in_window, claims, stored_runs, sampler.samples[1:-1], clean,
                     (before, final, closed))
    result["start_seconds"] = round(start_seconds, 2)
    result["missed_examples"] = [f"{org}@{when:%H:%M:%S}" for org, when in missed[:10]]
    return result


def _stored_runs(store: Any) -> int:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM runs")).scalar())


def _report(orgs: int, minutes: float, every: int, work_ms: float, url: str, parallel: int,
            seen: Counter, late: list[float], due: set, ran: set, claims: list[dict],
            stored_runs: int,
            samples: list[dict], clean: bool, edges: tuple[dict, dict, dict]) -> dict[str, Any]:
    before, final, closed = edges
    warm = next((s for s in samples if s["seconds"] >= min(60.0, minutes * 60 / 5)), samples[0])
    growth = (final["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"]
    doubled = sum(1 for count in seen.values() if count > 1)
    result = {
        "orgs": orgs, "schedule_every_seconds": every, "stand_in_work_ms": work_ms,
        "max_parallel_orgs": parallel, "store": url.split(":", 1)[0].split("+")[0],
        "target_minutes": 30, "minutes": round(final["seconds"] / 60, 2),
        "slots_due": len(due), "slots_run": sum(seen.values()),
        "missed_slots": len(due - ran), "doubled_slots": doubled,
        "claims": len(claims), "claims_not_ok": sum(1 for c in claims if c["status"] != "ok"),
        "stored_runs": stored_runs,
        "start_lateness_seconds": {"p50": round(statistics.median(late), 3),
                                   "p99": round(late[int(len(late) * 0.99) - 1], 3),
                                   "max": round(late[-1], 3)} if late else None,
        "rss_mb": {"after_warmup": warm["rss_mb"], "end": final["rss_mb"],
                   "growth_fraction": round(growth, 4)},
        # Pools hold connections (and their descriptors) while the daemon runs; a leak shows as
        # growth during the run or as anything left once the daemon and its stores are closed.
        "fds": {"before_start": before["fds"], "after_warmup": warm["fds"], "end": final["fds"],
                "max": max(s["fds"] for s in samples), "after_close": closed["fds"]},
        "db_connections": {"before_start": before["db_connections"],
                           "after_warmup": warm["db_connections"],
                           "end": final["db_connections"],
                           "max": max(s["db_connections"] for s in samples),
                           "after_close": closed["db_connections"]},
        "threads": {"after_warmup": warm["threads"], "end": final["threads"]},
        "stopped_cleanly": clean,
        "samples": samples[:: max(1, len(samples) // 60)],
    }
    result["meets_targets_for_this_duration"] = bool(
        result["missed_slots"] == 0 and doubled == 0 and growth < 0.10 and clean
        and final["fds"] <= warm["fds"] and final["db_connections"] <= warm["db_connections"]
        and closed["db_connections"] <= before["db_connections"]
        and closed["fds"] <= before["fds"])
    result["meets_targets"] = result["meets_targets_for_this_duration"] and \
        result["minutes"] >= result["target_minutes"]
    return result


def _save(path: Path, result: dict[str, Any], key: str | None) -> None:
    """One entry per store kind (sqlite, postgresql) or ``--key``; a new run replaces its entry."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        kept = {}
    kept[key or result["store"]] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the soak and record it in bench/results/daemon_soak.json (or --out), by store kind."""
    parser = argparse.ArgumentParser(prog="python -m bench.daemon_soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="how long to run (the target is 30; default 5 for `make bench`)")
    parser.add_argument("--every", type=int, default=5, help="seconds between an org's slots")
    parser.add_argument("--work-ms", type=float, default=20.0, help="stand-in run length")
    parser.add_argument("--parallel", type=int, default=8, help="max_parallel_orgs")
    parser.add_argument("--state-url", default=None, help="default: a SQLite file in a temp dir")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--key", default=None, help="entry name in --out (default: the store)")
    args = parser.parse_args(argv or [])
    result = soak(args.orgs, args.minutes, args.every, args.work_ms, args.state_url,
                  args.parallel, args.sample_seconds)
    result["machine_load_average"] = [round(x, 2) for x in os.getloadavg()]
    _save(args.out, result, args.key)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
