"""Property: whatever a source hands over, cleaning and planning end in a plan or a RestockError,
and no order line is ever negative, NaN or infinite.

Frames are drawn cell by cell from a mix of good values and garbage (NaN, infinities, negatives,
huge numbers, text, blanks, odd dates, unknown and empty SKUs, duplicates), then cleaned and
planned by the same code the cycle runs (a dry run: nothing is written to the ledger).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restock.clean import clean_snapshot
from restock.config import OrgConfig
from restock.domain import Snapshot
from restock.errors import RestockError
from restock.orders import OrderBook
from restock.planning import plan_snapshot

AS_OF = date(2024, 7, 1)
SKUS = st.sampled_from(["A", "B", "C", "D", "", " ", "nan", "Ä-1"])
NUMBERS = st.one_of(
    st.floats(min_value=0, max_value=500),                     # mostly sensible
    st.integers(min_value=0, max_value=50),
    st.floats(allow_nan=True, allow_infinity=True),            # anything a float can be
    st.integers(min_value=-10**6, max_value=10**15),
    st.none(),
    st.sampled_from(["lots", "", "1e309", "-0", "NaN", "inf", "12,5", "3 kg"]),
)
DATES = st.one_of(
    st.dates(min_value=date(2024, 3, 1), max_value=date(2024, 8, 1)).map(pd.Timestamp),
    st.none(),
    st.sampled_from(["2024-02-30", "yesterday", "", "1900-01-01", "2999-12-31"]),
)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype=object)


CATALOG = st.lists(st.fixed_dictionaries({"sku": SKUS, "description": st.just("part"),
                                          "category": st.sampled_from(["hw", None]),
                                          "unit": st.sampled_from(["each", "kg", None])}),
                   max_size=5)
OFFERS = st.lists(st.fixed_dictionaries({
    "sku": SKUS, "supplier": st.sampled_from(["s1", "s2", "", None]), "unit_price": NUMBERS,
    "lead_time_days": NUMBERS, "moq": NUMBERS, "pack_size": NUMBERS, "min_qty": NUMBERS,
    "currency": st.sampled_from(["EUR", "USD", None])}), max_size=6)
POSITIONS = st.lists(st.fixed_dictionaries({
    "sku": SKUS, "location": st.sampled_from(["main", "back"]), "on_hand": NUMBERS,
    "allocated": NUMBERS, "on_order": NUMBERS, "backorders": NUMBERS}), max_size=6)
HISTORY = st.lists(st.fixed_dictionaries({
    "sku": SKUS, "location": st.just("main"), "date": DATES, "quantity": NUMBERS}), max_size=60)


def _good_history(skus: list[str]) -> list[dict]:
    days = pd.date_range("2024-05-01", periods=45, freq="D")
    return [{"sku": sku, "location": "main", "date": day, "quantity": float(3 + i % 5)}
            for sku in skus for i, day in enumerate(days)]


@st.composite
def snapshots(draw) -> Snapshot:
    """A snapshot with a sound core (so there is something to plan) and garbage around it."""
    sound = draw(st.lists(st.sampled_from(["A", "B"]), unique=True, max_size=2))
    catalog = [{"sku": s, "description": "part", "category": "hw", "unit": "each"} for s in sound]
    offers = [{"sku": s, "supplier": "s1", "unit_price": 2.0, "lead_time_days": 7.0, "moq": 1.0,
               "pack_size": 1.0, "min_qty": 0.0, "currency": "EUR"} for s in sound]
    positions = [{"sku": s, "location": "main", "on_hand": 1.0, "allocated": 0.0,
                  "on_order": 0.0, "backorders": 0.0} for s in sound]
    return Snapshot(
        as_of=AS_OF,
        catalog=_frame(catalog + draw(CATALOG), ["sku", "description", "category", "unit"]),
        offers=_frame(offers + draw(OFFERS), ["sku", "supplier", "unit_price", "lead_time_days",
                                             "moq", "pack_size", "min_qty", "currency"]),
        positions=_frame(positions + draw(POSITIONS), ["sku", "location", "on_hand",
                                                       "allocated", "on_order", "backorders"]),
        history=_frame(_good_history(sound) + draw(HISTORY),
                       ["sku", "location", "date", "quantity"]))


PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def config() -> OrgConfig:
    return OrgConfig.model_validate({
        "org": "prop", "mode": "dry_run", "source": {"connector": "files", "path": "."},
        "order_sink": {"connector": "files", "path": "."},
        "forecast": {"statsmodels_seconds": 0, "history_days": 120}})


def _finite_non_negative(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column in frame:
            values = pd.to_numeric(frame[column], errors="raise").to_numpy(float)
            values = values[~np.isnan(values)] if column == "lead_time_days" else values
            assert np.isfinite(values).all() and (values >= 0).all(), (column, values)


@PROPERTY
@given(snap=snapshots())
def test_cleaning_ends_in_clean_frames_or_a_restock_error(snap):
    try:
        result = clean_snapshot(snap, org="prop")
    except RestockError as err:
        assert "\n" not in str(err)
        return
    cleaned = result.snapshot
    _finite_non_negative(cleaned.positions, ("on_hand", "allocated", "on_order", "backorders"))
    _finite_non_negative(cleaned.history, ("quantity",))
    _finite_non_negative(cleaned.offers, ("unit_price", "moq", "pack_size", "min_qty",
                                          "lead_time_days"))
    assert not set(cleaned.offers["sku"]) & set(result.blocked_skus)
    suppliers = cleaned.offers["supplier"]
    assert all(isinstance(s, str) and s.strip() for s in suppliers), list(suppliers)
    assert {q.dataset for q in result.quarantined} <= {"catalog", "offers", "positions",
                                                       "history", "open_orders"}


def _plan(snap: Snapshot, store, config: OrgConfig):
    now = datetime(2024, 7, 1, 6, tzinfo=UTC)
    book = OrderBook(config, store.ledger, None, now, run_id="prop", live=False)
    return plan_snapshot(config, snap, book, store, now, "prop")


@settings(PROPERTY, max_examples=30)     # each example forecasts and plans: keep it brisk
@given(snap=snapshots())
def test_planning_never_orders_a_negative_nan_or_infinite_quantity(snap, store, config):
    try:
        result = _plan(snap, store, config)
    except RestockError as err:
        assert "\n" not in str(err)
        return
    for line in result.plan.lines:
        for value in (line.quantity, line.unit_price, line.value):
            assert math.isfinite(value), line
        assert line.quantity > 0 and line.unit_price >= 0, line
        assert isinstance(line.sku, str) and line.sku.strip(), line
        assert isinstance(line.supplier, str) and line.supplier.strip(), line


def test_a_record_missing_its_key_cells_is_named_not_a_crash():
    """pandas 3 keeps a missing cell missing through astype(str): the place must still be text."""
    offers = _frame([{"sku": "B", "supplier": None, "unit_price": None, "lead_time_days": 0,
                      "moq": None, "pack_size": 2.0, "min_qty": None, "currency": "EUR"}],
                    ["sku", "supplier", "unit_price", "lead_time_days", "moq", "pack_size",
                     "min_qty", "currency"])
    empty = {name: _frame([], columns) for name, columns in (
        ("catalog", ["sku"]), ("positions", ["sku", "location", "on_hand"]),
        ("history", ["sku", "location", "date", "quantity"]))}
    result = clean_snapshot(Snapshot(as_of=AS_OF, offers=offers, **empty))
    assert [q.record for q in result.quarantined] == ["offers row 0 (sku=B, supplier=?)"]
    assert result.quarantined[0].reason.startswith("SKU not in the catalog; missing supplier")


def _nothing_to_plan() -> dict[str, Snapshot]:
    columns = {"catalog": ["sku", "description", "category", "unit"],
               "offers": ["sku", "supplier", "unit_price"],
               "positions": ["sku", "location", "on_hand"],
               "history": ["sku", "location", "date", "quantity"]}
    empty = Snapshot(as_of=AS_OF, **{name: _frame([], c) for name, c in columns.items()})
    clash = [{"sku": "A", "description": "part", "category": "hw", "unit": unit}
             for unit in ("each", "kg")]          # the only SKU's catalog rows disagree
    blocked = Snapshot(
        as_of=AS_OF, catalog=_frame(clash, columns["catalog"]),
        offers=_frame([{"sku": "A", "supplier": "s1", "unit_price": 2.0}], columns["offers"]),
        positions=_frame([{"sku": "A", "location": "main", "on_hand": 1.0}],
                         columns["positions"]),
        history=_frame(_good_history(["A"]), columns["history"]))
    return {"empty warehouse": empty, "every SKU blocked": blocked}


@pytest.mark.parametrize("case", ["empty warehouse", "every SKU blocked"])
def test_nothing_to_plan_plans_nothing(case, store, config):
    result = _plan(_nothing_to_plan()[case], store, config)
    assert result.plan.lines == []
