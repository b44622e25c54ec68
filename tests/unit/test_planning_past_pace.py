"""What the planner sets beside a forecast: each SKU's pace over the last year and the days
since it last sold, read off the panel the forecast was made from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.forecast import to_panel
from restock.planning import _add_past_pace


def _history(rows):
    return pd.DataFrame(rows, columns=["sku", "date", "quantity"]).assign(
        date=lambda f: pd.to_datetime(f["date"]))


@pytest.mark.parametrize("block", [8192, 2])     # the panel read a block of SKUs at a time
def test_daily_pace_over_the_last_year_and_quiet_days(monkeypatch, block):
    monkeypatch.setattr("restock.planning.PACE_BLOCK", block)
    end = pd.Timestamp("2026-11-24")          # the day before the planning date
    history = _history([
        ("A", "2025-06-01", 500.0),            # before the last 365 days: not counted
        ("A", "2026-01-10", 200.0), ("A", "2026-10-21", 165.0),
        ("B", "2026-11-24", 73.0),
        ("C", "2024-12-01", 5.0)])             # sold only before the last year
    panel = to_panel(history, freq="D", id_col="sku", end=end)
    items = pd.DataFrame({"sku": ["A", "B", "C", "D"]})
    _add_past_pace(items, panel, "D")
    pace = items.set_index("sku")
    assert pace.loc["A", "past_rate"] == pytest.approx(365 / 365)
    assert pace.loc["A", "quiet_days"] == (end - pd.Timestamp("2026-10-21")).days
    assert pace.loc["B", "past_rate"] == pytest.approx(73 / 365)
    assert pace.loc["B", "quiet_days"] == 0
    assert pace.loc["C", "past_rate"] == 0 and np.isnan(pace.loc["C", "quiet_days"])
    assert np.isnan(pace.loc["D", "past_rate"])        # no history at all


def test_weekly_buckets_count_in_days():
    history = _history([("A", "2026-11-02", 70.0), ("A", "2026-11-09", 7.0)])
    panel = to_panel(history, freq="W", id_col="sku", end=pd.Timestamp("2026-11-29"))
    items = pd.DataFrame({"sku": ["A"]})
    _add_past_pace(items, panel, "W")
    weeks = panel.values.shape[1]
    assert items.loc[0, "past_rate"] == pytest.approx(77 / (weeks * 7.0))
    assert items.loc[0, "quiet_days"] == 14.0          # two weekly buckets after the last sale
