"""The policy backtest's per-item attainment: which items count, their service, the comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bench.policy_backtest import (
    MEASURES,
    _attainment,
    _baseline_items,
    _demand_cycles,
    _noting,
    _per_item,
)

from restock.forecast import to_panel
from restock.simulate import check_history, simulate
from tests.support.policies import fixed

CYCLE = MEASURES["cycle"]


def test_demand_cycles_count_only_an_items_last_reachable_cycles():
    # Three cycles of two periods; the last cycle runs to the end of the history.
    values = np.array([[1, 0, 0, 0, 3, 0, 1],      # demand in cycles 1 and 3
                       [0, 0, 2, np.nan, 0, 0, 0],  # demand in cycle 2 only
                       [5, 5, 5, 5, 5, 5, 5]])
    starts = [1, 3, 5]
    assert _demand_cycles(values, starts, np.array([3, 3, 3])).tolist() == [2, 1, 3]
    # Reachable for the last cycle only: cycle 2's demand no longer counts.
    assert _demand_cycles(values, starts, np.array([1, 1, 0])).tolist() == [1, 0, 0]


def test_attainment_shares_quantiles_and_items_left_below_half():
    service = np.array([1.0, 0.95, 0.93, 0.85, 0.4])
    row = _attainment(service, "item_cycle_service")
    assert row["item_cycle_service_items"] == 5
    assert row["item_cycle_service_share_within_5pp_of_0.9"] == pytest.approx(0.8)   # 0.85 in
    assert row["item_cycle_service_share_within_5pp_of_0.98"] == pytest.approx(0.6)   # >= 0.93
    assert row["item_cycle_service_share_within_5pp_of_0.95"] == pytest.approx(0.6)
    assert row["item_cycle_service_median"] == pytest.approx(0.93)
    assert row["item_cycle_service_p10"] == pytest.approx(np.quantile(service, 0.1))
    assert row["item_cycle_service_share_below_half"] == pytest.approx(0.2)


def test_attainment_without_items_is_null_not_a_crash():
    row = _attainment(np.array([]), "item_fill_rate")
    assert row["item_fill_rate_items"] == 0
    assert row["item_fill_rate_p10"] is None
    assert row["item_fill_rate_share_within_5pp_of_0.9"] is None


def test_per_item_service_from_a_replay_counts_items_with_enough_demand_cycles():
    weeks = 60
    demand = {"steady": [10.0] * weeks,
              "rare": [10.0 if w % 20 == 0 else 0.0 for w in range(weeks)]}
    rows = [{"item_id": item, "date": d.date().isoformat(), "quantity": q}
            for item, values in demand.items()
            for d, q in zip(pd.date_range("2024-01-01", periods=weeks, freq="W-MON"), values,
                            strict=True)]
    tidy = check_history(pd.DataFrame(rows))
    settings = pd.DataFrame({"item_id": list(demand), "lead_time": 2, "unit_cost": 1.0})
    panel = to_panel(tidy, freq="W")
    starts: list[int] = []
    # Order up to 25 against 30 needed over lead time + review: the steady item runs short.
    result = simulate(tidy, settings, _noting(fixed(25.0), starts), periods=24, review=2,
                      panel=panel)
    measured = [t for t in starts if t >= weeks - 24]
    row = _per_item(result.items, panel, measured)
    assert row["item_cycle_service_items"] == 1   # "rare" sells in one cycle of the window
    steady = result.items.set_index("item_id").loc["steady"]
    assert row["item_cycle_service_median"] == pytest.approx(
        1 - steady["reachable_stockout_cycles"] / steady["reachable_cycles"])
    assert row["item_cycle_service_median"] < 0.5
    assert row["item_fill_rate_median"] == pytest.approx(
        steady["reachable_met"] / steady["reachable_demand"])


def test_per_item_refuses_cycles_that_do_not_match_the_replays():
    rows = pd.DataFrame({"item_id": ["A"], "cycles": [3.0], "reachable_cycles": [3.0]})
    with pytest.raises(RuntimeError, match="measured review cycles"):
        _per_item(rows, None, [1, 2])


def test_baseline_attainment_is_read_at_restocks_service_and_its_share():
    share = "item_cycle_service_share_within_5pp_of_0.9"
    sweep = [{CYCLE: 0.80, share: 0.50, "avg_inventory_value": 100.0},
             {CYCLE: 0.90, share: 0.70, "avg_inventory_value": 200.0},
             {CYCLE: 0.95, share: 0.80, "avg_inventory_value": 300.0}]
    for point in sweep:
        point.update({f"item_cycle_service_{k}": 0.5 for k in
                      ("p10", "median", "share_below_half")})
    row = {"target": 0.9, CYCLE: 0.85, share: 0.75, "item_cycle_service_p10": 0.5}
    entry = _baseline_items("sba", sweep, CYCLE, row)
    assert entry["sba_items_within_5pp"] == pytest.approx(0.60)
    assert entry["sba_inventory_value_at_same_items_within_5pp"] == pytest.approx(250.0)
    row[share] = 0.9   # more than the sweep ever reaches
    assert _baseline_items("sba", sweep, CYCLE, row)[
        "sba_inventory_value_at_same_items_within_5pp"] is None


def test_baseline_value_at_restocks_tenth_percentile():
    p10 = "item_cycle_service_p10"
    sweep = [{CYCLE: 0.80, p10: 0.6, "avg_inventory_value": 100.0},
             {CYCLE: 0.90, p10: 0.8, "avg_inventory_value": 300.0}]
    for point in sweep:
        point.update({f"item_cycle_service_{k}": 0.5 for k in ("median", "share_below_half",
                                                               "share_within_5pp_of_0.9")})
    row = {"target": 0.9, CYCLE: 0.85, p10: 0.75, "item_cycle_service_share_within_5pp_of_0.9": 0.5}
    entry = _baseline_items("min_max", sweep, CYCLE, row)
    assert entry["min_max_items_p10"] == pytest.approx(0.7)
    assert entry["min_max_inventory_value_at_same_items_p10"] == pytest.approx(250.0)
