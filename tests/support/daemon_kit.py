"""Helpers for daemon tests: org files, a recording cycle double, and a polling wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from restock import connectors
from restock.connectors import InventorySource, OrderSink, SubmitResult, SummarySink
from restock.domain import Mode, RunStatus, RunSummary


class _NullSource(InventorySource):
    def pull(self, scope):  # noqa: ANN001, ANN201
        raise AssertionError("the daemon tests' cycle double never pulls")


class _NullSink(OrderSink):
    def submit(self, order, idempotency_key):  # noqa: ANN001, ANN201
        return SubmitResult(accepted=True)

    def lookup(self, idempotency_key):  # noqa: ANN001, ANN201
        return None


class _NullSummary(SummarySink):
    def post(self, summary):  # noqa: ANN001, ANN201
        return None


connectors.register("daemon-test-null", SimpleNamespace(
    inventory_source=_NullSource, order_sink=_NullSink, summary_sink=_NullSummary))


def write_org(folder: Path, org: str, schedule: str = "0 6 * * *", tz: str = "UTC",
              extra: str = "") -> Path:
    """An org file whose connectors exist but are never called (the cycle is a double)."""
    path = folder / f"{org}.yaml"
    path.write_text(f"org: {org}\nschedule: \"{schedule}\"\ntimezone: {tz}\n"
                    "source: {connector: daemon-test-null}\n"
                    f"order_sink: {{connector: daemon-test-null}}\n{extra}")
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
