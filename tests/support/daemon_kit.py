"""Helpers for daemon tests: org files, a recording cycle double, a polling wait, and real
``restock daemon`` processes with their own PostgreSQL database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

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

    def __call__(self, config, *, store, clock) -> RunSummary:
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
                              started_at=datetime.now(UTC))
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


# ---------------------------------------------------------------- real daemon processes

class DaemonProcess:
    """``restock daemon`` in a subprocess, its health port chosen by the OS and read from its log."""

    def __init__(self, config_dir: Path, state_url: str, log_path: Path, *, replica: str = "r1",
                 cwd: Path | None = None, **settings: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
        env.update({"RESTOCK_STATE_URL": state_url, "RESTOCK_REPLICA_ID": replica,
                    "RESTOCK_LOG_FORMAT": "json", "RESTOCK_RELOAD_INTERVAL_SECONDS": "0.2",
                    "RESTOCK_SETTINGS_FILE": str(config_dir / "absent.yaml")})
        env.update({f"RESTOCK_{key.upper()}": value for key, value in settings.items()})
        self.config_dir, self.log_path, self.replica = config_dir, log_path, replica
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "restock.cli", "daemon", "--config", str(config_dir),
             "--health-addr", "127.0.0.1:0"],
            cwd=cwd or config_dir.parent, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.url = ""

    def events(self) -> list[dict]:
        """The daemon's JSON log lines so far (anything else it printed is skipped)."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                found.append(event)
        return found

    def wait_ready(self, timeout: float = 60.0) -> str:
        """Wait for the daemon to listen and answer /readyz with 200; returns its base URL."""
        def listening() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.output()}")
            self.url = next((e["url"] for e in self.events()
                             if e.get("event") == "daemon.listening"), "")
            return bool(self.url) and self.get("/readyz").status_code == 200

        wait_until(listening, timeout, "the daemon to be ready")
        return self.url

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def status(self) -> dict:
        return self.get("/status").json()

    def signal(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send a signal and wait for the exit code."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def demo_warehouse(folder: Path, skus: int) -> Path:
    """A generated warehouse of ``skus`` items in ``folder``, made by the real CLI."""
    made = restock_cli("demo-data", "--out", str(folder), "--skus", str(skus), cwd=folder.parent)
    assert made.returncode == 0, made.stderr
    return folder


def restock_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run ``restock ARGS`` in a subprocess with only the given RESTOCK_ variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
    return subprocess.run([sys.executable, "-m", "restock.cli", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def files_org(folder: Path, org: str, schedule: str, warehouse: Path, tz: str = "UTC") -> Path:
    """An org file of the files connectors over a generated warehouse, in auto mode."""
    outbox, summaries = folder.parent.parent / "outbox" / org, folder.parent.parent / "summaries"
    path = folder / f"{org}.yaml"
    path.write_text(f"org: {org}\nschedule: \"{schedule}\"\ntimezone: {tz}\nmode: auto\n"
                    f"source: {{connector: files, path: {warehouse}}}\n"
                    f"order_sink: {{connector: files, path: {outbox}}}\n"
                    f"summary_sinks:\n  - {{connector: files, path: {summaries / org}}}\n"
                    "forecast: {statsmodels_seconds: 0}\n")
    return path


@contextmanager
def fresh_pg_database(admin_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own for one test (so parallel runs never collide)."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"restock_daemon_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as err:  # noqa: BLE001 - no server to test against
        admin.dispose()
        import pytest
        pytest.skip(f"PostgreSQL unreachable at {admin_url}: {type(err).__name__}: {err}")
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = %s", (name,))
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()
