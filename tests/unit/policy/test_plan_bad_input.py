"""The issue's bad inputs: each is a clear error or a documented decision, never a silent order."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from restock.config import Policy
from restock.errors import DataError, RestockError
from restock.policy import plan, stock_levels
from tests.unit.policy.test_plan import codes, item, offer, only_line, run


@pytest.mark.parametrize(("field", "value"), [
    ("lead_time_days", 0.0), ("lead_time_days", -3.0), ("unit_price", 0.0),
    ("pack_size", 0.0), ("moq", -1.0), ("currency", "euro"), ("unit_price", float("nan"))])
def test_a_bad_offer_is_set_aside_naming_sku_supplier_and_field(field, value):
    result = run([item()], [offer(**{field: value})])
    assert result.lines == []
    problem = result.problems[0]
    assert problem.code == "invalid_offer" and problem.data["field"] == field
    assert "sku=A supplier=north" in problem.message and field in problem.message
    skip = result.skipped[0]
    assert codes(skip.reasons)[-1] == "invalid_offer" and skip.shortfall_risk > 0


def test_a_bad_offer_does_not_stop_a_good_one():
    line = only_line(run([item()], [offer(supplier="broken", unit_price=0.0),
                                    offer(supplier="fine")]))
    assert line.supplier == "fine"


def test_moq_not_a_multiple_of_the_pack_is_rounded_up_to_whole_packs_with_a_reason():
    line = only_line(run([item(on_hand=0)], [offer(moq=500, pack_size=120)]))
    assert line.quantity == 600.0 and line.quantity % 120 == 0
    reason = next(r for r in line.reasons if r.code == "moq_rounded_to_pack")
    assert reason.data == {"moq": 500.0, "pack_size": 120.0, "effective_moq": 600.0}


def test_offers_in_another_currency_are_not_used():
    result = run([item()], [offer(currency="USD")])
    assert result.lines == []
    assert codes(result.skipped[0].reasons)[-1] == "currency"
    assert result.skipped[0].reasons[-1].data["currencies"] == ["USD"]


@pytest.mark.parametrize("written", [None, float("nan"), "", "  ", " EUR "])
def test_a_missing_blank_or_padded_currency_is_read_as_the_orgs(written):
    line = only_line(run([item()], [offer(currency=written)]))
    assert line.supplier == "north"


def test_each_offer_keeps_its_own_currency_among_many():
    offers = [offer(supplier=f"s{i}", currency=code, unit_price=5 + i)
              for i, code in enumerate(["USD", None, "eur", " USD", "EUR"])]
    result = run([item()], offers)
    assert only_line(result).supplier == "s1"            # the cheapest in the org's currency
    assert [p.data["supplier"] for p in result.problems] == ["s2"]   # lower case: not a code


def test_offers_all_above_the_max_bid_are_skipped_not_ordered():
    result = run([item()], [offer(unit_price=11), offer(supplier="b", unit_price=12)],
                 max_bid=10)
    assert result.lines == [] and codes(result.skipped[0].reasons)[-1] == "max_bid"


@pytest.mark.parametrize("settings", [{"service_level": 1.2}, {"service_level": 0.3},
                                      {"budget": 0}, {"max_bid": 0},
                                      {"review_period_days": 0}, {"lead_time_days": -1}])
def test_out_of_range_policy_settings_are_refused_naming_the_field(settings):
    with pytest.raises(ValidationError) as err:
        Policy(**settings)
    assert next(iter(settings)) in str(err.value)


def test_service_level_outside_the_open_interval_is_refused_by_the_library():
    with pytest.raises(ValueError, match="between 0 and 1"):
        from restock.policy import safety_stock_cycle
        safety_stock_cycle(10.0, 1.0)
    levels = stock_levels(1.0, 1.0, 5.0, 1.0, buffer_units=3.0)   # no service level needed
    assert levels.safety_stock[()] == 3.0


def test_missing_columns_and_duplicate_skus_are_data_errors_naming_them():
    frame = pd.DataFrame([item()]).drop(columns=["demand_sd"])
    with pytest.raises(DataError, match="items: missing column demand_sd"):
        plan(frame, pd.DataFrame([offer()]), Policy())
    with pytest.raises(DataError, match="items sku=A: the SKU appears more than once"):
        plan(pd.DataFrame([item(), item()]), pd.DataFrame([offer()]), Policy())
    with pytest.raises(RestockError, match="offers: missing column unit_price"):
        plan(pd.DataFrame([item()]), pd.DataFrame([offer()]).drop(columns="unit_price"),
             Policy())


@pytest.mark.parametrize(("field", "value"), [("demand_rate", float("nan")),
                                              ("demand_rate", -1.0), ("on_order", -5.0),
                                              ("demand_sd", "lots")])
def test_an_item_with_an_unusable_number_is_skipped_naming_the_field(field, value):
    result = run([item(**{field: value}), item("B", on_hand=0)], [offer(), offer("B")])
    assert [line.sku for line in result.lines] == ["B"]
    skip = next(s for s in result.skipped if s.sku == "A")
    assert skip.reasons[-1].code == "invalid_item" and field in skip.reasons[-1].message
    assert result.problems[0].data["field"] == field


def test_an_empty_catalogue_or_no_offers_plans_nothing_and_says_why():
    empty = plan(pd.DataFrame([item()]).iloc[:0], pd.DataFrame([offer()]), Policy())
    assert (empty.lines, empty.skipped, empty.holds) == ([], [], {})
    bare = plan(pd.DataFrame([item()]), pd.DataFrame([offer()]).iloc[:0], Policy())
    assert [codes(s.reasons)[-1] for s in bare.skipped] == ["no_offer"]
