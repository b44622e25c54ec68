"""Exposure per order in the live planner: a per-item cycle target asks of the formula what the
replay asks when an offer's MOQ or packs make one order outlast a review cycle."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from restock.config import Policy
from restock.policy import exposed_level, plan, standard_normal_loss
from restock.policy.exposure import short_cycle_factor
from restock.policy.feedback import GroupShift, corrected_level

RATE, SD, LEAD, REVIEW = 10.0, 4.0, 14.0, 7.0   # a cycle's demand: 70 units
SPREAD = SD * math.sqrt(LEAD + REVIEW)


def run(moq=0.0, pack=1.0, on_hand=100.0, service_shift=None, min_qty=0.0, **policy):
    items = pd.DataFrame([{"sku": "A", "category": "parts", "description": "", "on_hand": on_hand,
                           "allocated": 0.0, "on_order": 0.0, "backorders": 0.0,
                           "demand_rate": RATE, "demand_sd": SD}])
    offers = pd.DataFrame([{"sku": "A", "supplier": "north", "unit_price": 2.0,
                            "lead_time_days": LEAD, "moq": moq, "pack_size": pack,
                            "min_qty": min_qty, "currency": "EUR"}])
    result = plan(items, offers, Policy(review_period_days=REVIEW, **policy),
                  as_of=date(2026, 3, 2), currency="EUR", service_shift=service_shift)
    assert len(result.lines) == 1, (result.lines, result.skipped)
    return result.lines[0]


def safety(line):
    return next(r for r in line.reasons if r.code == "safety_stock")


def test_an_moq_bound_item_asks_less_of_the_formula_and_stocks_less():
    free, bound = run(), run(moq=350.0)   # an order of 350 lasts five cycles of 70
    asked = safety(bound).data["exposed_level"]
    assert asked == pytest.approx(float(exposed_level(0.95, 70.0, SPREAD, 1.0, 350.0)))
    assert 0.5 <= asked < 0.95
    assert safety(bound).data["cycles_per_order"] == pytest.approx(5.0)
    assert bound.safety_stock == pytest.approx(norm.ppf(asked) * SPREAD)
    assert bound.order_up_to < free.order_up_to
    assert free.safety_stock == pytest.approx(norm.ppf(0.95) * SPREAD)
    assert bound.service_level == 0.95   # the target stays what the org asked


def test_a_lowest_price_break_that_acts_as_a_minimum_is_exposed_like_an_moq():
    # The supplier's only (so lowest) break is 350: no order can be smaller, as with an MOQ.
    broken, bound = run(min_qty=350.0), run(moq=350.0)
    assert broken.quantity >= 350.0
    assert safety(broken).data["exposed_level"] == pytest.approx(
        safety(bound).data["exposed_level"])
    assert safety(broken).data["cycles_per_order"] == pytest.approx(5.0)
    assert broken.order_up_to == pytest.approx(bound.order_up_to)


def test_the_reason_says_what_was_asked_and_why():
    reason = safety(run(moq=350.0))
    assert "asked of the formula" in reason.message and "lasts 5 review cycles" in reason.message
    assert reason.data["service_level"] == 0.95


def test_a_fast_mover_whose_order_fits_a_cycle_is_unchanged():
    free, fitting = run(), run(moq=60.0, pack=10.0)   # 70 in whole packs of 10: no excess
    assert fitting.order_up_to == free.order_up_to
    assert "exposed_level" not in safety(fitting).data
    assert "asked of the formula" not in safety(fitting).message


def test_packs_count_like_an_moq():
    assert run(pack=200.0).order_up_to < run().order_up_to


def test_a_fill_rate_keeps_its_level():
    free = run(service_measure="fill_rate")
    bound = run(moq=350.0, service_measure="fill_rate")
    assert bound.safety_stock == pytest.approx(free.safety_stock)
    assert "exposed_level" not in safety(bound).data


def test_a_pooled_item_keeps_the_pooled_rule():
    bound = run(moq=350.0, service_scope="pooled")
    data = safety(bound).data
    assert data["scope"] == "pooled" and "exposed_level" not in data


def test_fixed_buffers_keep_their_units():
    bound = run(moq=350.0, buffer={"units": 12})
    assert bound.safety_stock == 12.0 and "exposed_level" not in safety(bound).data


def test_the_level_exposed_is_the_one_the_service_feedback_corrected():
    shift = {"item:cycle:0.95": GroupShift(0.4, item_cycles=200, cycles=40)}
    line = run(moq=350.0, service_shift=shift)
    corrected = corrected_level(0.95, 0.4)
    assert line.service_level == pytest.approx(corrected)
    assert safety(line).data["exposed_level"] == pytest.approx(
        float(exposed_level(corrected, 70.0, SPREAD, 1.0, 350.0)))


def test_each_offer_is_asked_with_its_own_moq():
    items = pd.DataFrame([{"sku": "A", "category": "parts", "description": "", "on_hand": 0.0,
                           "allocated": 0.0, "on_order": 0.0, "backorders": 0.0,
                           "demand_rate": RATE, "demand_sd": SD}])
    offers = pd.DataFrame([{"sku": "A", "supplier": s, "unit_price": p, "lead_time_days": LEAD,
                            "moq": m, "pack_size": 1.0, "min_qty": 0.0, "currency": "EUR"}
                           for s, p, m in (("north", 2.0, 700.0), ("south", 3.0, 0.0))])
    cheap = plan(items, offers, Policy(review_period_days=REVIEW), currency="EUR").lines[0]
    assert cheap.supplier == "north"
    assert safety(cheap).data["cycles_per_order"] == pytest.approx(10.0)
    alone = plan(items, offers[offers["supplier"] == "south"], Policy(review_period_days=REVIEW),
                 currency="EUR").lines[0]
    assert cheap.order_up_to < alone.order_up_to


@pytest.mark.parametrize("width", [0.0, 1e-7, 2e-6, 0.3, 1.0, 4.0, 25.0, 400.0])
@pytest.mark.parametrize("level", [0.5, 0.8, 0.95, 0.999])
def test_the_factor_solves_the_uniform_position_short_share(width, level):
    z = float(short_cycle_factor(1.0 - level, width))
    low, high = norm.ppf(0.5), norm.ppf(0.9999)
    if width > 1e-6:
        short = (standard_normal_loss(z) - standard_normal_loss(z + width)) / width
    else:
        short = norm.sf(z)
    if low < z < high:
        assert short == pytest.approx(1.0 - level, rel=1e-9)
    else:   # clipped: the share at the bound is on the right side of the target
        assert (z == low and short <= 1.0 - level) or (z == high and short >= 1.0 - level)


def test_the_fill_rate_arithmetic_is_one_protection_interval_per_order():
    levels = exposed_level(0.99, np.array([10.0, 10.0]), 5.0, 1.0, np.array([10.0, 40.0]),
                           units=True)
    assert list(levels) == pytest.approx([0.99, 0.96])
