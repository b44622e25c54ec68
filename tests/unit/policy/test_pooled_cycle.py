"""An org file asking for a pooled service level: the whole cycle (files, forecasts, SQLite
ledger) plans its SKUs at their pool shares and says so on every order line."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from restock.demo import generate
from tests.support.samples import run_on_fresh_store

HISTORY_END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pooled") / "warehouse"
    generate(folder, skus=30, end=HISTORY_END)
    return folder


def run(tmp_path: Path, warehouse: Path, policy: str):
    orgs = tmp_path / "orgs"
    orgs.mkdir()
    path = orgs / "acme.yaml"
    path.write_text(f"org: acme\nmode: approval\ncurrency: EUR\n"
                    f"source: {{connector: files, path: {warehouse}, "
                    f"as_of: {HISTORY_END + timedelta(days=1)}}}\n"
                    f"order_sink: {{connector: files, path: {tmp_path / 'outbox'}}}\n"
                    f"forecast: {{statsmodels_seconds: 0}}\npolicy: {policy}\n")
    path.chmod(0o640)
    summary = run_on_fresh_store(path, tmp_path / "state.sqlite")
    return [line for order in summary.orders + summary.held for line in order.lines]


def safety(line):
    return next(r for r in line.reasons if r.code == "safety_stock").data


def test_a_pooled_org_plans_every_ordered_line_at_its_share_of_the_org_pool(tmp_path,
                                                                            warehouse):
    lines = run(tmp_path, warehouse, "{service_level: 0.95, service_scope: pooled}")
    assert lines
    pooled = [safety(line) for line in lines if safety(line)["scope"] == "pooled"]
    assert pooled and {data["pool"] for data in pooled} == {"org"}
    assert len({data["pool_items"] for data in pooled}) == 1
    shares = [data["item_level"] for data in pooled]
    assert all(0.5 <= share <= 1.0 for share in shares)
    assert min(shares) < 0.95 < max(shares)   # the target is shared out, not applied to each


def test_the_default_org_plans_each_item_at_its_own_level(tmp_path, warehouse):
    lines = run(tmp_path, warehouse, "{service_level: 0.95}")
    assert lines and {safety(line)["scope"] for line in lines} == {"item"}
