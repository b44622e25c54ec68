"""Helpers for daemon tests: org files, a recording cycle double, and a polling wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from restock.domain import Mode, RunStatus, RunSummary


def write_org(folder: Path, org: str, schedule: str = "0 6 * * *", tz: str = "UTC",
              extra: str = "") -> Path:
    """An org file (the files connectors, which the daemon tests' cycle double never calls)."""
    path = folder / f"{org}.yaml"
    path.write_text(f"org: {org}\nschedule: \"{schedule}\"\ntimezone: {tz}\n"
                    "source: {connector: files, path: ./warehouse}\n"
                    f"order_sink: {{connector: files, path: ./outbox}}\n{extra}")
    return path


class RecordingCycle:
    """Stands in for ``restock.cycle.run_org``: records (org, planning instant), can block or fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self.failing: set[str] = set()
        self.gates: dict[str, threading.Event] = {}
        self.running: set[str] = set()
        self.peak_parallel = 0
        self._lock = threading.Lock()

    def __call__(self, config, *, store, clock) -> RunSummary:  # noqa: ANN001
        with self._lock:
            self.calls.append((config.org, clock.now()))
            self.running.add(config.org)
            self.peak_parallel = max(self.peak_parallel, len(self.running))
        try:
            gate = self.gates.get(config.org)
            if gate is not None:
                gate.wait(10)
            if config.org in self.failing:
                raise RuntimeError(f"{config.org} exploded")
            return RunSummary(org=config.org, run_id=f"run-{len(self.calls)}",
                              status=RunStatus.OK, mode=Mode.AUTO, currency="EUR", spend=12.5,
                              started_at=datetime.now(timezone.utc))
        finally:
            with self._lock:
                self.running.discard(config.org)

    def slots(self, org: str) -> list[datetime]:
        with self._lock:
            return [when for name, when in self.calls if name == org]


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Poll (in real time) until ``predicate()`` is true, or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)
