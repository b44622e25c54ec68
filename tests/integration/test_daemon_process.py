"""A real ``restock daemon`` process over a generated warehouse: start, hot-reload an edit (and
reject a bad one), run on schedule, trigger from the CLI, SIGTERM, then check exit code and state."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("restock.cycle", reason="the cycle (restock.cycle.run_org) is not installed")

from restock.daemon.slots import SlotLedger
from tests.conftest import PG_ADMIN_URL
from tests.support.daemon_kit import (
    DaemonProcess,
    demo_warehouse,
    files_org,
    fresh_pg_database,
    restock_cli,
    wait_until,
)

pytestmark = pytest.mark.slow
FAR_AWAY = "0 3 1 1 *"              # once a year: never during the test


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return demo_warehouse(tmp_path_factory.mktemp("warehouse"), 20)


@pytest.fixture
def site(tmp_path: Path, warehouse: Path) -> Path:
    (tmp_path / "config" / "orgs").mkdir(parents=True)
    files_org(tmp_path / "config" / "orgs", "acme", FAR_AWAY, warehouse)
    return tmp_path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request, site: Path):
    """The same test body on both state stores."""
    if request.param == "sqlite":
        yield f"sqlite:///{site / 'state' / 'restock.db'}"
        return
    with fresh_pg_database(PG_ADMIN_URL) as url:
        yield url


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    before = path.stat().st_mtime_ns
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before + 10**9, before + 10**9))   # coarse-mtime filesystems see it too


def _acme(daemon: DaemonProcess) -> dict:
    return next(org for org in daemon.status()["orgs"] if org["org"] == "acme")


def _finished(claims: list[dict], kind: str) -> list[dict]:
    return [c for c in claims if c["kind"] == kind and c["status"] != "running"]


def test_daemon_process_reloads_runs_triggers_and_stops_cleanly(site: Path, state_url: str):
    url = state_url
    daemon = DaemonProcess(site / "config", url, site / "daemon.log")
    try:
        base = daemon.wait_ready()
        assert _acme(daemon)["schedule"] == FAR_AWAY
        metrics = daemon.get("/metrics").text
        assert "restock_orgs 1.0" in metrics and "restock_config_errors 0.0" in metrics
        org_file = site / "config" / "orgs" / "acme.yaml"

        _rewrite(org_file, FAR_AWAY, "*/3 * * * * *")                 # hot reload: every 3 s
        wait_until(lambda: _acme(daemon)["schedule"] == "*/3 * * * * *", 20, "the reload")
        ledger = SlotLedger(url, replica="observer")
        wait_until(lambda: _finished(ledger.claims("acme"), "scheduled"), 120,
                   "a scheduled run to finish")
        _rewrite(org_file, "*/3 * * * * *", FAR_AWAY)
        wait_until(lambda: _acme(daemon)["schedule"] == FAR_AWAY, 20, "the second reload")

        _rewrite(org_file, "timezone: UTC", "timezone: Mars/Olympus")   # an invalid edit
        wait_until(lambda: daemon.status()["config_errors"], 20, "the rejected edit")
        [error] = daemon.status()["config_errors"]
        assert "acme.yaml:3: timezone: unknown time zone 'Mars/Olympus'" in error
        assert _acme(daemon)["schedule"] == FAR_AWAY           # the last valid config runs on
        assert "restock_config_errors 1.0" in daemon.get("/metrics").text

        host_port = base.removeprefix("http://")
        triggered = restock_cli("trigger", "--org", "acme", "--addr", host_port,
                                "--config", str(site / "config"), cwd=site)
        assert triggered.returncode == 0, triggered.stderr
        outcome = json.loads(triggered.stdout)
        assert (outcome["outcome"], outcome["kind"]) == ("ran", "manual")
        unknown = restock_cli("trigger", "--org", "nobody", "--addr", host_port, cwd=site)
        assert unknown.returncode == 2 and "unknown org 'nobody'" in unknown.stderr

        assert daemon.signal(signal.SIGTERM) == 0, daemon.output()
    finally:
        daemon.kill()
    events = [e["event"] for e in daemon.events()]
    assert "daemon.stopping" in events and "daemon.stopped" in events
    assert not any(e.get("clean") is False for e in daemon.events())
    _check_state(url, site, ledger, outcome)
    status = restock_cli("status", "--config", str(site / "config"), "--json", cwd=site,
                         env={"RESTOCK_STATE_URL": url})
    assert status.returncode == 2                    # acme.yaml is still invalid on disk
    assert "acme.yaml:3: timezone" in json.loads(status.stdout)["config_errors"][0]
    _rewrite(site / "config" / "orgs" / "acme.yaml", "timezone: Mars/Olympus", "timezone: UTC")
    status = restock_cli("status", "--config", str(site / "config"), "--json", cwd=site,
                         env={"RESTOCK_STATE_URL": url})
    [row] = json.loads(status.stdout)["orgs"]
    assert (row["last_run_id"], row["last_status"]) == (outcome["run_id"], outcome["status"])
    assert row["next_run"] is not None


def _check_state(url: str, site: Path, ledger: SlotLedger, manual: dict) -> None:
    """Every claim finished with the run it names; the outbox holds each ledger order once."""
    from restock.store import open_store

    claims = ledger.claims("acme")
    ledger.close()
    assert {c["status"] for c in claims} <= {"ok", "partial"}, claims
    assert _finished(claims, "scheduled") and _finished(claims, "manual")
    assert manual["run_id"] in {c["run_id"] for c in claims}
    store = open_store(url)
    try:
        runs = {r.run_id: r.status for r in store.runs.list("acme", limit=500)}
        entries = store.ledger.list("acme")
    finally:
        store.close()
    assert {c["run_id"]: c["status"] for c in claims} == runs    # one run per claim, same end
    outbox = sorted(p.stem for p in (site / "outbox" / "acme").glob("*.json"))
    sent = sorted(e.key for e in entries if str(e.status) == "submitted")
    assert outbox == sent and len(set(sent)) == len(sent)
