"""Live service feedback through the whole cycle: an org planned weekly over several planning
dates, half its items out of stock at every snapshot, on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restock.config import load_org
from restock.cycle import run_org
from restock.domain import RunStatus, RunSummary
from restock.store import open_store

FIRST = date(2026, 3, 2)
RUNS = 5
SKUS = [f"SKU-{i:02d}" for i in range(60)]


def _warehouse(folder: Path) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    days = pd.date_range(FIRST - timedelta(days=500), FIRST + timedelta(days=7 * RUNS))
    pd.DataFrame({"sku": np.repeat(SKUS, len(days)), "location": "main",
                  "date": np.tile(days.date, len(SKUS)),
                  "quantity": rng.poisson(6, len(days) * len(SKUS))}
                 ).to_csv(folder / "all_history.csv", index=False)
    pd.DataFrame({"sku": SKUS, "description": SKUS, "category": "parts", "unit": "each"}
                 ).to_csv(folder / "catalog.csv", index=False)
    pd.DataFrame({"sku": SKUS, "supplier": "atlas", "unit_price": 2.0, "lead_time_days": 7,
                  "moq": 0, "pack_size": 1, "currency": "EUR"}
                 ).to_csv(folder / "offers.csv", index=False)
    # Every second item sold out with customers waiting, at every snapshot: 50% cycle service.
    out = np.arange(len(SKUS)) % 2 == 0
    pd.DataFrame({"sku": SKUS, "location": "main", "on_hand": np.where(out, 0, 1),
                  "allocated": 0, "on_order": 0, "backorders": np.where(out, 4, 0)}
                 ).to_csv(folder / "positions.csv", index=False)


def _org(folder: Path, as_of: date, feedback: bool) -> Path:
    """The org file planning at ``as_of``, and the sales the warehouse has recorded by then."""
    history = pd.read_csv(folder / "warehouse" / "all_history.csv")
    history[history["date"] < as_of.isoformat()].to_csv(folder / "warehouse" / "history.csv",
                                                          index=False)
    path = folder / "orgs" / "acme.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("org: acme\nmode: dry_run\ncurrency: EUR\n"
                    f"source: {{connector: files, path: ../warehouse, as_of: {as_of}}}\n"
                    "order_sink: {connector: files, path: ../outbox}\n"
                    f"policy: {{service_feedback: {str(feedback).lower()}}}\n"
                    "forecast: {statsmodels_seconds: 0}\n")
    return path


def _weekly_runs(folder: Path, url: str, feedback: bool) -> list[RunSummary]:
    store = open_store(url)
    try:
        summaries = []
        for week in range(RUNS):
            config = load_org(_org(folder, FIRST + timedelta(days=7 * week), feedback))
            summary = run_org(config, store=store, dry_run=True)
            assert summary.status == RunStatus.OK, summary.errors
            summaries.append(summary)
        return summaries
    finally:
        store.close()


def _levels(summary: RunSummary) -> dict[str, float]:
    return {line.sku: line.order_up_to for order in [*summary.orders, *summary.held]
            for line in order.lines}


@pytest.fixture
def folder(tmp_path) -> Path:
    _warehouse(tmp_path / "warehouse")
    return tmp_path


def test_stockouts_raise_the_shift_and_the_levels_with_it(folder, store_url, tmp_path):
    fed = _weekly_runs(folder, store_url, feedback=True)
    plain = _weekly_runs(folder, f"sqlite:///{tmp_path / 'plain.sqlite'}", feedback=False)

    assert fed[0].service[0].cycles == 0 and fed[0].service[0].shift == 0   # nothing to close
    group = [s.service[0] for s in fed[1:]]
    assert {g.group for g in group} == {"item:cycle:0.95"}
    assert [g.cycles for g in group] == [1, 2, 3, 4]
    assert all(g.delivered == pytest.approx(0.5) for g in group)
    shifts = [g.shift for g in group]
    assert all(b > a > 0 for a, b in pairwise(shifts)), shifts

    for on, off in zip(fed, plain, strict=True):
        with_shift, without = _levels(on), _levels(off)
        assert set(with_shift) == set(without) == set(SKUS)
        if on.service[0].shift:
            assert all(with_shift[sku] > without[sku] for sku in SKUS)
        else:
            assert with_shift == without
    # Recorded, not applied; the summary says what the shift would have been.
    assert [s.service[0].cycles for s in plain] == list(range(RUNS))
    assert not any(s.service[0].applied for s in plain) and all(g.applied for g in group)
    assert all(s.service[0].shift > 0 for s in plain[1:])

    line = next(line for order in fed[-1].held + fed[-1].orders for line in order.lines)
    reason = next(r for r in line.reasons if r.code == "service_feedback")
    assert reason.data["asked_level"] == 0.95
    assert reason.data["shift"] == pytest.approx(shifts[-1], abs=1e-4)
    assert reason.data["corrected_level"] > 0.95 and reason.data["cycles"] == 4
    assert reason.data["item_cycles"] == 4 * len(SKUS)


def test_a_cycle_closes_once_a_review_period_has_passed_and_only_once(folder, store_url):
    store = open_store(store_url)
    try:
        for days in (0, 3, 7, 7, 10):   # a run between reviews closes nothing
            as_of = FIRST + timedelta(days=days)
            summary = run_org(load_org(_org(folder, as_of, True)), store=store, dry_run=True)
            assert summary.status == RunStatus.OK, summary.errors
        rows = store.service.between("acme", FIRST - timedelta(days=365), FIRST + timedelta(10))
    finally:
        store.close()
    assert [(r.service_group, r.cycle_end, r.item_cycles, r.stockout_cycles) for r in rows] == \
        [("item:cycle:0.95", FIRST + timedelta(days=7), len(SKUS), len(SKUS) // 2)]
    assert summary.service[0].cycles == 1
