"""The planner: quantities, offer choice, max bid, budget, guard holds and buffer semantics."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from restock.config import Guard, Policy
from restock.policy import exposed_level, plan


def item(sku="A", **values):
    row = {"sku": sku, "category": "parts", "description": f"item {sku}", "on_hand": 30.0,
           "allocated": 0.0, "on_order": 0.0, "backorders": 0.0, "demand_rate": 180 / 28,
           "demand_sd": 3.0}
    row.update(values)
    return row


def offer(sku="A", supplier="north", **values):
    row = {"sku": sku, "supplier": supplier, "unit_price": 2.0, "lead_time_days": 21.0,
           "moq": 0.0, "pack_size": 1.0, "min_qty": 0.0, "supplier_sku": f"{supplier}-{sku}",
           "currency": "EUR"}
    row.update(values)
    return row


def run(items, offers, errors=None, **policy):
    policy.setdefault("review_period_days", 7)
    return plan(pd.DataFrame(items), pd.DataFrame(offers), Policy(**policy),
                as_of=date(2026, 3, 2), currency="EUR", horizon_errors=errors)


def codes(reasons):
    return [r.code for r in reasons]


def only_line(result):
    assert len(result.lines) == 1, (result.lines, result.skipped)
    return result.lines[0]


def test_order_up_to_covers_lead_time_plus_review_with_service_safety_stock():
    line = only_line(run([item()], [offer(pack_size=120)]))
    horizon = 21 + 7
    sd = 3.0 * math.sqrt(horizon)
    # A pack of 120 lasts 2.7 review cycles of 45: the formula is asked less per cycle.
    safety = norm.ppf(float(exposed_level(0.95, 45.0, sd, 120.0, 0.0))) * sd
    assert line.forecast_lead_review == pytest.approx(180.0)
    assert line.safety_stock == pytest.approx(safety)
    assert line.order_up_to == pytest.approx(180 + safety)
    assert line.quantity == 240.0   # 180 + 6.1 - 30 = 156.1 → 2 packs of 120
    assert (line.inventory_position, line.on_hand, line.on_order) == (30.0, 30.0, 0.0)
    assert (line.review_period_days, line.service_level, line.moq) == (7.0, 0.95, 0.0)
    assert line.lead_time_days == 21.0 and line.supplier_sku == "north-A"
    assert codes(line.reasons)[:6] == ["forecast", "safety_stock", "inventory_position",
                                       "order_up_to", "offer", "rounded_to_pack"]
    packs = next(r for r in line.reasons if r.code == "rounded_to_pack")
    assert packs.message == "ordered 240 = 2 packs of 120" and packs.data["packs"] == 2


def test_position_counts_on_order_backorders_and_allocated():
    line = only_line(run([item(on_hand=50, on_order=20, backorders=5, allocated=15)], [offer()]))
    assert line.inventory_position == 50.0
    assert line.quantity == math.ceil(line.order_up_to - 50.0)


def test_nothing_is_ordered_when_the_position_covers_the_target():
    result = run([item(on_hand=1000)], [offer()])
    assert result.lines == [] and result.skipped == [] and result.holds == {}


def test_quantity_is_raised_to_the_moq_and_an_odd_moq_to_whole_packs():
    line = only_line(run([item(on_hand=150)], [offer(moq=250, pack_size=12)]))
    assert line.quantity == 252.0 and line.moq == 252.0
    assert {"moq_rounded_to_pack", "raised_to_moq"} <= set(codes(line.reasons))


def test_maximum_order_quantity_caps_to_whole_packs():
    line = only_line(run([item(on_hand=0)], [offer(pack_size=24)], max_order_quantity=100))
    assert line.quantity == 96.0
    assert "capped_max_quantity" in codes(line.reasons)


def test_max_quantity_below_the_moq_skips_with_the_reason():
    result = run([item(on_hand=0)], [offer(moq=500)], max_order_quantity=100)
    assert result.lines == []
    assert codes(result.skipped[0].reasons)[-1] == "moq_above_max_quantity"


def test_cheapest_offer_that_arrives_in_time_wins():
    offers = [offer(supplier="fast", unit_price=3.0, lead_time_days=5),
              offer(supplier="cheap", unit_price=2.0, lead_time_days=10),
              offer(supplier="cheapest_but_late", unit_price=1.0, lead_time_days=60)]
    line = only_line(run([item(on_hand=100)], offers))   # about 15 days of cover
    assert line.supplier == "cheap" and line.unit_price == 2.0
    assert line.reasons[4].data["offers_considered"] == 3
    assert line.reasons[4].data["expected_arrival"] == "2026-03-12"


def test_an_sku_with_an_open_order_stays_with_that_orders_supplier_while_it_is_in_time():
    offers = [offer(supplier="fast", unit_price=3.0, lead_time_days=10),
              offer(supplier="slow", unit_price=2.0, lead_time_days=40)]
    # yesterday's order from "fast" counts as on order: "slow" now looks in time too
    yesterday = item(on_hand=100, on_order=180)                 # about 43 days of cover
    switched = only_line(run([yesterday], offers))
    kept = run([{**yesterday, "open_supplier": "fast"}], offers)
    assert switched.supplier == "slow"          # the bigger order a longer lead time asks for
    assert kept.lines == [] or kept.lines[0].supplier == "fast"
    stuck = only_line(run([{**item(on_hand=100, on_order=0), "open_supplier": "slow"}], offers))
    assert stuck.supplier == "fast"             # the open order's supplier is too late now
    assert not stuck.reasons[4].data["kept_open_order_supplier"]
    monthly = {"review_period_days": 60}       # a long review: both offers leave a need
    open_fast = {**item(on_hand=100, on_order=200), "open_supplier": "fast"}
    kept_line = only_line(run([open_fast], offers, **monthly))
    assert kept_line.supplier == "fast" and kept_line.reasons[4].data["kept_open_order_supplier"]
    assert "already open" in kept_line.reasons[4].message
    unkept = only_line(run([{**open_fast, "open_supplier": None}], offers, **monthly))
    assert unkept.supplier == "slow" and unkept.quantity > kept_line.quantity


def test_when_nothing_arrives_in_time_the_fastest_offer_is_taken_and_flagged():
    offers = [offer(supplier="slow", unit_price=1.0, lead_time_days=30),
              offer(supplier="fast", unit_price=5.0, lead_time_days=7)]
    line = only_line(run([item(on_hand=0)], offers))
    assert line.supplier == "fast"
    assert "arrives_late" in codes(line.reasons)


def test_a_price_break_applies_only_from_its_quantity():
    breaks = [offer(unit_price=2.0, min_qty=0), offer(unit_price=1.5, min_qty=200)]
    small = only_line(run([item(on_hand=30)], breaks))     # needs about 177
    large = only_line(run([item(on_hand=0, demand_rate=10)], breaks))
    assert small.unit_price == 2.0 and small.quantity < 200
    assert large.unit_price == 1.5 and large.quantity >= 200


def test_a_suppliers_only_break_acts_as_its_minimum():
    line = only_line(run([item(on_hand=100)], [offer(min_qty=300)]))
    assert line.quantity == 300.0 and "raised_to_price_break" in codes(line.reasons)


def test_max_bid_excludes_dear_offers_and_skips_with_the_risk_when_none_is_left():
    offers = [offer(supplier="dear", unit_price=12.0, lead_time_days=5),
              offer(supplier="fair", unit_price=9.0, lead_time_days=40)]
    line = only_line(run([item()], offers, max_bid=10))
    assert line.supplier == "fair"
    result = run([item()], offers, max_bid={"default": 10, "skus": {"A": 8}})
    assert result.lines == []
    skip = result.skipped[0]
    assert codes(skip.reasons)[-1] == "max_bid" and skip.reasons[-1].data["max_bid"] == 8
    assert skip.wanted_quantity > 0 and 0.9 < skip.shortfall_risk <= 1.0


def test_budget_keeps_the_lines_that_avoid_most_shortage_per_currency_unit():
    items = [item("urgent", on_hand=0), item("comfortable", on_hand=170),
             item("dear", on_hand=0)]
    offers = [offer("urgent"), offer("comfortable"), offer("dear", unit_price=20.0)]
    free = run(items, offers)
    values = {line.sku: line.value for line in free.lines}
    budget = values["urgent"] + values["comfortable"] + 1.0
    result = run(items, offers, budget=budget)
    assert {line.sku for line in result.lines} == {"urgent", "comfortable"}
    assert result.spend <= budget
    cut = result.skipped[0]
    assert cut.sku == "dear" and cut.reasons[-1].code == "budget"
    assert cut.shortfall_risk > 0.99 and cut.reasons[-1].data["value"] == values["dear"]


def test_budget_prefers_urgent_need_over_topping_up():
    items = [item("urgent", on_hand=0), item("topping_up", on_hand=170)]
    offers = [offer("urgent"), offer("topping_up")]
    values = {line.sku: line.value for line in run(items, offers).lines}
    result = run(items, offers, budget=max(values.values()) + 1)
    assert [line.sku for line in result.lines] == ["urgent"]
    assert [s.sku for s in result.skipped] == ["topping_up"]


def test_guard_holds_lines_far_above_usual_and_low_confidence_forecasts():
    items = [item("big", on_hand=0, usual_order_qty=20), item("normal", usual_order_qty=150),
             item("unsure", forecast_confidence=0.1)]
    offers = [offer("big"), offer("normal"), offer("unsure")]
    result = plan(pd.DataFrame(items), pd.DataFrame(offers), Policy(review_period_days=7),
                  guard=Guard(max_multiple_of_usual=4, min_forecast_confidence=0.3))
    assert set(result.holds) == {"big", "unsure"}
    assert codes(result.holds["big"]) == ["above_usual"]
    assert result.holds["big"][0].data["multiple"] > 4
    assert codes(result.holds["unsure"]) == ["low_confidence"]
    assert {line.sku for line in result.lines} == {"big", "normal", "unsure"}


def test_buffer_as_units_days_of_cover_and_fill_rate_per_category_and_sku():
    items = [item("U", category="units"), item("D", category="cover"),
             item("F", category="other"), item("C", category="other")]
    overrides = {"categories": {"units": {"buffer": {"units": 40}},
                                "cover": {"buffer": {"days_of_cover": 10}}},
                 "skus": {"F": {"service_measure": "fill_rate", "service_level": 0.98}}}
    result = run(items, [offer(s) for s in "UDFC"], overrides=overrides)
    by_sku = {line.sku: line for line in result.lines}
    assert by_sku["U"].safety_stock == 40.0 and by_sku["U"].service_level is None
    assert by_sku["D"].safety_stock == pytest.approx(10 * 180 / 28)
    assert by_sku["C"].safety_stock == pytest.approx(norm.ppf(0.95) * 3 * math.sqrt(28))
    fill = by_sku["F"]   # fill rate: expected short per cycle = 2% of a review period's demand
    from restock.policy import normal_loss
    short = normal_loss(fill.order_up_to, 180.0, 3 * math.sqrt(28))
    assert short == pytest.approx(0.02 * 7 * 180 / 28, rel=1e-6)
    assert fill.service_level == 0.98
    assert next(r for r in fill.reasons if r.code == "safety_stock").data["measure"] == \
        "fill_rate"


def test_buffer_service_level_overrides_the_org_level():
    line = only_line(run([item()], [offer()], buffer={"service_level": 0.99}))
    assert line.safety_stock == pytest.approx(norm.ppf(0.99) * 3 * math.sqrt(28))


def test_slow_movers_are_planned_in_whole_units():
    line = only_line(run([item(on_hand=0, demand_rate=0.05, demand_sd=0.25)], [offer()]))
    method = next(r for r in line.reasons if r.code == "safety_stock").data["method"]
    assert method in ("poisson", "negative_binomial")
    assert line.order_up_to == int(line.order_up_to)


# Past errors over lead time + review, standardised by the square root of the forecast: 1..100
ERRORS = np.arange(1.0, 101.0) / 50 - 1.0   # -0.98 .. 1.0 in steps of 0.02


def test_a_cycle_target_reads_its_level_off_the_orgs_past_errors():
    items = [item("C"), item("F", category="fill"), item("P", category="pool"),
             item("U", category="units"), item("L", lead_time_sd_days=5.0),
             item("M"), item("Z", demand_rate=0.0, demand_sd=0.0, on_hand=-5.0)]
    overrides = {"categories": {"fill": {"service_measure": "fill_rate"},
                                "units": {"buffer": {"units": 40}},
                                "pool": {"service_scope": "pooled"}}}
    offers = [offer(s) for s in "CFPULZ"] + [offer("M", pack_size=200)]
    result = run(items, offers, errors=np.append(ERRORS, [np.nan, np.inf]),
                 overrides=overrides)
    by_sku = {line.sku: line for line in result.lines}
    method = {sku: next(r for r in line.reasons if r.code == "safety_stock").data["method"]
              for sku, line in by_sku.items()}
    # 0.95 of the 100 finite errors: the 95th, 0.9; over 28 days the forecast is 180 units
    assert by_sku["C"].order_up_to == pytest.approx(180 + 0.9 * math.sqrt(180))
    assert method["C"] == "error_quantile"
    reason = next(r for r in by_sku["C"].reasons if r.code == "safety_stock")
    assert "read off the org's past forecast errors" in reason.message
    # an order of 200 outlasts four review cycles: a lower quantile is asked of each interval
    asked = float(exposed_level(0.95, 45.0, 3.0 * math.sqrt(28), 200.0, 0.0))
    k = ERRORS[math.ceil(asked * 100 - 1e-9) - 1]
    assert asked < 0.95 and by_sku["M"].order_up_to == pytest.approx(180 + k * math.sqrt(180))
    # a fill rate, a pooled target, a fixed buffer and a lead-time spread keep their rules
    assert {method[s] for s in "FPUL"} == {"normal", "units"} and method["U"] == "units"
    plain = {line.sku: line for line in run(items, offers, overrides=overrides).lines}
    for sku in "FPUL":
        assert by_sku[sku].order_up_to == pytest.approx(plain[sku].order_up_to)
    # no demand expected: nothing to read a spread for; the backorder alone is ordered
    assert by_sku["Z"].order_up_to == plain["Z"].order_up_to
    unknown = {line.sku: line for line in run(items, offers, errors=np.array([np.nan]),
                                              overrides=overrides).lines}
    assert unknown["C"].order_up_to == plain["C"].order_up_to   # no finite error: normal


def test_a_level_read_off_the_errors_reports_its_risk_and_shortage_off_them_too():
    # 180 units expected over 28 days; stock half a square root above it: k = 0.5, and a
    # quarter of the pooled errors (0.52 .. 1.0) exceed it; every offer is above the max bid
    scale = math.sqrt(180)
    items = [item("dear", on_hand=180 + 0.5 * scale), item("cut", on_hand=0.0),
             item("kept", on_hand=0.0)]
    offers = [offer("dear", unit_price=90.0), offer("cut", unit_price=30.0), offer("kept")]
    pooled = run(items, offers, errors=ERRORS, max_bid={"default": 40}, budget=400.0)
    normal = run(items, offers, max_bid={"default": 40}, budget=400.0)
    skip = {s.sku: s for s in pooled.skipped}
    assert skip["dear"].shortfall_risk == pytest.approx(0.25)
    bid = next(r for r in skip["dear"].reasons if r.code == "max_bid")
    excess = np.maximum(ERRORS - 0.5, 0).mean() * scale
    assert bid.data["expected_short"] == pytest.approx(excess)
    plain = next(s for s in normal.skipped if s.sku == "dear")
    assert plain.shortfall_risk == pytest.approx(norm.sf(0.5 * scale / (3 * math.sqrt(28))))
    # the budget ranks by the shortage the pooled errors expect, and reports it
    cut = next(r for r in skip["cut"].reasons if r.code == "budget")
    assert cut.data["expected_short"] == pytest.approx(scale * np.maximum(
        ERRORS + 180 / scale, 0).mean())
    assert [line.sku for line in pooled.lines] == ["kept"]


def test_lead_time_variability_raises_safety_stock():
    steady = only_line(run([item()], [offer()]))
    shaky = only_line(run([item(lead_time_sd_days=5.0)], [offer()]))
    assert shaky.safety_stock > steady.safety_stock


def test_offer_without_lead_time_uses_the_configured_one():
    line = only_line(run([item()], [offer(lead_time_days=None)], lead_time_days=30))
    assert line.lead_time_days == 30.0 and "default_lead_time" in codes(line.reasons)


def test_need_without_any_offer_is_reported():
    result = run([item("lonely", on_hand=0)], [offer("other", unit_price=1.0)])
    skip = next(s for s in result.skipped if s.sku == "lonely")
    assert codes(skip.reasons)[-1] == "no_offer" and skip.shortfall_risk > 0.9


def test_what_whole_lines_leave_of_the_budget_buys_a_smaller_order_in_whole_packs():
    items = [item("urgent", on_hand=0), item("second", on_hand=0, demand_rate=5)]
    offers = [offer("urgent"), offer("second", unit_price=3.0, pack_size=10)]
    values = {line.sku: line for line in run(items, offers).lines}
    budget = values["urgent"].value + 0.5 * values["second"].value
    result = run(items, offers, budget=budget)
    by_sku = {line.sku: line for line in result.lines}
    reduced = by_sku["second"]
    assert by_sku["urgent"].quantity == values["urgent"].quantity
    assert 0 < reduced.quantity < values["second"].quantity and reduced.quantity % 10 == 0
    assert result.spend <= budget and budget - result.spend < 30   # less than one more pack
    reason = next(r for r in reduced.reasons if r.code == "reduced_by_budget")
    assert reason.data == {"wanted": values["second"].quantity, "quantity": reduced.quantity}
    assert result.skipped == []


def test_the_plan_leaves_the_collector_as_it_found_it():
    import gc

    result = run([item(sku=f"S{i}") for i in range(50)], [offer(sku=f"S{i}") for i in range(50)])
    assert len(result.lines) == 50 and all(isinstance(r.code, str) for r in result.lines[0].reasons)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()   # a caller that turned it off keeps it off
    try:
        run([item()], [offer()])
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()    # objects frozen by someone else (a pre-fork server) stay frozen
    try:
        frozen = gc.get_freeze_count()
        run([item()], [offer()])
        assert gc.get_freeze_count() > frozen // 2 > 0   # (some frozen objects die meanwhile)
    finally:
        gc.unfreeze()


def test_with_columns_leaves_its_input_as_it_was():
    from restock.policy.inputs import with_columns

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "s": ["x", "y"]})
    before = frame.copy(deep=True)
    out = with_columns(frame, b=[0.0, 0.0], s=["k", "k"], new=[5, 6])
    pd.testing.assert_frame_equal(frame, before)
    assert out.columns.tolist() == ["a", "b", "s", "new"]
    assert out["b"].tolist() == [0.0, 0.0] and out["new"].tolist() == [5, 6]


def test_a_forecast_far_below_the_last_years_pace_is_set_beside_it():
    # A: its model expects 0.5 a day after 34 quiet days, where the last year sold 3 a day;
    # B: forecast at its pace; C: no past pace known (a library caller without history)
    items = [item("A", demand_rate=0.5, past_rate=3.0, quiet_days=34.0, on_hand=0.0),
             item("B", demand_rate=3.0, past_rate=3.2, quiet_days=1.0, on_hand=0.0),
             item("C", demand_rate=0.5, on_hand=0.0)]
    result = run(items, [offer("A"), offer("B"), offer("C")])
    forecast = {line.sku: next(r for r in line.reasons if r.code == "forecast")
                for line in result.lines}
    assert forecast["A"].message == ("forecast 14 over 21 days lead time + 7 days review (the "
                                     "last year's pace would give 84; nothing sold for 34 days)")
    assert forecast["A"].data["past_units"] == pytest.approx(84.0)
    assert forecast["A"].data["quiet_days"] == 34.0
    for sku in ("B", "C"):
        assert "pace" not in forecast[sku].message and "past_units" not in forecast[sku].data


def test_the_forecast_reason_names_its_model_and_why_it_was_kept():
    items = [item("A", demand_rate=2.0, on_hand=0.0, model="TSB", chosen_by="backtest"),
             item("B", demand_rate=2.0, on_hand=0.0, model="SES", chosen_by="steady"),
             item("C", demand_rate=2.0, on_hand=0.0, model="Croston", chosen_by="previous"),
             item("D", demand_rate=2.0, on_hand=0.0, model="none", chosen_by=None),
             item("E", demand_rate=2.0, on_hand=0.0)]       # a library caller's: no model
    result = run(items, [offer(sku) for sku in "ABCDE"])
    forecast = {line.sku: next(r for r in line.reasons if r.code == "forecast")
                for line in result.lines}
    assert forecast["A"].message.startswith("forecast 56 by TSB over 21 days lead time")
    assert forecast["B"].message.startswith(
        "forecast 56 by SES (no other model clearly better) over 21 days")
    assert forecast["C"].message.startswith("forecast 56 by Croston (last run's model) over")
    for sku in "DE":
        assert forecast[sku].message.startswith("forecast 56 over 21 days")
        assert "model" not in forecast[sku].data
    assert (forecast["B"].data["model"], forecast["B"].data["chosen_by"]) == ("SES", "steady")


def test_the_forecast_reason_carries_the_demand_quantiles_it_was_given():
    levels = {"q0.5": 54.0, "q0.9": 71.5, "q0.95": 77.0}
    items = [item("A", demand_rate=2.0, on_hand=0.0, model="TSB", chosen_by="backtest",
                  demand_quantiles=levels),
             item("B", demand_rate=2.0, on_hand=0.0, model="SES", chosen_by="backtest",
                  demand_quantiles=None),
             item("C", demand_rate=2.0, on_hand=0.0)]       # a library caller's: none given
    result = run(items, [offer(sku) for sku in "ABC"])
    forecast = {line.sku: next(r for r in line.reasons if r.code == "forecast")
                for line in result.lines}
    assert forecast["A"].data["quantiles"] == levels
    assert "quantiles" not in forecast["B"].data and "quantiles" not in forecast["C"].data
