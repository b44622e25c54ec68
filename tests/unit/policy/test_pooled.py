"""Pooled service levels in the live planner: the average target at the least stock value."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from restock.config import Policy
from restock.policy import plan, standard_normal_loss, stock_levels
from restock.policy.pooled import cycles_per_order

REVIEW, LEAD = 7.0, 14.0

# Fast movers (normal demand), mixed prices and spreads: what pooling trades between.
MIXED = [("cheap-steady", "tools", 12.0, 2.0, 1.5), ("cheap-erratic", "tools", 8.0, 7.0, 2.0),
         ("dear-steady", "tools", 10.0, 2.5, 90.0), ("dear-erratic", "tools", 6.0, 6.0, 120.0),
         ("middle", "tools", 15.0, 4.0, 20.0)]


def frames(rows, moq=0.0, pack=1.0):
    items = pd.DataFrame([{"sku": sku, "category": category, "on_hand": 0.0, "allocated": 0.0,
                           "on_order": 0.0, "backorders": 0.0, "demand_rate": rate,
                           "demand_sd": sd} for sku, category, rate, sd, _ in rows])
    offers = pd.DataFrame([{"sku": sku, "supplier": "north", "unit_price": price,
                            "lead_time_days": LEAD, "moq": moq, "pack_size": pack,
                            "currency": "EUR"} for sku, _, _, _, price in rows])
    return items, offers


def run(rows, moq=0.0, pack=1.0, **policy):
    items, offers = frames(rows, moq, pack)
    result = plan(items, offers, Policy(review_period_days=REVIEW, **policy),
                  as_of=date(2026, 3, 2), currency="EUR")
    assert not result.skipped and len(result.lines) == len(rows)
    return {line.sku: line for line in result.lines}


def safety_reason(line):
    return next(r for r in line.reasons if r.code == "safety_stock")


def factor_and_spread(line):
    """The safety factor and sd over lead time + review that the plan used for ``line``."""
    sd = next(r for r in line.reasons if r.code == "forecast").data["demand_sd"]
    return line.safety_stock / sd, sd


def cycle_service(line, orders=1.0):
    z, _ = factor_and_spread(line)
    return 1.0 - norm.sf(z) / orders


def exposed_service(line, excess):
    """Cycle service when an order exceeds a cycle's demand by ``excess`` units: the position
    after a review spreads over that excess (:mod:`restock.policy.exposure`)."""
    z, sd = factor_and_spread(line)
    if excess <= 0:
        return 1.0 - norm.sf(z)
    width = excess / sd
    return 1.0 - (standard_normal_loss(z) - standard_normal_loss(z + width)) / width


def stock_value(lines):
    return sum(line.safety_stock * line.unit_price for line in lines.values())


@pytest.mark.parametrize("level", [0.9, 0.95, 0.98])
def test_pooled_cycle_service_averages_the_target_for_less_stock_value(level):
    per_item = run(MIXED, service_level=level)
    pooled = run(MIXED, service_level=level, service_scope="pooled")
    assert [cycle_service(line) for line in per_item.values()] == pytest.approx([level] * 5)
    services = {sku: cycle_service(line) for sku, line in pooled.items()}
    assert np.mean(list(services.values())) == pytest.approx(level, abs=1e-6)
    assert stock_value(pooled) < stock_value(per_item)
    # the cheap, steady item gets more than the target, the dear erratic one less
    assert services["cheap-steady"] > level > services["dear-erratic"]


def test_pooled_fill_rate_is_the_pools_fill_for_less_stock_value():
    per_item = run(MIXED, service_level=0.95, service_measure="fill_rate")
    pooled = run(MIXED, service_level=0.95, service_measure="fill_rate", service_scope="pooled")
    short = demand = 0.0
    for sku, _, rate, _, _ in MIXED:
        z, sd = factor_and_spread(pooled[sku])
        short += sd * float(standard_normal_loss(z))
        demand += rate * REVIEW
    assert 1 - short / demand == pytest.approx(0.95, abs=1e-6)
    assert stock_value(pooled) < stock_value(per_item)


def test_an_order_lasting_several_reviews_counts_the_spread_of_positions():
    # MOQ 300 against 6 to 15 units a day: each order lasts several review cycles, and the
    # positions spread over its excess leave few of them exposed (97% on average at z = 0)
    pooled = run(MIXED, moq=300.0, service_level=0.98, service_scope="pooled")
    orders = {sku: float(cycles_per_order(rate * REVIEW, 1.0, 300.0))
              for sku, _, rate, _, _ in MIXED}
    assert min(orders.values()) > 2
    excess = {sku: 300.0 - rate * REVIEW for sku, _, rate, _, _ in MIXED}
    services = [exposed_service(pooled[sku], excess[sku]) for sku in orders]
    assert np.mean(services) == pytest.approx(0.98, abs=1e-6)
    reported = [safety_reason(pooled[sku]).data["item_level"] for sku in orders]
    assert reported == pytest.approx(services)
    once = [cycle_service(pooled[sku], n) for sku, n in orders.items()]
    assert abs(np.mean(once) - 0.98) > 0.005   # one exposed cycle per order counts otherwise


def test_cycles_per_order_counts_moq_and_packs_over_a_cycles_demand():
    assert cycles_per_order([10.0, 10.0, 10.0, 0.0], [1.0, 24.0, 1.0, 6.0],
                            [0.0, 0.0, 45.0, 100.0]) == pytest.approx([1.0, 2.4, 4.5, 1.0])


def test_a_category_pool_and_the_org_pool_are_met_separately():
    rows = MIXED + [(f"cat-{sku}", "paint", rate * 2, sd, price)
                    for sku, _, rate, sd, price in MIXED]
    lines = run(rows, service_level=0.95, service_scope="pooled",
                overrides={"categories": {"paint": {"service_level": 0.9}}})
    tools = [line for sku, line in lines.items() if not sku.startswith("cat-")]
    paint = [line for sku, line in lines.items() if sku.startswith("cat-")]
    assert np.mean([cycle_service(line) for line in tools]) == pytest.approx(0.95, abs=1e-6)
    assert np.mean([cycle_service(line) for line in paint]) == pytest.approx(0.90, abs=1e-6)
    assert {safety_reason(line).data["pool"] for line in tools} == {"org"}
    assert {safety_reason(line).data["pool"] for line in paint} == {"category:paint"}
    assert {safety_reason(line).data["pool_items"] for line in lines.values()} == {5}


def test_a_category_with_its_own_target_is_its_own_pool_even_at_the_org_level():
    rows = MIXED + [("paint-1", "paint", 9.0, 5.0, 3.0)]
    lines = run(rows, service_level=0.95, service_scope="pooled",
                overrides={"categories": {"paint": {"service_level": 0.95},
                                          "tools": {"review_period_days": REVIEW}}})
    assert safety_reason(lines["paint-1"]).data["pool"] == "category:paint"
    assert cycle_service(lines["paint-1"]) == pytest.approx(0.95, abs=1e-6)
    # a category override that leaves the service target alone stays in the org's pool
    assert safety_reason(lines["middle"]).data["pool"] == "org"


def test_the_reason_says_the_item_was_pooled_and_what_its_own_level_came_to():
    lines = run(MIXED, service_level=0.95, service_scope="pooled")
    reason = safety_reason(lines["cheap-steady"])
    data = reason.data
    assert (data["scope"], data["pool"], data["pool_items"], data["measure"]) == \
        ("pooled", "org", 5, "cycle")
    assert data["service_level"] == 0.95 and data["item_level"] > 0.95
    assert data["safety_factor"] == pytest.approx(norm.ppf(data["item_level"]))
    assert reason.message.startswith("safety stock ")
    assert "for 95% service on average over the org's 5 pooled items; this item's share is " \
        f"{data['item_level'] * 100:.4g}%" in reason.message
    assert lines["cheap-steady"].service_level == 0.95   # the line keeps the pool's target


def test_per_item_scope_is_todays_plan_and_says_so():
    lines = run(MIXED, service_level=0.95)
    data = safety_reason(lines["middle"]).data
    assert data["scope"] == "item" and "pool" not in data
    assert "on average" not in safety_reason(lines["middle"]).message


def test_fixed_buffers_and_skus_with_their_own_target_are_not_pooled():
    lines = run(MIXED, service_level=0.95, service_scope="pooled", overrides={
        "categories": {},
        "skus": {"cheap-steady": {"buffer": {"days_of_cover": 3}},
                 "cheap-erratic": {"buffer": {"units": 10}},
                 "dear-steady": {"service_level": 0.99},
                 "dear-erratic": {"service_scope": "item"}}})
    methods = {sku: safety_reason(line).data["method"] for sku, line in lines.items()}
    assert methods["cheap-steady"] == "days_of_cover" and methods["cheap-erratic"] == "units"
    assert cycle_service(lines["dear-steady"]) == pytest.approx(0.99)
    assert cycle_service(lines["dear-erratic"]) == pytest.approx(0.95)
    assert safety_reason(lines["dear-erratic"]).data["scope"] == "item"
    # the one item left in the pool meets the target alone
    assert safety_reason(lines["middle"]).data["pool_items"] == 1
    assert cycle_service(lines["middle"]) == pytest.approx(0.95, abs=1e-6)


def test_a_pooled_slow_mover_is_planned_on_its_normal_share_not_in_whole_units():
    rows = [("slow", "tools", 0.3, 0.5, 4.0), *MIXED]
    per_item = run(rows, service_level=0.95)
    pooled = run(rows, service_level=0.95, service_scope="pooled")
    assert safety_reason(per_item["slow"]).data["method"] == "poisson"
    assert safety_reason(pooled["slow"]).data["method"] == "normal"
    # 2.1 units a cycle, bought in whole units: an order of 3 exceeds it by 0.9
    excess = {sku: float(np.ceil(rate * REVIEW) - rate * REVIEW) for sku, _, rate, _, _ in rows}
    assert excess["slow"] == pytest.approx(0.9)
    services = [exposed_service(pooled[sku], extra) for sku, extra in excess.items()]
    assert np.mean(services) == pytest.approx(0.95, abs=1e-6)


def test_an_item_without_a_usable_offer_keeps_its_own_level_outside_the_pool():
    items, offers = frames(MIXED)
    offers.loc[offers["sku"] == "dear-erratic", "unit_price"] = 500.0
    result = plan(items, offers, Policy(review_period_days=REVIEW, service_scope="pooled",
                                        max_bid={"default": 200}), currency="EUR")
    skipped = next(s for s in result.skipped if s.sku == "dear-erratic")
    assert safety_reason(skipped).data["scope"] == "item"
    assert {safety_reason(line).data["pool_items"] for line in result.lines} == {4}


def test_a_safety_factor_replaces_the_level_of_service_items_only():
    levels = stock_levels([10.0, 10.0, 10.0, 10.0], 3.0, 14.0, 7.0, service_level=0.95,
                          buffer_units=[np.nan, 5.0, np.nan, np.nan],
                          cover_periods=[np.nan, np.nan, 2.0, np.nan],
                          safety_factor=[1.2, 1.2, 1.2, np.nan])
    spread = 3.0 * np.sqrt(21.0)
    assert levels.safety_stock == pytest.approx([1.2 * spread, 5.0, 20.0,
                                                 norm.ppf(0.95) * spread])
    assert list(levels.method) == ["normal", "units", "days_of_cover", "normal"]
