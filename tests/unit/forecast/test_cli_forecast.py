"""`restock forecast INPUT ...` in process: formats, chunked streaming, bad input as one line."""

from __future__ import annotations

import gzip
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restock.cli import main
from restock.forecast.io import (
    Columns,
    NotGrouped,
    NotPlainCsv,
    date_range,
    groups,
    panels,
)
from restock.forecast.panel import forecast_panel
from restock.forecast.run import Options, forecast_file


def _history(series: int = 12, days: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    rows = []
    for i in range(series):
        rate = rng.uniform(0.1, 20)
        quantity = rng.poisson(rate, days) * (rng.random(days) < rng.uniform(0.2, 1))
        first = int(rng.integers(0, days // 2))
        rows.append(pd.DataFrame({"item_id": f"sku-{i:03d}", "date": dates[first:],
                                  "quantity": quantity[first:]}))
    frame = pd.concat(rows, ignore_index=True)
    return frame[frame["quantity"] > 0]        # exports often leave out zero days


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def test_carparts_forecasts_every_series(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "f.csv"
    source = shared_data / "sets" / "carparts.csv.gz"
    code = main(["forecast", str(source), "--horizon", "12", "--freq", "M", "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out, dtype={"item_id": str})
    assert list(table.columns) == ["item_id", "step", "date", "forecast", "model", "q0.5",
                                   "q0.9", "q0.95"]
    ids = pd.read_csv(source, usecols=["item_id"], dtype=str)["item_id"].unique()
    assert set(table["item_id"]) == set(ids) and len(table) == 12 * len(ids)
    assert (table[["forecast", "q0.5", "q0.9", "q0.95"]] >= 0).all().all()
    assert table["date"].min() == "2002-04-01" and table["date"].max() == "2003-03-01"
    err = capsys.readouterr().err
    assert "series × 12 periods" in err
    assert "kept SES(0.05)" not in err                   # monthly: no daily gate


def test_the_summary_says_how_many_daily_series_kept_the_steady_level(tmp_path: Path,
                                                                       capsys) -> None:
    rng = np.random.default_rng(5)
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    level = 20 + np.cumsum(rng.normal(0, 0.2, (30, 200)), axis=1)
    frame = pd.DataFrame({"item_id": np.repeat([f"s{i:02d}" for i in range(30)], 200),
                          "date": np.tile(days, 30),
                          "quantity": rng.poisson(np.maximum(level, 1)).ravel()})
    path = _write(frame, tmp_path / "daily.csv")
    summary = forecast_file(path, tmp_path / "out.csv", Options(horizon=14))
    assert 0 < summary.steady <= summary.models["SES"]
    assert main(["forecast", str(path), "--horizon", "14", "--out", str(tmp_path / "o.csv")]) == 0
    assert f"kept SES(0.05), no other model clearly better on daily data: {summary.steady} " \
        "series" in capsys.readouterr().err


@pytest.mark.slow
def test_the_summary_says_what_the_statsmodels_pass_did(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(4)        # flat daily demand: slow fits rarely clearly better
    days = pd.date_range("2024-01-01", periods=160, freq="D")
    frame = pd.DataFrame({"item_id": np.repeat([f"s{i}" for i in range(6)], 160),
                          "date": np.tile(days, 6), "quantity": rng.poisson(20, 6 * 160)})
    path = _write(frame, tmp_path / "flat.csv")
    one = forecast_file(path, tmp_path / "one.csv", Options(horizon=14, time_budget=120,
                                                            max_series=3))
    two = forecast_file(path, tmp_path / "two.csv", Options(horizon=14, time_budget=120,
                                                            max_series=3, jobs=2))
    assert one.slow["eligible"] == one.slow["fitted"] == 6 and one.slow == two.slow
    assert 0 < one.slow["not_clearly_better"] <= 6 and one.slow["replaced"] < 6
    slow = sum(one.models[m] for m in ("ETS", "Theta", "ARIMA"))
    assert one.slow["replaced"] == slow
    line = f"statsmodels: 6 of 6 eligible series fitted, {slow} took a slow model, " \
           f"{one.slow['not_clearly_better']} had one not clearly better than SES(0.05)"
    assert line in one.lines()
    assert main(["forecast", str(path), "--horizon", "14", "--statsmodels-seconds", "120",
                 "--out", str(tmp_path / "o.csv")]) == 0
    assert line.split(" fitted")[0] in capsys.readouterr().err
    assert not any(x.startswith("statsmodels") for x in forecast_file(
        path, tmp_path / "fast.csv", Options(horizon=14)).lines())


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_every_format_gives_the_same_forecast(tmp_path: Path, suffix: str) -> None:
    history = _history()
    reference = tmp_path / "ref.csv"
    assert main(["forecast", str(_write(history, tmp_path / "h.csv")), "--horizon", "14",
                 "--out", str(reference)]) == 0
    out = tmp_path / "out.csv"
    assert main(["forecast", str(_write(history, tmp_path / f"h{suffix}")), "--horizon", "14",
                 "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(reference))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streaming_in_small_groups_matches_reading_whole(tmp_path: Path, suffix: str) -> None:
    path = _write(_history(series=9), tmp_path / f"h{suffix}")
    whole, streamed = tmp_path / "whole.csv", tmp_path / "streamed.csv"
    forecast_file(path, whole, Options(horizon=7, max_series=10_000))
    summary = forecast_file(path, streamed, Options(horizon=7, max_series=2, chunk_rows=37))
    assert summary.streamed and summary.series == 9
    pd.testing.assert_frame_equal(pd.read_csv(streamed), pd.read_csv(whole))


@pytest.mark.parametrize("chunk_rows", [13, 37, 500, 5_000])
def test_parquet_groups_hold_max_series_whatever_the_batch(tmp_path: Path,
                                                           chunk_rows: int) -> None:
    history = _history(series=23)
    series = history["item_id"].nunique()
    path = _write(history, tmp_path / "h.parquet")
    read = list(groups(path, Columns(), max_series=4, chunk_rows=chunk_rows))
    assert [frame["item_id"].nunique() for frame in read] == \
        [4] * (series // 4) + [series % 4] * (series % 4 > 0)
    together = pd.concat(read, ignore_index=True)
    pd.testing.assert_frame_equal(together[history.columns].astype({"item_id": str}),
                                  history.reset_index(drop=True))
    assert [frame.attrs["first_row"] for frame in read] == \
        [1 + sum(len(f) for f in read[:i]) for i in range(len(read))]


def _write_row_groups(frame: pd.DataFrame, path: Path, rows_per_group: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=rows_per_group)
    return path


def _long_series_history() -> pd.DataFrame:
    """Short series around one that spans many row groups (so a whole run of row groups can
    continue a series begun before it)."""
    days = pd.date_range("2024-01-01", periods=300, freq="D")
    parts = [_history(series=6, seed=3)]
    parts.append(pd.DataFrame({"item_id": "sku-long", "date": days, "quantity": 1.0}))
    parts.append(_history(series=9, seed=4).assign(item_id=lambda f: "z" + f["item_id"]))
    return pd.concat(parts, ignore_index=True)


def _shares(path: Path, every: int, **read) -> list[pd.DataFrame]:
    out, span = [], {"start": pd.Timestamp("2024-01-01"), "end": pd.Timestamp("2024-10-26")}
    for k in range(every):
        for panel in panels(path, Columns(), freq="D", share=(k, every), **span, **read):
            out.append(pd.DataFrame(panel.values, index=panel.ids, columns=panel.dates))
    return out


@pytest.mark.parametrize(("rows_per_group", "every", "chunk_rows"),
                         [(37, 2, 1000), (37, 3, 20), (50, 5, 64), (500, 2, 1000), (7, 4, 9)])
def test_processes_reading_runs_of_row_groups_cover_every_series_once(
        tmp_path: Path, rows_per_group: int, every: int, chunk_rows: int) -> None:
    path = _write_row_groups(_long_series_history(), tmp_path / "h.parquet", rows_per_group)
    read = {"max_series": 3, "chunk_rows": chunk_rows}
    whole = pd.concat(_shares(path, 1, **read))
    parts = pd.concat(_shares(path, every, **read))
    assert list(parts.index) == list(whole.index) and parts.index.is_unique
    pd.testing.assert_frame_equal(parts, whole)


@pytest.mark.parametrize(("every", "chunk_rows", "newline"),
                         [(2, 1000, "\n"), (3, 20, "\n"), (5, 64, "\r\n"), (16, 9, "\n")])
def test_processes_reading_byte_ranges_of_a_csv_cover_every_series_once(
        tmp_path: Path, every: int, chunk_rows: int, newline: str) -> None:
    path = tmp_path / "h.csv"
    _long_series_history().to_csv(path, index=False, lineterminator=newline)
    read = {"max_series": 3, "chunk_rows": chunk_rows}
    whole = pd.concat(_shares(path, 1, **read))
    parts = pd.concat(_shares(path, every, **read))
    assert list(parts.index) == list(whole.index) and parts.index.is_unique
    pd.testing.assert_frame_equal(parts, whole)


def test_the_date_range_of_a_csv_read_in_byte_ranges_is_the_whole_files(tmp_path: Path) -> None:
    history = _history(series=30, days=200)     # series start at different dates
    path = _write(history, tmp_path / "h.csv")
    whole = date_range(path, Columns())
    assert whole == (history["date"].min(), history["date"].max())
    for every in (2, 3, 7, 40):
        spans = [date_range(path, Columns(), share=(k, every)) for k in range(every)]
        spans = [span for span in spans if span is not None]
        assert (min(s[0] for s in spans), max(s[1] for s in spans)) == whole
        assert len(spans) > 1


@pytest.mark.parametrize("jobs", [2, 4])
def test_a_series_split_between_byte_ranges_of_a_csv_is_read_whole(tmp_path: Path,
                                                                   jobs: int) -> None:
    history = _history(series=8)
    stray = history[history["item_id"] == "sku-001"].head(3)
    path = _write(pd.concat([history, stray], ignore_index=True), tmp_path / "h.csv")
    summary = forecast_file(path, tmp_path / "f.csv", Options(horizon=3, jobs=jobs))
    assert not summary.streamed and summary.series == 8
    assert pd.read_csv(tmp_path / "f.csv")["item_id"].value_counts().eq(3).all()


def test_man_read_by_two_processes_is_forecast_as_by_one(shared_data: Path, tmp_path: Path) -> None:
    # Each process groups other series together than one process does; a series' forecast must
    # not depend on them (near-equal alphas once went by the last bits of the arithmetic).
    plain = tmp_path / "man.csv"
    with gzip.open(shared_data / "sets" / "man.csv.gz", "rb") as source:
        plain.write_bytes(source.read())
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    forecast_file(plain, one, Options(horizon=12, freq="W"))
    summary = forecast_file(plain, two, Options(horizon=12, freq="W", jobs=2))
    assert summary.series == 3451 and summary.streamed
    assert two.read_bytes() == one.read_bytes()


def test_a_tiny_csv_on_more_processes_than_lines_writes_what_one_writes(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("item_id,date,quantity\na,2024-01-01,3\nb,2024-01-02,1\n")
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    forecast_file(path, one, Options(horizon=2))
    forecast_file(path, many, Options(horizon=2, jobs=5))
    assert many.read_bytes() == one.read_bytes()


def test_a_series_split_between_runs_of_row_groups_is_not_grouped(tmp_path: Path) -> None:
    history = _history(series=8)
    stray = history[history["item_id"] == "sku-001"].head(3)
    path = _write_row_groups(pd.concat([history, stray], ignore_index=True),
                             tmp_path / "h.parquet", 40)
    for k in range(2):
        with pytest.raises(NotGrouped):
            list(panels(path, Columns(), freq="D", share=(k, 2), max_series=3, chunk_rows=30))
    out = tmp_path / "f.csv"
    summary = forecast_file(path, out, Options(horizon=3, max_series=3, chunk_rows=30, jobs=2))
    assert not summary.streamed and summary.series == 8


def test_several_processes_on_many_row_groups_write_what_one_writes(tmp_path: Path) -> None:
    path = _write_row_groups(_long_series_history(), tmp_path / "h.parquet", 45)
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    forecast_file(path, one, Options(horizon=5, max_series=2, chunk_rows=60))
    summary = forecast_file(path, two, Options(horizon=5, max_series=2, chunk_rows=60, jobs=3))
    assert summary.series == 16
    assert two.read_bytes() == one.read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_rows_out_of_order_fall_back_to_reading_whole(tmp_path: Path, suffix: str) -> None:
    history = _history(series=5).sample(frac=1.0, random_state=1)
    path = _write(history, tmp_path / f"shuffled{suffix}")
    with pytest.raises(NotGrouped):
        list(groups(path, Columns(), max_series=2, chunk_rows=50))
    summary = forecast_file(path, tmp_path / "f.csv", Options(horizon=3, chunk_rows=50))
    assert not summary.streamed and summary.series == 5
    assert len(pd.read_csv(tmp_path / "f.csv")) == 15


def test_odd_series_are_forecast_by_rule(tmp_path: Path, capsys) -> None:
    rows = [("zeros", "2024-01-01", 0), ("zeros", "2024-02-01", 0), ("one", "2024-03-01", 5),
            ("neg", "2024-01-01", 4), ("neg", "2024-01-02", -3), ("neg", "2024-01-03", ""),
            ("neg", "2024-01-03", 2), ("neg", "2024-01-09 08:30", 6)]
    path = tmp_path / "odd.csv"
    pd.DataFrame(rows, columns=["item_id", "date", "quantity"]).to_csv(path, index=False)
    assert main(["forecast", str(path), "--horizon", "5", "--out", str(tmp_path / "f.csv"),
                 "--quantiles", "0.8"]) == 0
    table = pd.read_csv(tmp_path / "f.csv")
    assert set(table["item_id"]) == {"zeros", "one", "neg"}
    values = table[["forecast", "q0.8"]].to_numpy(float)
    assert np.isfinite(values).all() and (values >= 0).all()
    err = capsys.readouterr().err
    assert "negative quantities 1" in err and "missing quantities 1" in err
    assert "dates moved to period start 1" in err


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, [], "no such file"),
    ("item,date,qty\na,2024-01-01,1\n", [], "missing column(s) item_id, quantity"),
    ("item_id,date,quantity\na,2024-01-01,1\na,2024-13-45,2\n", [],
     ":3: date '2024-13-45' is not a date"),
    ("item_id,date,quantity\na,2024-01-01,1\na,2024-01-02,lots\n", [],
     ":3: quantity 'lots' is not a number"),
    ("item_id,date,quantity\na,2024-01-01,1\n", ["--freq", "Q"], "'Q' is not a frequency"),
    ("item_id,date,quantity\na,2024-01-01,1\n", ["--quantiles", "0.5,1.5"],
     "--quantiles: 1.5 is not strictly between 0 and 1"),
    ("item_id,date,quantity\n", [], "the file has no rows"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, content, args,
                                          message: str) -> None:
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "f.csv"
    assert main(["forecast", str(path), "--horizon", "3", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("restock: ")
    assert not out.exists() and not (tmp_path / "f.csv.part").exists()


def test_a_corrupt_gzip_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "in.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert main(["forecast", str(path), "--horizon", "3", "--out", str(tmp_path / "f.csv")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _write_as_exported(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet as exports write it: Arrow dates, float32 quantities, several row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dates = pa.array(frame["date"].dt.date, pa.date32(), mask=frame["date"].isna().to_numpy())
    pq.write_table(pa.table({"item_id": frame["item_id"].to_numpy(), "date": dates,
                             "quantity": frame["quantity"].to_numpy(np.float32)}),
                   path, row_group_size=150)
    return path


def test_parquet_with_arrow_dates_goes_straight_to_the_panel(tmp_path: Path,
                                                             monkeypatch) -> None:
    from restock.forecast import panel as panel_module
    from restock.forecast.io import date_range

    history = _history(series=10)
    path = _write_as_exported(history, tmp_path / "h.parquet")
    reference = tmp_path / "ref.csv"
    forecast_file(_write(history, tmp_path / "h.csv"), reference, Options(horizon=7))
    assert date_range(path, Columns()) == (history["date"].min(), history["date"].max())

    def refuse(*args, **kwargs):
        raise AssertionError("the pandas route was taken")

    monkeypatch.setattr(panel_module, "to_panel", refuse)
    out = tmp_path / "out.csv"
    summary = forecast_file(path, out, Options(horizon=7, max_series=3, chunk_rows=200))
    assert summary.streamed and summary.series == 10
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(reference))


@pytest.mark.parametrize(("jobs", "where"), [(1, 40), (2, 40), (2, -20)])
def test_a_missing_date_in_parquet_names_its_row(tmp_path: Path, capsys, jobs: int,
                                                 where: int) -> None:
    history = _history(series=6).reset_index(drop=True)
    row = where % len(history)          # -20: in the second process's run of row groups
    history.loc[row, "date"] = pd.NaT
    path = _write_as_exported(history, tmp_path / "h.parquet")
    assert main(["forecast", str(path), "--horizon", "3", "--jobs", str(jobs), "--out",
                 str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path} row {row + 1}:" in err and "not a date" in err and "Traceback" not in err
    assert not (tmp_path / "f.csv").exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_missing_id_late_in_parquet_names_its_row(tmp_path: Path, capsys, jobs: int) -> None:
    history = _history(series=6).reset_index(drop=True)
    # the last row of the fifth series: in the second process's run of row groups, and the
    # series stay grouped (so the file is streamed, not read whole)
    row = int(np.flatnonzero(history["item_id"] == "sku-005")[0]) - 1
    history["item_id"] = history["item_id"].astype(object)
    history.loc[row, "item_id"] = None
    path = _write_as_exported(history, tmp_path / "h.parquet")
    assert main(["forecast", str(path), "--horizon", "3", "--jobs", str(jobs), "--out",
                 str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path} row {row + 1}:" in err and "item id is missing" in err
    assert "Traceback" not in err and not (tmp_path / "f.csv").exists()


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_read_by_arrow_forecasts_as_csv_read_by_pandas(tmp_path: Path, suffix: str) -> None:
    history = _history(series=40)
    series = history["item_id"].nunique()
    path = _write(history, tmp_path / f"h{suffix}")
    span = {"start": pd.Timestamp("2024-01-01"), "end": pd.Timestamp("2024-04-29")}
    by = {engine: [forecast_panel(panel, 7, calibrate=False) for panel in panels(
        path, Columns(), freq="D", max_series=7, csv_by_arrow=engine, **span)]
        for engine in (True, False)}
    assert [len(f.ids) for f in by[True]] == [7] * (series // 7) + [series % 7]
    arrow, pandas = ({"ids": np.concatenate([f.ids for f in fs]),
                      "model": np.concatenate([f.model for f in fs]),
                      "point": np.concatenate([f.point for f in fs])} for fs in by.values())
    assert len(arrow["ids"]) == series and list(arrow["ids"]) == list(pandas["ids"])
    assert list(arrow["model"]) == list(pandas["model"])
    # the groups differ (pandas' are whole 1M-row chunks), and matrix products over groups of
    # another size may round the last bit differently
    np.testing.assert_allclose(arrow["point"], pandas["point"], rtol=1e-12)


def _csv_variant(kind: str) -> bytes:
    history = _history(series=12, seed=7).reset_index(drop=True)
    history["date"] = history["date"].dt.strftime("%Y-%m-%d")
    if kind == "quoted ids with commas":
        history["item_id"] = "item, " + history["item_id"]
    if kind == "spaces around numbers":
        history["quantity"] = " " + history["quantity"].astype(str) + " "
    if kind == "blank and NA quantities":
        history = history.astype({"quantity": object})
        history.loc[[5, 9], "quantity"] = ["", "NA"]
    if kind == "other columns, other order":
        history = history.assign(note="x", extra=1.5)[
            ["note", "quantity", "extra", "date", "item_id"]]
    text = history.to_csv(index=False, lineterminator="\r\n" if kind == "CRLF" else "\n")
    return ("\ufeff" + text if kind == "byte order mark" else text).encode()


@pytest.mark.parametrize("kind", ["CRLF", "byte order mark", "quoted ids with commas",
                                  "spaces around numbers", "blank and NA quantities",
                                  "other columns, other order"])
def test_arrow_and_pandas_lay_out_the_same_csv_alike(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(_csv_variant(kind))
    span = {"start": pd.Timestamp("2024-01-01"), "end": pd.Timestamp("2024-04-29")}
    laid = {}
    for arrow in (True, False):
        got = list(panels(path, Columns(), freq="D", csv_by_arrow=arrow, **span))
        laid[arrow] = pd.concat([pd.DataFrame(p.values, index=p.ids, columns=p.dates)
                                 for p in got])
        laid[arrow, "missing"] = sum(p.notes["missing_quantities"] for p in got)
    pd.testing.assert_frame_equal(laid[True], laid[False])
    assert laid[True, "missing"] == laid[False, "missing"] == \
        (2 if kind == "blank and NA quantities" else 0)


def _late_cell(path: Path, column: str, value: str | None) -> tuple[Path, int]:
    """A CSV of 300 series (several of Arrow's smallest blocks) whose ``column`` on a late line
    is ``value`` (None: as it was); the line's number."""
    history = _history(series=300).reset_index(drop=True)
    history["date"] = history["date"].dt.strftime("%Y-%m-%d")
    row = len(history) - 30
    if value is not None:
        history[column] = history[column].astype(object)
        history.loc[row, column] = value
    _write(history, path)
    assert path.stat().st_size > 4 * (1 << 16)
    return path, row + 2                            # the header is line 1


def test_a_bad_cell_after_arrow_read_groups_is_named_by_its_line(tmp_path: Path,
                                                                  capsys) -> None:
    path, line = _late_cell(tmp_path / "late.csv", "quantity", "x")
    with pytest.raises(NotPlainCsv):                # after whole groups were read
        for _ in panels(path, Columns(), freq="D", max_series=20, chunk_rows=10):
            pass
    out = tmp_path / "f.csv"
    assert main(["forecast", str(path), "--horizon", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}:{line}:" in err and "'x' is not a number" in err and "Traceback" not in err
    assert not out.exists() and not out.with_name("f.csv.part").exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_date_arrow_cannot_take_late_in_a_csv_is_read_by_pandas(tmp_path: Path,
                                                                   jobs: int) -> None:
    plain, line = _late_cell(tmp_path / "plain.csv", "date", None)
    date = pd.read_csv(plain).loc[line - 2, "date"]
    odd, _ = _late_cell(tmp_path / "odd.csv", "date", f"{date} 00:00:00")   # same day
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    forecast_file(plain, one, Options(horizon=3, max_series=20, chunk_rows=10))
    summary = forecast_file(odd, two, Options(horizon=3, max_series=20, chunk_rows=10,
                                              jobs=jobs))
    assert summary.series == pd.read_csv(plain)["item_id"].nunique()
    assert two.read_bytes() == one.read_bytes()


def test_a_missing_id_in_a_csv_read_by_two_processes_names_its_line(tmp_path: Path,
                                                                      capsys) -> None:
    history = _history(series=6).reset_index(drop=True)
    row = int(np.flatnonzero(history["item_id"] == "sku-005")[0]) - 1   # second share
    history["item_id"] = history["item_id"].astype(object)
    history.loc[row, "item_id"] = ""
    path = _write(history, tmp_path / "h.csv")
    assert main(["forecast", str(path), "--horizon", "3", "--jobs", "2", "--out",
                 str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}:{row + 2}:" in err and "item id is missing" in err and "Traceback" not in err


def test_numbers_are_written_to_six_significant_digits_as_short_decimals() -> None:
    from restock.forecast.run import significant

    values = np.array([123456.789, 1234567.8, 0.000123456789, 0.0, -5.55555555, 91.64449999,
                       2.0, np.nan])
    got = significant(values)
    assert [repr(float(v)) for v in got[:7]] == ["123457.0", "1234570.0", "0.000123457", "0.0",
                                                 "-5.55556", "91.6445", "2.0"]
    assert np.isnan(got[7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # no overflow on the way either
        tiny = significant(np.array([6.5339800000000005e-34, 1e-310, 3.2e-12, -4e-13]))
    assert [repr(float(v)) for v in tiny] == ["0.0", "0.0", "3.2e-12", "0.0"]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_several_processes_write_what_one_writes(tmp_path: Path, suffix: str) -> None:
    path = _write(_history(series=11), tmp_path / f"h{suffix}")
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    forecast_file(path, one, Options(horizon=5, max_series=2, chunk_rows=60))
    summary = forecast_file(path, two, Options(horizon=5, max_series=2, chunk_rows=60, jobs=3))
    assert summary.series == 11 and sum(summary.models.values()) == 11
    assert two.read_bytes() == one.read_bytes()
    single = forecast_file(path, tmp_path / "three.csv", Options(horizon=5, max_series=2,
                                                                  chunk_rows=60))
    assert summary.steady == single.steady > 0   # each process's count is added up
    (tmp_path / "three.csv").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["one.csv", "two.csv",
                                                                 f"h{suffix}"])


def test_a_bad_row_found_by_a_worker_process_is_still_one_line(tmp_path: Path, capsys) -> None:
    history = _history(series=6).reset_index(drop=True)
    history["quantity"] = history["quantity"].astype(object)
    history.loc[len(history) - 3, "quantity"] = "lots"      # in the last group
    path = _write(history, tmp_path / "h.csv")
    assert main(["forecast", str(path), "--horizon", "3", "--jobs", "2",
                 "--out", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}:{len(history) - 1}" in err and "'lots' is not a number" in err
    assert "Traceback" not in err and not (tmp_path / "f.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["h.csv"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="reuse_freed_memory tunes glibc's allocator only")
def test_after_reuse_freed_memory_arrow_reads_into_the_c_librarys_heap(tmp_path: Path) -> None:
    # In a fresh process: the setting is process-wide, and Arrow's default pool is another
    # allocator until it is changed.
    path = _write(_history(series=5), tmp_path / "h.parquet")
    code = ("import pyarrow as pa, pyarrow.parquet as pq\n"
            "from restock.forecast.io import reuse_freed_memory\n"
            "before = pa.default_memory_pool().backend_name\n"
            "kept = reuse_freed_memory()\n"
            f"table = pq.read_table({str(path)!r})\n"
            "print(before, kept, pa.default_memory_pool().backend_name,\n"
            "      pa.system_memory_pool().bytes_allocated() >= table.nbytes > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] != "system" and out[1:] == ["True", "system", "True"]
