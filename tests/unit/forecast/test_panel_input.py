"""to_panel: the same rows give the same panel whatever their order, date type or unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.forecast import to_panel
from restock.forecast.panel import arrow_panel


def _rows(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.datetime64("2024-01-03") + rng.integers(0, 200, n).astype("timedelta64[D]")
    frame = pd.DataFrame({"item_id": rng.choice(["b", "a", "c", "d"], n),
                          "date": pd.Series(days).astype("datetime64[ns]"),
                          "quantity": rng.poisson(2.0, n).astype(float)})
    return frame.drop_duplicates(["item_id", "date"]).sort_values(["item_id", "date"],
                                                                   ignore_index=True)


def _same(left, right) -> None:
    assert list(left.ids) == list(right.ids)
    assert list(left.dates) == list(right.dates)
    np.testing.assert_array_equal(left.values, right.values)


@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_sorted_and_shuffled_rows_give_the_same_panel(freq: str) -> None:
    rows = _rows(1)
    shuffled = rows.sample(frac=1.0, random_state=3, ignore_index=True)
    _same(to_panel(rows, freq=freq), to_panel(shuffled, freq=freq))


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_every_datetime_unit_and_text_dates_agree(unit: str) -> None:
    rows = _rows(2)
    other = rows.assign(date=rows["date"].astype(f"datetime64[{unit}]"))
    text = rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d"))
    _same(to_panel(rows), to_panel(other))
    _same(to_panel(rows), to_panel(text))


def test_late_starters_hold_nan_before_their_first_row_in_both_layouts() -> None:
    rows = pd.DataFrame({"item_id": ["a", "a", "b", "b", "b"],
                         "date": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-03",
                                                 "2024-01-04", "2024-01-04"]),
                         "quantity": [1.0, 2.0, 3.0, 4.0, 5.0]})
    merged = to_panel(rows)                  # b has two rows on the 4th: summed
    single = to_panel(rows.iloc[:4])         # sorted, one row per day
    np.testing.assert_array_equal(merged.values[1], [np.nan, np.nan, 3.0, 9.0, 0.0])
    np.testing.assert_array_equal(single.values[1], [np.nan, np.nan, 3.0, 4.0, 0.0])
    assert merged.notes["rows_merged_into_a_period"] == 1
    assert single.notes["rows_merged_into_a_period"] == 0


def test_times_of_day_and_mid_period_dates_are_counted_as_moved() -> None:
    rows = pd.DataFrame({"item_id": ["a"] * 3,
                         "date": pd.to_datetime(["2024-01-01", "2024-01-02 08:00",
                                                 "2024-01-10"], format="mixed"),
                         "quantity": [1.0, 1.0, 1.0]})
    assert to_panel(rows, freq="D").notes["dates_moved_to_period_start"] == 1
    weekly = to_panel(rows, freq="W")        # 2024-01-01 is a Monday; the others are not
    assert weekly.notes["dates_moved_to_period_start"] == 2
    np.testing.assert_array_equal(weekly.values, [[2.0, 1.0]])


def _arrow(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.table({"item_id": pa.array(frame["item_id"].astype(str)),
                     "date": pa.array(frame["date"].dt.date, pa.date32()),
                     "quantity": pa.array(frame["quantity"], from_pandas=True)})


@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_arrow_tables_grouped_by_id_give_the_panel_pandas_gives(freq: str) -> None:
    rows = _rows(4)
    rows.loc[rows.index[::7], "quantity"] = np.nan
    rows.loc[rows.index[::11], "quantity"] = -3.0
    rows.loc[rows.index[5], "quantity"] = np.inf
    # grouped by id but not sorted: c's rows first
    rows = pd.concat([rows[rows["item_id"] == "c"], rows[rows["item_id"] != "c"]],
                     ignore_index=True)
    span = {"start": pd.Timestamp("2023-12-01"), "end": pd.Timestamp("2024-09-30")}
    fast, general = arrow_panel(_arrow(rows), freq=freq, **span), to_panel(rows, freq=freq,
                                                                           **span)
    assert fast is not None
    _same(fast, general)
    assert fast.notes == general.notes


def test_arrow_tables_the_fast_route_cannot_take_are_declined() -> None:
    import pyarrow as pa

    rows = _rows(5)
    table = _arrow(rows)
    text_dates = table.set_column(1, "date", pa.array(rows["date"].dt.strftime("%Y-%m-%d")))
    a, b = rows[rows["item_id"] == "a"], rows[rows["item_id"] == "b"]
    split = _arrow(pd.concat([a.iloc[:5], b, a.iloc[5:]], ignore_index=True))
    assert arrow_panel(text_dates) is None
    assert arrow_panel(split) is None          # a's rows are not together
    assert arrow_panel(table.slice(0, 0)) is None


def test_the_frequency_hint_looks_past_a_first_stretch_of_rows_on_one_date() -> None:
    months = pd.date_range("2023-01-01", periods=12, freq="MS")
    rows = pd.DataFrame({"item_id": np.tile([f"i{k:05d}" for k in range(2_000)], 12),
                         "date": np.repeat(months, 2_000), "quantity": 1.0})  # by date
    assert "monthly data" in to_panel(rows, freq="D").notes["frequency_warning"]
    daily = rows.assign(date=rows["date"] + pd.to_timedelta(np.arange(len(rows)) % 5, "D"))
    assert "frequency_warning" not in to_panel(daily, freq="D").notes
