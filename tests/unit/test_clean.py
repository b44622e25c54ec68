"""clean_snapshot: one test per rule, plus the guarantees the cycle relies on."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from restock.clean import clean_snapshot, per_distinct, stripped_text
from restock.domain import Snapshot
from restock.errors import DataError

AS_OF = date(2024, 6, 30)


def snapshot(**frames: pd.DataFrame) -> Snapshot:
    """A small, entirely valid snapshot (two SKUs, one location); ``frames`` replace parts."""
    days = pd.date_range("2024-05-01", periods=30, freq="D")
    base = {
        "catalog": pd.DataFrame({"sku": ["A", "B"], "description": ["bolt", "nut"],
                                 "category": ["hw", "hw"], "unit": ["pcs", "kg"]}),
        "offers": pd.DataFrame({"sku": ["A", "B"], "supplier": ["s1", "s1"],
                                "unit_price": [1.5, 2.0], "lead_time_days": [7, 14],
                                "moq": [10, 0], "pack_size": [5, 1], "min_qty": [0, 0],
                                "supplier_sku": ["x", "y"], "currency": ["EUR", "EUR"]}),
        "positions": pd.DataFrame({"sku": ["A", "B"], "location": ["main", "main"],
                                   "on_hand": [10, 4], "allocated": [0, 1], "on_order": [0, 0],
                                   "backorders": [0, 0]}),
        "history": pd.DataFrame({"sku": ["A"] * 30 + ["B"] * 30, "location": "main",
                                 "date": list(days) * 2,
                                 "quantity": [3.0 + i % 4 for i in range(60)]}),
    }
    base.update(frames)
    return Snapshot(as_of=AS_OF, **base)


def reasons(result, dataset: str) -> list[str]:
    return [q.reason for q in result.quarantined if q.dataset == dataset]


def test_a_valid_snapshot_passes_untouched():
    snap = snapshot()
    result = clean_snapshot(snap)
    assert result.quarantined == [] and result.blocked_skus == {}
    assert len(result.snapshot.history) == 60 and len(result.snapshot.offers) == 2
    assert result.snapshot.history["quantity"].dtype == float
    assert pd.api.types.is_datetime64_any_dtype(result.snapshot.history["date"])


@pytest.mark.parametrize("value, expected", [
    (-3, "quantity -3 must not be below 0"),
    (np.nan, "quantity is missing or NaN"),
    (np.inf, "quantity is infinite"),
    ("lots", "quantity is not a number: 'lots'"),
])
def test_bad_history_quantities_are_quarantined_with_their_reason(value, expected):
    snap = snapshot()
    history = snap.history.astype({"quantity": object})
    history.loc[5, "quantity"] = value
    result = clean_snapshot(snapshot(history=history))
    assert reasons(result, "history") == [expected]
    assert len(result.snapshot.history) == 59
    assert result.quarantined[0].record.startswith("history row 5 (sku=A, location=main, date=")
    assert result.blocked_skus == {}   # a bad history row does not block the SKU


def test_place_uses_the_source_file_and_line_when_given():
    snap = snapshot()
    history = snap.history.copy()
    history["_line"] = np.arange(2, 62)
    history.attrs["source"] = "/data/acme/consumption.csv"
    history.loc[7, "quantity"] = -1
    result = clean_snapshot(snapshot(history=history))
    assert result.quarantined[0].record.startswith("consumption.csv:9 (sku=A")
    assert "_line" not in result.snapshot.history.columns


def test_place_is_the_line_when_the_index_holds_line_numbers():
    snap = snapshot()
    positions = snap.positions.copy()
    positions.index = pd.RangeIndex(2, 4)          # what the files source does: line 1 is the header
    positions.attrs["source"] = "/srv/acme/positions.csv"
    positions.loc[3, "on_hand"] = -7
    [record] = clean_snapshot(snapshot(positions=positions)).quarantined
    assert record.record == "positions.csv:3 (sku=B, location=main)"


def test_unknown_skus_are_quarantined_in_history_positions_and_offers():
    snap = snapshot()
    history = pd.concat([snap.history, pd.DataFrame(
        {"sku": ["Z"], "location": ["main"], "date": ["2024-06-01"], "quantity": [1.0]})],
        ignore_index=True)
    positions = pd.concat([snap.positions, pd.DataFrame(
        {"sku": ["Z"], "location": ["main"], "on_hand": [1]})], ignore_index=True)
    offers = pd.concat([snap.offers, pd.DataFrame(
        {"sku": ["Z"], "supplier": ["s1"], "unit_price": [1.0]})], ignore_index=True)
    result = clean_snapshot(snapshot(history=history, positions=positions, offers=offers))
    for dataset in ("history", "positions", "offers"):
        assert reasons(result, dataset) == ["SKU not in the catalog"], dataset
    assert "Z" not in set(result.snapshot.offers["sku"])


def test_duplicate_history_rows_exact_repeat_keeps_one_conflict_drops_all():
    snap = snapshot()
    repeat = snap.history.iloc[[3]]
    conflict = snap.history.iloc[[40]].assign(quantity=99.0)
    history = pd.concat([snap.history, repeat, conflict], ignore_index=True)
    result = clean_snapshot(snapshot(history=history))
    found = reasons(result, "history")
    assert found.count("duplicate row (an exact repeat of an earlier one)") == 1
    assert found.count("duplicate sku × location × date with conflicting values") == 2
    assert len(result.snapshot.history) == 59   # 60 + 2 added - 1 repeat - 2 conflicting


def test_conflicting_duplicate_position_blocks_the_sku():
    snap = snapshot()
    positions = pd.concat([snap.positions, snap.positions.iloc[[0]].assign(on_hand=500)],
                          ignore_index=True)
    result = clean_snapshot(snapshot(positions=positions))
    assert reasons(result, "positions") == ["duplicate sku × location with conflicting values"] * 2
    assert set(result.blocked_skus) == {"A"}
    assert "A" not in set(result.snapshot.offers["sku"])   # nothing left to order it from


def test_duplicate_catalog_sku_with_different_rows_blocks_it():
    snap = snapshot()
    catalog = pd.concat([snap.catalog, snap.catalog.iloc[[1]].assign(unit="pcs")],
                        ignore_index=True)
    result = clean_snapshot(snapshot(catalog=catalog))
    assert reasons(result, "catalog") == ["duplicate sku with conflicting values"] * 2
    assert result.blocked_skus == {"B": "its catalog row is quarantined"}


def test_an_exact_repeat_in_the_catalog_is_harmless():
    snap = snapshot()
    catalog = pd.concat([snap.catalog, snap.catalog.iloc[[1]]], ignore_index=True)
    result = clean_snapshot(snapshot(catalog=catalog))
    assert reasons(result, "catalog") == ["duplicate row (an exact repeat of an earlier one)"]
    assert result.blocked_skus == {}


def test_future_and_unparsable_dates():
    snap = snapshot()
    history = snap.history.astype({"date": object})
    history.loc[0, "date"] = "2024-07-15"
    history.loc[1, "date"] = "someday"
    result = clean_snapshot(snapshot(history=history))
    assert sorted(reasons(result, "history")) == [
        "date 2024-07-15 is after the planning date 2024-06-30",
        "date is unparsable: 'someday'"]
    later = clean_snapshot(snapshot(history=history), as_of=date(2024, 8, 1))
    assert reasons(later, "history") == ["date is unparsable: 'someday'"]


def test_unit_mismatch_against_the_catalog():
    snap = snapshot()
    positions = snap.positions.assign(unit=["PCS", "g"])
    offers = snap.offers.assign(unit=["box", "kg"])
    result = clean_snapshot(snapshot(positions=positions, offers=offers))
    assert reasons(result, "positions") == ["unit 'g' does not match the catalog's 'kg'"]
    assert reasons(result, "offers") == ["unit 'box' does not match the catalog's 'pcs'"]
    assert result.blocked_skus == {"B": "its stock position is quarantined"}


@pytest.mark.parametrize("column", ["on_hand", "allocated", "on_order", "backorders"])
def test_negative_stock_quarantines_and_blocks(column):
    snap = snapshot()
    positions = snap.positions.copy()
    positions.loc[0, column] = -2
    result = clean_snapshot(snapshot(positions=positions))
    assert reasons(result, "positions") == ["stock -2 must not be below 0"]
    assert set(result.blocked_skus) == {"A"}


def test_missing_optional_stock_columns_default_to_zero():
    snap = snapshot(positions=pd.DataFrame({"sku": ["A", "B"], "location": ["main", "main"],
                                            "on_hand": [1, 2]}))
    result = clean_snapshot(snap)
    assert result.quarantined == []
    assert result.snapshot.positions[["allocated", "on_order", "backorders"]].eq(0).all().all()


@pytest.mark.parametrize("column, value, expected", [
    ("unit_price", 0, "price 0 must be greater than 0"),
    ("unit_price", -1, "price -1 must be greater than 0"),
    ("unit_price", np.nan, "price is missing or NaN"),
    ("pack_size", 0, "pack size 0 must be greater than 0"),
    ("moq", -5, "MOQ -5 must not be below 0"),
    ("lead_time_days", -1, "lead time -1 must not be below 0"),
])
def test_bad_offers_are_quarantined(column, value, expected):
    snap = snapshot()
    offers = snap.offers.copy()
    offers.loc[0, column] = value
    result = clean_snapshot(snapshot(offers=offers))
    assert reasons(result, "offers") == [expected]
    assert list(result.snapshot.offers["sku"]) == ["B"]
    assert result.blocked_skus == {}


def test_offer_without_lead_time_keeps_it_unknown_for_the_policy_default():
    snap = snapshot()
    offers = snap.offers.copy()
    offers["lead_time_days"] = [np.nan, 14]
    result = clean_snapshot(snapshot(offers=offers))
    assert result.quarantined == []
    assert np.isnan(result.snapshot.offers["lead_time_days"].iloc[0])


def test_a_period_100x_the_usual_level_is_suspect():
    snap = snapshot()
    history = snap.history.copy()
    history.loc[10, "quantity"] = 500.0   # series A's median non-zero level is 4
    result = clean_snapshot(snapshot(history=history))
    [found] = reasons(result, "history")
    assert found == "suspect: 125× the series' median non-zero level 4"
    assert 500.0 not in set(result.snapshot.history["quantity"])
    relaxed = clean_snapshot(snapshot(history=history), spike_factor=200)
    assert relaxed.quarantined == []


def test_a_short_series_is_not_judged_for_spikes():
    history = pd.DataFrame({"sku": ["A"] * 3, "location": "main",
                            "date": ["2024-06-01", "2024-06-02", "2024-06-03"],
                            "quantity": [1.0, 1.0, 900.0]})
    assert clean_snapshot(snapshot(history=history)).quarantined == []


def test_stock_file_from_another_org_is_quarantined_whole_and_blocks_everything():
    snap = snapshot()
    positions = snap.positions.assign(org="globex")
    result = clean_snapshot(snapshot(positions=positions), org="acme")
    assert reasons(result, "positions") == ["belongs to org 'globex', not 'acme'"] * 2
    assert set(result.blocked_skus) == {"A", "B"}
    assert result.snapshot.offers.empty
    assert clean_snapshot(snapshot(positions=positions.assign(org="acme")),
                          org="acme").quarantined == []


def test_missing_sku_is_quarantined():
    snap = snapshot()
    history = snap.history.astype({"sku": object})
    history.loc[2, "sku"] = None
    result = clean_snapshot(snapshot(history=history))
    assert reasons(result, "history") == ["missing SKU"]


def test_a_row_with_several_faults_lists_them_all():
    snap = snapshot()
    positions = snap.positions.copy()
    positions.loc[1, ["on_hand", "backorders"]] = [-1, -4]
    [record] = clean_snapshot(snapshot(positions=positions)).quarantined
    assert record.reason == "stock -1 must not be below 0; stock -4 must not be below 0"


def test_missing_required_column_is_a_data_error_naming_the_file():
    positions = pd.DataFrame({"sku": ["A"], "location": ["main"]})
    positions.attrs["source"] = "stock.csv"
    with pytest.raises(DataError, match=r"^stock.csv: missing column 'on_hand'"):
        clean_snapshot(snapshot(positions=positions))


def test_bad_open_orders_are_quarantined():
    open_orders = pd.DataFrame({"reference": ["PO1", "PO2"], "sku": ["A", "B"],
                                "supplier": ["s1", "s1"], "quantity": [5, -5],
                                "expected_date": [None, None]})
    result = clean_snapshot(snapshot(open_orders=open_orders))
    assert reasons(result, "open_orders") == ["quantity -5 must not be below 0"]
    assert list(result.snapshot.open_orders["reference"]) == ["PO1"]


def test_nothing_is_lost_every_input_row_is_kept_or_quarantined():
    rng = np.random.default_rng(7)
    snap = snapshot()
    history = snap.history.astype({"quantity": object}).copy()
    picks = rng.choice(len(history), 12, replace=False)
    for i, value in zip(picks, [-1, np.nan, "x", np.inf] * 3):
        history.loc[i, "quantity"] = value
    result = clean_snapshot(snapshot(history=history))
    assert len(result.snapshot.history) + len(reasons(result, "history")) == len(history)


def test_100k_history_rows_clean_fast():
    n_sku, days = 200, 500
    skus = [f"S{i}" for i in range(n_sku)]
    history = pd.DataFrame({
        "sku": np.repeat(skus, days), "location": "main",
        "date": np.tile(pd.date_range("2023-01-01", periods=days).strftime("%Y-%m-%d"), n_sku),
        "quantity": np.random.default_rng(1).poisson(3, n_sku * days).astype(float)})
    history.loc[::997, "quantity"] = -1
    snap = Snapshot(
        catalog=pd.DataFrame({"sku": skus, "unit": "pcs"}),
        offers=pd.DataFrame({"sku": skus, "supplier": "s", "unit_price": 1.0}),
        positions=pd.DataFrame({"sku": skus, "location": "main", "on_hand": 5.0}),
        history=history, as_of=date(2024, 6, 1))
    started = time.perf_counter()
    result = clean_snapshot(snap)
    elapsed = time.perf_counter() - started
    assert len(result.quarantined) == len(range(0, n_sku * days, 997))
    assert elapsed < 5.0   # a tripwire against row-by-row code, not a benchmark


def test_converting_each_distinct_value_once_gives_what_converting_every_cell_gives():
    cells = pd.Series(["1", " 2 ", None, "x", "1", np.nan, "3.5", "", "2025-01-02", "03/04/2025"],
                      index=range(10, 20))
    for convert in (lambda c: pd.to_numeric(c, errors="coerce"),
                    lambda c: pd.to_datetime(c, errors="coerce", format="mixed")):
        once, every = per_distinct(cells, convert), convert(cells)
        pd.testing.assert_series_equal(once, every, check_dtype=False)
    text = stripped_text(cells)
    assert text.iloc[[0, 1, 3, 4, 7]].tolist() == ["1", "2", "x", "1", ""]
    assert text.isna().tolist() == [False, False, True, False, False, True] + [False] * 4


def test_row_keys_are_equal_exactly_where_the_rows_are_and_never_overflow():
    from restock.clean import _repeated, _row_keys

    frame = pd.DataFrame({"sku": ["a", "a", "b", None, None, "a"],
                          "date": pd.to_datetime(["2025-01-01"] * 2 + ["2025-01-02"] * 3 +
                                                 [None]),
                          "n": [1.0, 1.0, 1.0, np.nan, np.nan, 1.0]})
    keys = _row_keys(frame, ["sku", "date", "n"])
    assert [keys[0] == keys[1], keys[3] == keys[4], keys[0] == keys[5], keys[2] == keys[3]] == \
        [True, True, False, False]
    wide = pd.DataFrame({c: np.arange(200_000) % (50_000 + i) for i, c in enumerate("abcde")})
    wide = pd.concat([wide, wide.iloc[::7]], ignore_index=True)      # some rows twice
    got = _repeated(_row_keys(wide, list("abcde")))
    assert (got == wide.duplicated(keep=False).to_numpy()).all() and got.any()
