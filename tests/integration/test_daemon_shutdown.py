"""SIGTERM while a real run is in flight: the run stops before submitting (or is abandoned at the
shutdown timeout), the daemon exits 0, and the next daemon's run leaves the ledger and the outbox
consistent — nothing lost, nothing sent twice."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

pytest.importorskip("restock.cycle", reason="the cycle (restock.cycle.run_org) is not installed")

from restock.daemon.slots import SlotLedger
from tests.support.daemon_kit import (
    DaemonProcess,
    demo_warehouse,
    files_org,
    wait_until,
)

pytestmark = pytest.mark.slow
NEVER = "0 3 1 1 *"


@pytest.fixture(scope="module")
def big_warehouse(tmp_path_factory) -> Path:
    """Large enough that a run takes seconds, so a signal lands mid-run."""
    return demo_warehouse(tmp_path_factory.mktemp("warehouse"), 1500)


@pytest.fixture
def site(tmp_path: Path, big_warehouse: Path) -> Path:
    (tmp_path / "config" / "orgs").mkdir(parents=True)
    files_org(tmp_path / "config" / "orgs", "acme", NEVER, big_warehouse)
    return tmp_path


def _start_run_then_sigterm(daemon: DaemonProcess) -> int:
    daemon.wait_ready()
    assert httpx.post(f"{daemon.url}/trigger/acme", timeout=10).status_code == 202
    wait_until(lambda: any(e.get("event") == "slot.started" for e in daemon.events()), 30,
               "the run to start")
    return daemon.signal(signal.SIGTERM)


def _ledger_state(url: str) -> tuple[dict[str, str], list]:
    from restock.store import open_store

    store = open_store(url)
    try:
        return ({r.run_id: r.status for r in store.runs.list("acme", limit=100)},
                store.ledger.list("acme"))
    finally:
        store.close()


def _consistent(site: Path, entries: list) -> None:
    statuses = {str(e.status) for e in entries}
    assert "submitting" not in statuses, statuses
    outbox = sorted(p.stem for p in (site / "outbox" / "acme").glob("*.json"))
    assert outbox == sorted(e.key for e in entries if str(e.status) == "submitted")


def _rerun(site: Path, url: str, name: str) -> dict:
    """A fresh daemon runs acme to the end; returns its manual outcome."""
    daemon = DaemonProcess(site / "config", url, site / name)
    try:
        daemon.wait_ready()
        outcome = httpx.post(f"{daemon.url}/trigger/acme", params={"wait": "1"},
                             timeout=300).json()
        assert daemon.signal(signal.SIGTERM) == 0, daemon.output()
    finally:
        daemon.kill()
    return outcome


def test_sigterm_mid_run_stops_before_submitting_and_exits_0(site: Path):
    url = f"sqlite:///{site / 'state.db'}"
    daemon = DaemonProcess(site / "config", url, site / "first.log")
    try:
        assert _start_run_then_sigterm(daemon) == 0, daemon.output()
    finally:
        daemon.kill()
    ledger = SlotLedger(url, replica="observer")
    [claim] = ledger.claims("acme")
    ledger.close()
    runs, entries = _ledger_state(url)
    assert claim["status"] == runs[claim["run_id"]] == "partial"     # finished, not abandoned
    summary_errors = _summary_errors(url, claim["run_id"])
    assert any(err.startswith("stopping:") for err in summary_errors), summary_errors
    assert entries and not any(str(e.status) == "submitted" for e in entries)
    _consistent(site, entries)

    outcome = _rerun(site, url, "second.log")
    assert outcome["outcome"] == "ran" and outcome["status"] in ("ok", "partial")
    _, after = _ledger_state(url)
    _consistent(site, after)
    assert {e.key for e in after} == {e.key for e in entries}   # the same need, not re-ordered


def test_a_run_past_the_shutdown_timeout_is_abandoned_and_reconciled(site: Path):
    url = f"sqlite:///{site / 'state.db'}"
    daemon = DaemonProcess(site / "config", url, site / "first.log",
                           shutdown_timeout_seconds="0.2")
    try:
        assert _start_run_then_sigterm(daemon) == 0, daemon.output()
    finally:
        daemon.kill()
    assert any(e.get("event") == "daemon.abandoned_runs" for e in daemon.events())
    ledger = SlotLedger(url, replica="observer")
    [claim] = ledger.claims("acme")
    ledger.close()
    assert (claim["status"], claim["detail"]) == ("abandoned",
                                                  "still running at the shutdown timeout")
    runs, entries = _ledger_state(url)
    assert list(runs.values()) == ["running"]          # the cycle never got to record its end

    outcome = _rerun(site, url, "second.log")
    assert outcome["outcome"] == "ran" and outcome["status"] in ("ok", "partial")
    _, entries = _ledger_state(url)
    _consistent(site, entries)


def _summary_errors(url: str, run_id: str) -> list[str]:
    from restock.store import open_store

    store = open_store(url)
    try:
        return store.runs.summary(run_id).errors
    finally:
        store.close()
