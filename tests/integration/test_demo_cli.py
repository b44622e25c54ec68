"""`restock demo` from a fresh checkout, twice: real orders once, never a duplicate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("restock.cycle", reason="the cycle (restock.cycle.run_org) is not installed")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _restock(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
    env["COLUMNS"] = "160"
    return subprocess.run([sys.executable, "-m", "restock.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


def _outbox(cwd: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((cwd / ".demo" / "outbox").glob("*.json"))}


def _ledger(cwd: Path) -> list[tuple]:
    from restock.store import open_store

    store = open_store(f"sqlite:///{cwd / 'var' / 'restock.sqlite'}")
    try:
        return [(e.order_id, e.key, str(e.status), round(e.order.total, 2))
                for e in store.ledger.list("demo")]
    finally:
        getattr(store, "close", lambda: None)()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A fresh checkout's config/ in an empty folder (no .demo/, no var/)."""
    cwd = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "config", cwd / "config")
    return cwd


def test_demo_twice_orders_once_and_says_where_everything_went(checkout):
    first = _restock(checkout, "demo")
    assert first.returncode == 0, first.stderr
    assert "Generated a demo warehouse: 300 SKUs" in first.stdout
    run_id = next(w for w in first.stdout.split() if w.startswith("run-"))
    assert f"summary: .demo/summaries/{run_id}.md" in first.stdout
    assert "orders:  .demo/outbox/" in first.stdout and "state:   sqlite:///var/restock.sqlite" \
        in first.stdout
    summary = json.loads((checkout / ".demo" / "summaries" / f"{run_id}.json").read_text())
    outbox, ledger = _outbox(checkout), _ledger(checkout)
    assert summary["orders"], "the demo should submit real orders"
    assert {f"{o['idempotency_key']}.json" for o in summary["orders"]} == set(outbox)
    assert {k for _, k, status, _ in ledger if status == "submitted"} == \
        {o["idempotency_key"] for o in summary["orders"]}

    second = _restock(checkout, "demo")
    assert second.returncode == 0, second.stderr
    assert "Generated a demo warehouse" not in second.stdout
    assert _outbox(checkout) == outbox          # same files, byte for byte
    assert _ledger(checkout) == ledger          # same ledger entries, same statuses


def test_run_json_prints_the_summary_keys(checkout):
    result = _restock(checkout, "run", "--org", "demo", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"org", "run_id", "status", "orders", "held", "skipped", "quarantined", "spend",
            "budget"} <= set(data)
    assert data["org"] == "demo" and data["budget"] == 40000
    for order in data["orders"] + data["held"]:
        assert order["supplier"] and order["lines"]
        for line in order["lines"]:
            assert {"sku", "quantity", "unit_price", "reasons"} <= set(line)
            assert line["reasons"], f"{line['sku']} has no reason"


def test_validate_on_the_shipped_config_exits_0_and_on_a_broken_one_2(checkout, tmp_path):
    assert _restock(checkout, "validate").returncode == 0
    broken = tmp_path / "config"
    shutil.copytree(checkout / "config", broken)
    demo = broken / "orgs" / "demo.yaml"
    demo.write_text(demo.read_text().replace("lead_time_days: 14 ", "lead_time_days: -14 "))
    result = _restock(tmp_path, "validate")
    assert result.returncode == 2
    assert result.stderr.startswith("config/orgs/demo.yaml:")
    assert "policy.lead_time_days: must be greater than 0 (got -14)" in result.stderr


def test_a_run_that_fails_exits_1_naming_the_file_and_column(checkout, tmp_path):
    warehouse = tmp_path / "warehouse"
    shutil.copytree(checkout / ".demo" / "warehouse", warehouse)
    (warehouse / "positions.csv").write_text("sku,location,allocated\nFST-1006,main,0\n")
    orgs = tmp_path / "config" / "orgs"
    orgs.mkdir(parents=True)
    text = (checkout / "config" / "orgs" / "demo.yaml").read_text()
    (orgs / "broken.yaml").write_text(
        text.replace("org: demo", "org: broken").replace("../../.demo/warehouse", str(warehouse))
        .replace("../../.demo/", str(tmp_path / "out") + "/"))
    result = _restock(tmp_path, "run", "--org", "broken", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and data["orders"] == []
    assert any(f"{warehouse / 'positions.csv'}:1: on_hand: required column is missing" in error
               for error in data["errors"])
    assert not (tmp_path / "out" / "outbox").exists() or \
        not list((tmp_path / "out" / "outbox").iterdir())
