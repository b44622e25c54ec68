"""Two real ``restock daemon`` processes sharing one PostgreSQL state store and one schedule:
every slot of every org runs exactly once; when one replica is killed, the other runs on."""

from __future__ import annotations

import re
import signal
from collections import Counter
from datetime import datetime, timedelta
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
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ORGS = ("north", "south", "west")
EVERY = 4                                    # seconds between slots


@pytest.fixture
def site(tmp_path: Path) -> Path:
    demo_warehouse(tmp_path / "warehouse", 20)
    (tmp_path / "config" / "orgs").mkdir(parents=True)
    for org in ORGS:
        files_org(tmp_path / "config" / "orgs", org, f"*/{EVERY} * * * * *",
                  tmp_path / "warehouse")
    return tmp_path


def _done(ledger: SlotLedger, replica: str | None = None, after: str = "") -> Counter:
    """Finished scheduled slots per org (optionally of one replica, after a slot)."""
    return Counter(c["org"] for c in ledger.claims()
                   if c["kind"] == "scheduled" and c["status"] != "running"
                   and (replica is None or c["replica"] == replica) and c["slot"] > after)


def test_two_replicas_run_every_slot_once_and_survive_one_dying(site: Path):
    with fresh_pg_database(PG_ADMIN_URL) as url:
        one = DaemonProcess(site / "config", url, site / "one.log", replica="one")
        two = DaemonProcess(site / "config", url, site / "two.log", replica="two")
        try:
            one.wait_ready()
            two.wait_ready()
            ledger = SlotLedger(url, replica="observer")
            wait_until(lambda: min(_done(ledger)[org] for org in ORGS) >= 3, 120,
                       "three slots of every org")
            seen_by_one = one.get("/metrics").text
            one.kill()                                   # SIGKILL: no goodbye, locks drop
            last_before = max(c["slot"] for c in ledger.claims())
            wait_until(lambda: min(_done(ledger, "two", last_before)[org] for org in ORGS) >= 2,
                       120, "the survivor to run two more slots of every org")
            metrics = two.get("/metrics").text
            assert two.signal(signal.SIGTERM) == 0, two.output()
        finally:
            one.kill()
            two.kill()
        claims = ledger.claims()
        ledger.close()
        runs = _stored_runs(url)
    for org in ORGS:
        _check_org(org, [c for c in claims if c["org"] == org], runs[org], last_before)
    # While both were up, every slot was tried by both: whichever lost the race says so. Which
    # replica loses is up to timing, so the two replicas' counts are read together.
    assert _claimed_elsewhere(seen_by_one) + _claimed_elsewhere(metrics) >= 1, (
        seen_by_one, metrics)


def _claimed_elsewhere(metrics: str) -> float:
    return sum(float(count) for count in re.findall(
        r'restock_slots_total\{org="\w+",outcome="claimed_elsewhere"\} (\S+)', metrics))


def _check_org(org: str, claims: list[dict], runs: dict[str, str], last_before: str) -> None:
    slots = sorted(c["slot"] for c in claims)
    expected = _every_slot(slots[0], slots[-1])
    assert slots == expected, f"{org}: missing {sorted(set(expected) - set(slots))}"
    assert len(runs) == len(claims), f"{org}: {len(runs)} runs for {len(claims)} slots"
    finished = {c["run_id"]: c["status"] for c in claims if c["status"] != "running"}
    assert {run_id: runs[run_id] for run_id in finished} == finished
    unfinished = [c for c in claims if c["status"] == "running"]
    assert all(c["replica"] == "one" for c in unfinished)      # only the killed replica's
    assert len(unfinished) <= 1
    after = [c for c in claims if c["slot"] > last_before]
    assert after and {c["replica"] for c in after} == {"two"}
    assert {c["status"] for c in claims} <= {"ok", "partial", "running"}


def _every_slot(first: str, last: str) -> list[str]:
    start, end = (datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ") for s in (first, last))
    steps = int((end - start).total_seconds()) // EVERY
    return [(start + timedelta(seconds=EVERY * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for i in range(steps + 1)]


def _stored_runs(url: str) -> dict[str, dict[str, str]]:
    from restock.store import open_store

    store = open_store(url)
    try:
        return {org: {r.run_id: r.status for r in store.runs.list(org, limit=1000)}
                for org in ORGS}
    finally:
        store.close()
