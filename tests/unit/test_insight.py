"""Projected stockouts: who is at risk, and no date arithmetic that overflows."""

from __future__ import annotations

from datetime import date

import pandas as pd

from restock.insight import stockouts

AS_OF = date(2026, 11, 25)


def items(**columns) -> pd.DataFrame:
    base = {"sku": ["A"], "description": ["a"], "on_hand": [10.0], "allocated": [0.0],
            "backorders": [0.0], "demand_rate": [1.0], "demand_sd": [0.5],
            "lead_time_days": [14.0], "review_period_days": [7.0]}
    base.update(columns)
    return pd.DataFrame(base)


def test_an_item_that_runs_out_before_its_delivery_is_at_risk():
    [risk] = stockouts(items(), {}, AS_OF)
    assert risk.sku == "A" and risk.stockout_date == date(2026, 12, 5)
    assert risk.next_delivery == date(2026, 12, 16) and risk.probability > 0.99
    assert risk.shortfall_units == 11 and not risk.ordered


def test_ordering_now_moves_the_delivery_to_the_lead_time():
    [risk] = stockouts(items(), {"A": 30.0}, AS_OF)
    assert risk.ordered and risk.next_delivery == date(2026, 12, 9)


def test_plenty_of_stock_or_no_demand_is_no_risk():
    assert stockouts(items(on_hand=[500.0]), {}, AS_OF) == []
    assert stockouts(items(demand_rate=[0.0], demand_sd=[0.0]), {}, AS_OF) == []


def test_a_trickle_of_demand_never_overflows_the_calendar():
    # a wide spread makes it a risk; at this rate the stock would last millions of years
    [risk] = stockouts(items(on_hand=[1.0], demand_rate=[1e-9], demand_sd=[10.0]), {}, AS_OF)
    assert risk.stockout_date is None and risk.probability > 0.4
