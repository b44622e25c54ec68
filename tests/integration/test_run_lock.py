"""`restock run` and the daemon share the org's run lock: a run by hand never races the daemon's
run of the same org (SQLite: a lock file beside the database; PostgreSQL: the advisory lock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restock.daemon.slots import ELSEWHERE, HELD, SlotLedger, org_run_lock
from tests.support.daemon_kit import demo_warehouse, files_org, restock_cli


@pytest.fixture
def org_folder(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    (config / "orgs").mkdir(parents=True)
    warehouse = demo_warehouse(tmp_path / "warehouse", skus=20)
    files_org(config / "orgs", "acme", "0 6 * * *", warehouse)
    return config


def _run(config: Path, url: str):
    return restock_cli("run", "--org", "acme", "--config", str(config), "--json",
                       cwd=config.parent, env={"RESTOCK_STATE_URL": url})


def test_a_run_by_hand_does_nothing_while_the_daemon_runs_the_org(org_folder, store_url):
    ledger = SlotLedger(store_url, replica="daemon-1")
    try:
        with ledger.org_lock("acme") as lock:
            assert lock == HELD
            refused = _run(org_folder, store_url)
            assert refused.returncode == 1
            assert "is being run right now" in refused.stderr
            assert "Traceback" not in refused.stderr and refused.stdout == ""
        done = _run(org_folder, store_url)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["org"] == "acme"
    finally:
        ledger.close()


def test_the_daemon_finds_the_org_taken_while_a_run_by_hand_holds_it(store_url):
    ledger = SlotLedger(store_url, replica="daemon-1")
    try:
        with org_run_lock(store_url, "acme") as held:
            assert held
            with ledger.org_lock("acme") as lock:
                assert lock == ELSEWHERE
            with ledger.org_lock("other") as lock:     # other orgs are not held up
                assert lock == HELD
        with ledger.org_lock("acme") as lock:
            assert lock == HELD
    finally:
        ledger.close()
