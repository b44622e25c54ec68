"""Service feedback: the shared correction, the live rule that closes a review cycle from a
snapshot, service groups, and the plan's corrected levels."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from restock.config import Policy
from restock.feedback import close_cycle, group_shift
from restock.insight import service_delivered
from restock.policy import (
    FEEDBACK_PRIOR,
    GroupShift,
    ServiceRecord,
    corrected_level,
    plan,
    service_correction,
)
from restock.policy.inputs import item_settings
from restock.store import ServiceCycle

END = date(2026, 3, 9)
START = END - timedelta(days=7)


def _record(served, asked=100):
    return ServiceRecord(cycles=[asked] * len(served),
                         stockout_cycles=[round(asked * (1 - s)) for s in served],
                         demand=[1000.0] * len(served), met=[1000.0 * s for s in served])


def test_the_replay_imports_the_one_correction():
    from restock import simulate

    assert simulate.service_correction is service_correction
    assert simulate.corrected_level is corrected_level
    assert simulate.ServiceRecord is ServiceRecord
    short = service_correction(_record([0.8]), 0.9)
    assert short == pytest.approx((norm.ppf(0.9) - norm.ppf(0.8)) * 100 / (100 + FEEDBACK_PRIOR))


def test_shifts_kept_in_force_give_the_shift_the_replay_works_out():
    served = [0.7, 0.8, 0.85, 0.9, 0.6, 0.95, 0.93]
    derived = []   # the shift in force in each cycle: the one decided after the cycles before
    for k in range(len(served)):
        derived.append(service_correction(_record(served[:k]), 0.95, window=4))
    kept = _record(served)
    kept.shifts = derived
    assert service_correction(kept, 0.95, window=4) == \
        pytest.approx(service_correction(_record(served), 0.95, window=4), abs=1e-12)
    kept.shifts = [1.0] * len(served)   # a different history of shifts gives another answer
    assert service_correction(kept, 0.95, window=4) != \
        pytest.approx(service_correction(_record(served), 0.95, window=4))


def _members(**columns):
    base = {"sku": ["A"], "on_hand": [5.0], "allocated": [0.0], "backorders": [0.0],
            "review_period_days": [7.0], "lead_time_days": [7.0]}
    base.update(columns)
    return pd.DataFrame(base)


def _sales(*rows):
    return pd.DataFrame(rows, columns=["sku", "date", "quantity"]).assign(
        date=lambda f: pd.to_datetime(f["date"]))


OLD = START - timedelta(days=100)


def test_a_backorder_at_the_snapshot_is_a_stockout_and_demand_asked():
    count = close_cycle(_members(backorders=[3.0], on_hand=[0.0]),
                        _sales(("A", OLD, 4), ("A", START + timedelta(days=2), 6)), START, END)
    assert count == (1, 1, 9.0, 6.0, 3.0)
    again = close_cycle(_members(backorders=[3.0], on_hand=[0.0]),
                        _sales(("A", OLD, 4), ("A", START, 6)), START, END,
                        backorders_before=3.0)
    assert again.units_asked == 6.0   # the same 3 still waiting are not asked again


def test_sold_in_the_cycle_and_nothing_free_left_is_a_stockout():
    sales = _sales(("A", OLD, 4), ("A", START, 6), ("B", OLD, 4), ("B", START, 6),
                   ("C", OLD, 4))
    members = _members(sku=["A", "B", "C"], on_hand=[2.0, 3.0, 0.0], allocated=[2.0, 0.0, 0.0],
                       backorders=[0.0] * 3, review_period_days=[7.0] * 3,
                       lead_time_days=[7.0] * 3)
    count = close_cycle(members, sales, START, END)
    # A sold and has all its stock promised; B has 3 free; C sold nothing this cycle, so an
    # empty shelf shows no unmet demand.
    assert (count.item_cycles, count.stockout_cycles, count.units_met) == (3, 1, 12.0)


def test_items_not_sold_for_a_year_or_not_yet_reachable_do_not_count():
    members = _members(sku=["dead", "new", "slow"], on_hand=[0.0] * 3, allocated=[0.0] * 3,
                       backorders=[1.0] * 3, review_period_days=[7.0] * 3,
                       lead_time_days=[7.0, 30.0, 7.0])
    sales = _sales(("dead", END - timedelta(days=400), 5),
                   ("new", START - timedelta(days=10), 5),   # first sale + 7 + 30 > START
                   ("slow", START - timedelta(days=14), 5))  # first sale + 7 + 7 <= START
    count = close_cycle(members, sales, START, END)
    assert (count.item_cycles, count.stockout_cycles) == (1, 1)
    assert close_cycle(members.iloc[:0], sales, START, END) == (0, 0, 0.0, 0.0, 0.0)


def _cycle(end, item_cycles=100, stockouts=20, shift_in_force=0.0):
    return ServiceCycle(org="acme", service_group="org", cycle_end=end, item_cycles=item_cycles,
                        stockout_cycles=stockouts, units_asked=100.0, units_met=90.0,
                        shift_in_force=shift_in_force)


def test_a_group_shift_rests_on_its_cycles_and_the_shifts_in_force():
    rows = [_cycle(END - timedelta(days=7 * k)) for k in (2, 1, 0)]
    shift = group_shift(rows, 0.95, fill_rate=False)
    weight = 300 / (300 + FEEDBACK_PRIOR)
    assert shift == GroupShift(pytest.approx(weight * (norm.ppf(0.95) - norm.ppf(0.8))), 300, 3)
    moved = group_shift([_cycle(r.cycle_end, shift_in_force=0.5) for r in rows], 0.95, False)
    assert moved.shift == pytest.approx(weight * (0.5 + norm.ppf(0.95) - norm.ppf(0.8)))
    fill = group_shift(rows, 0.9, fill_rate=True)   # 90% of units met: on target
    assert fill.shift == pytest.approx(0.0, abs=1e-12)
    assert group_shift([], 0.95, False) == GroupShift(0.0, 0, 0)


def test_the_summary_line_says_what_the_group_delivered():
    rows = [_cycle(END), _cycle(END - timedelta(days=7), stockouts=10)]
    cycle = service_delivered("org", "cycle", 0.95, rows, 0.4)
    assert (cycle.delivered, cycle.item_cycles, cycle.cycles, cycle.shift) == (0.85, 200, 2, 0.4)
    assert service_delivered("org", "fill_rate", 0.95, rows, 0.0).delivered == 0.9
    assert service_delivered("org", "cycle", 0.95, [], 0.0).delivered is None


def _items(*skus_and_categories):
    return pd.DataFrame([{"sku": sku, "category": category}
                         for sku, category in skus_and_categories])


def test_service_groups_follow_the_target_and_measure():
    policy = Policy(service_scope="pooled", overrides={
        "categories": {"spares": {"service_level": 0.9}, "bulk": {"service_scope": "item"},
                       "fixed": {"buffer": {"units": 5}}},
        "skus": {"PUMP": {"service_level": 0.99, "service_measure": "fill_rate"}}})
    items = _items(("A", "parts"), ("B", "spares"), ("C", "bulk"), ("D", "fixed"),
                   ("PUMP", "parts"))
    groups = item_settings(items, policy)["service_group"]
    # A fixed buffer has no group: None, or NaN where pandas (3.x) stores the column as strings.
    assert [None if pd.isna(g) else g for g in groups] == [
        "org", "category:spares", "item:cycle:0.95", None, "item:fill:0.99"]


def test_a_shift_moves_its_groups_level_only():
    policy = Policy(overrides={"categories": {"spares": {"service_level": 0.9}}})
    items = _items(("A", "parts"), ("B", "spares"))
    settings = item_settings(items, policy, {"item:cycle:0.95": GroupShift(0.3, 400, 8)})
    assert settings["asked_level"].tolist() == [0.95, 0.9]
    assert settings["service_level"].tolist() == [pytest.approx(norm.cdf(norm.ppf(0.95) + 0.3)),
                                                  0.9]
    assert settings["feedback_item_cycles"].tolist() == [400, 0]
    assert item_settings(items, policy, {"item:cycle:0.9": -0.2})["service_level"][1] == \
        pytest.approx(norm.cdf(norm.ppf(0.9) - 0.2))


def _plan(shift=None):
    items = pd.DataFrame([{"sku": "A", "category": "parts", "on_hand": 10.0, "allocated": 0.0,
                           "on_order": 0.0, "backorders": 0.0, "demand_rate": 5.0,
                           "demand_sd": 2.0}])
    offers = pd.DataFrame([{"sku": "A", "supplier": "north", "unit_price": 2.0,
                            "lead_time_days": 21.0}])
    return plan(items, offers, Policy(), currency="EUR", service_shift=shift).lines[0]


def test_the_plan_asks_the_corrected_level_and_says_why():
    plain, fed = _plan(), _plan({"item:cycle:0.95": GroupShift(0.5, 600, 12)})
    assert "service_feedback" not in [r.code for r in plain.reasons]
    assert fed.safety_stock == pytest.approx(plain.safety_stock * (norm.ppf(0.95) + 0.5)
                                             / norm.ppf(0.95))
    assert fed.order_up_to > plain.order_up_to
    codes = [r.code for r in fed.reasons]
    assert codes.index("service_feedback") == codes.index("safety_stock") + 1
    data = next(r for r in fed.reasons if r.code == "service_feedback").data
    assert data == {"asked_level": 0.95, "corrected_level": pytest.approx(
        norm.cdf(norm.ppf(0.95) + 0.5)), "shift": 0.5, "item_cycles": 600, "cycles": 12,
        "service_group": "item:cycle:0.95"}
    assert math.isclose(_plan({"item:cycle:0.95": 0.0}).order_up_to, plain.order_up_to)


def test_a_group_without_stock_history_is_left_alone():
    assert np.isclose(_plan({"org": 1.0}).order_up_to, _plan().order_up_to)


def test_service_feedback_is_on_by_default_and_a_bad_value_names_the_field(tmp_path,
                                                                            monkeypatch):
    from restock.config import load_org
    from restock.errors import ConfigError
    from tests.support.samples import MINIMAL_ORG

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "orgs" / "acme.yaml"
    path.parent.mkdir()
    path.write_text(MINIMAL_ORG)
    path.chmod(0o644)
    assert load_org(path).policy.service_feedback is True
    path.write_text(MINIMAL_ORG + "policy:\n  service_feedback: false\n")
    assert load_org(path).policy.service_feedback is False
    path.write_text(MINIMAL_ORG + "policy:\n  service_feedback: sometimes\n")
    with pytest.raises(ConfigError, match=r"acme.yaml:9: policy.service_feedback"):
        load_org(path)
    path.write_text(MINIMAL_ORG + "policy:\n  overrides:\n    categories:\n      spares:\n"
                    "        service_feedback: false\n")
    with pytest.raises(ConfigError, match="service_feedback"):   # org level only
        load_org(path)
