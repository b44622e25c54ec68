"""A promotion calendar in the live cycle: a generated warehouse read by the files connector, a
real SQLite store, ``run_org`` end to end, with and without ``promotions.csv``."""

from __future__ import annotations

import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from restock.demo import generate
from restock.domain import RunSummary
from tests.support.samples import run_on_fresh_store

HISTORY_END = date(2026, 6, 30)
AS_OF = HISTORY_END + timedelta(days=1)
PAST_PROMOTIONS = pd.date_range("2025-07-05", HISTORY_END, freq="30D")   # a dozen, a year back
PLANNED = pd.date_range(AS_OF, periods=31)                               # the month ahead


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> tuple[Path, str]:
    """The same warehouse twice, one smooth SKU tripling its sales on its past promotion days;
    only the second copy has the calendar (those days and the month ahead)."""
    root = tmp_path_factory.mktemp("promotions")
    plain = root / "plain" / "warehouse"
    generate(plain, skus=30, end=HISTORY_END)
    history = pd.read_csv(plain / "history.csv.gz")
    classes = pd.read_csv(plain / "demand_classes.csv")
    smooth = classes.loc[classes["demand_class"] == "smooth", "sku"]
    sku = history[history["sku"].isin(smooth)].groupby("sku")["quantity"].sum().idxmax()
    promoted = (history["sku"] == sku) & history["date"].isin(PAST_PROMOTIONS.strftime("%Y-%m-%d"))
    history.loc[promoted, "quantity"] *= 3
    history.to_csv(plain / "history.csv.gz", index=False)
    shutil.copytree(root / "plain", root / "calendar")
    days = PAST_PROMOTIONS.append(PLANNED).strftime("%Y-%m-%d")
    pd.DataFrame({"sku": sku, "date": days, "promotion": 1}).to_csv(
        root / "calendar" / "warehouse" / "promotions.csv", index=False)
    return root, sku


def _run(folder: Path) -> RunSummary:
    org = folder / "acme.yaml"
    org.write_text("org: acme\nmode: dry_run\ncurrency: EUR\n"
                   f"source: {{connector: files, path: warehouse, as_of: {AS_OF}}}\n"
                   "order_sink: {connector: files, path: outbox}\n"
                   "summary_sinks:\n  - {connector: files, path: summaries}\n"
                   "policy: {budget: 1000000}\nforecast: {statsmodels_seconds: 0}\n")
    # a store of its own per run: a run never sees another's catalog or orders
    return run_on_fresh_store(org, folder / f"state-{uuid.uuid4().hex[:8]}.sqlite")


def _lines(summary: RunSummary) -> dict:
    return {line.sku: line for order in [*summary.orders, *summary.held] for line in order.lines}


def test_a_promotion_inside_the_lead_time_orders_more_and_says_why(warehouses):
    root, sku = warehouses
    without, with_calendar = _lines(_run(root / "plain")), _lines(_run(root / "calendar"))
    promoted = with_calendar[sku]
    assert promoted.quantity > (without[sku].quantity if sku in without else 0.0)
    codes = [reason.code for reason in promoted.reasons]
    assert codes[codes.index("forecast") + 1] == "promotion"
    reason = promoted.reasons[codes.index("promotion")]
    assert 0 < reason.data["promotion_periods"] <= len(PLANNED)
    assert reason.data["period"] == "D"
    assert 2.0 < reason.data["lift"] <= 3.0          # tripled sales, shrunk towards the pool
    assert reason.data["demand_factor"] > 1.0
    assert "on promotion within the lead time + review" in reason.message
    others = [line for line in with_calendar.values() if line.sku != sku]
    assert not any(r.code == "promotion" for line in [*others, *without.values()]
                   for r in line.reasons)


def test_a_calendar_without_promotion_days_plans_as_without_one(warehouses):
    root, sku = warehouses
    quiet = root / "quiet"
    shutil.copytree(root / "plain", quiet)
    days = PAST_PROMOTIONS.append(PLANNED).strftime("%Y-%m-%d")
    pd.DataFrame({"sku": sku, "date": days, "promotion": 0}).to_csv(
        quiet / "warehouse" / "promotions.csv", index=False)
    without, listed = _lines(_run(root / "plain")), _lines(_run(quiet))
    assert {s: (line.quantity, line.forecast_lead_review) for s, line in listed.items()} == \
        {s: (line.quantity, line.forecast_lead_review) for s, line in without.items()}
    assert not any(r.code == "promotion" for line in listed.values() for r in line.reasons)
