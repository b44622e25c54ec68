"""Forecast a tidy demand file into a tidy forecast CSV, a group of series at a time."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from restock.errors import DataError
from restock.forecast.io import (
    Columns,
    NotGrouped,
    NotPlainCsv,
    date_range,
    is_parquet,
    located_panel,
    one_blas_thread,
    panels,
    read_all,
    reuse_freed_memory,
    shared_in_runs,
)
from restock.forecast.panel import PanelForecast, forecast_columns, forecast_panel
from restock.forecast.select import DAILY_DEFAULT

FREQS = ("D", "W", "M")
SLOW_COUNTS = ("eligible", "fitted", "replaced", "not_clearly_better")   # from info["statsmodels"]


@dataclass
class Options:
    """What to forecast and how (the CLI's flags)."""

    horizon: int
    freq: str = "D"
    season: int | None = None
    quantiles: tuple[float, ...] = (0.5, 0.9, 0.95)
    time_budget: float = 0.0
    max_series: int = 2_000
    chunk_rows: int = 1_000_000
    jobs: int = 1                   # processes forecasting groups side by side

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise DataError(f"{self.jobs} is not a number of processes (at least 1)",
                            record="--jobs")
        if self.freq not in FREQS:
            raise DataError(f"{self.freq!r} is not a frequency (use D, W or M)", record="--freq")
        if self.horizon < 1:
            raise DataError(f"{self.horizon} is not a horizon (at least 1)", record="--horizon")


@dataclass
class Summary:
    """What a run did: counts of series, classes, models and of the input rules applied."""

    out: Path
    horizon: int
    series: int = 0
    classes: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    warnings: set = field(default_factory=set)
    steady: int = 0         # daily series kept on the daily default, no other model clearly
    # better (select.DAILY_DEFAULT)
    slow: Counter = field(default_factory=Counter)      # the statsmodels pass's counts
    streamed: bool = True
    seconds: float = 0.0

    def add(self, info: dict, series: int) -> None:
        """Fold one group's PanelForecast.info into the totals."""
        self.series += series
        self.classes.update(info.get("classes", {}))
        self.models.update(info.get("models", {}))
        self.steady += info.get("kept_steady_level", 0)
        self.slow.update({k: v for k, v in info.get("statsmodels", {}).items()
                          if k in SLOW_COUNTS})
        notes = dict(info.get("input", {}))
        warning = notes.pop("frequency_warning", None)
        if warning:
            self.warnings.add(warning)
        self.notes.update({k: v for k, v in notes.items() if isinstance(v, int)})

    def merge(self, other: Summary) -> None:
        """Add another process's totals to these."""
        self.series += other.series
        for mine, theirs in ((self.classes, other.classes), (self.models, other.models),
                             (self.notes, other.notes), (self.slow, other.slow)):
            mine.update(theirs)
        self.warnings |= other.warnings
        self.steady += other.steady

    def lines(self) -> list[str]:
        """A few human lines for stderr."""
        def counts(counter: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in counter.most_common())

        fixes = {k: v for k, v in self.notes.items() if k != "rows" and v}
        how = "" if self.streamed else ", read whole"
        lines = [(f"forecast {self.series} series × {self.horizon} periods → {self.out} "
                  f"({self.seconds:.1f} s{how})"),
                 f"classes: {counts(self.classes)}", f"models: {counts(self.models)}"]
        if self.steady:
            lines.append(f"kept {DAILY_DEFAULT}, no other model clearly better on daily data: "
                         f"{self.steady} series")
        if self.slow["eligible"]:
            lines.append(self._slow_line())
        if fixes:
            lines.append("input rules applied: " + ", ".join(
                f"{k.replace('_', ' ')} {v}" for k, v in sorted(fixes.items())))
        lines += [f"warning: {w}" for w in sorted(self.warnings)]
        return lines

    def _slow_line(self) -> str:
        slow = self.slow
        line = f"statsmodels: {slow['fitted']} of {slow['eligible']} eligible series fitted, " \
               f"{slow['replaced']} took a slow model"
        if slow["not_clearly_better"]:
            line += f", {slow['not_clearly_better']} had one not clearly better than " \
                f"{DAILY_DEFAULT}"
        return line


def forecast_file(path: Path, out: Path, options: Options,
                  columns: tuple[str, str, str] = ("item_id", "date", "quantity")) -> Summary:
    """Forecast every series of ``path`` into ``out`` (written whole or not at all)."""
    started = time.perf_counter()
    cols = Columns(*columns)
    path, out = Path(path), Path(out)
    part = out.with_name(out.name + ".part")
    reuse_freed_memory()
    one_blas_thread()
    with _workers(options.jobs) as pool:
        span = _date_span(path, cols, options, pool)
        if span is None:
            raise DataError("the file has no rows", record=str(path))
        summary = _forecast_into(path, part, out, options, cols, span, pool)
    part.replace(out)
    summary.seconds = time.perf_counter() - started
    return summary


def _workers(jobs: int):
    """A pool of ``jobs`` fresh processes, or nothing to enter for one job."""
    if jobs < 2:
        return nullcontext(None)
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    return ProcessPoolExecutor(jobs, mp_context=get_context("spawn"))


def _date_span(path: Path, cols: Columns, options: Options, pool) -> tuple | None:
    """The file's first and last date; a plain CSV's is read by the pool, a share each."""
    if pool is None or is_parquet(path) or not path.is_file() or \
            not shared_in_runs(path, cols, options.jobs):
        return date_range(path, cols, options.chunk_rows)
    parts = [pool.submit(date_range, path, cols, options.chunk_rows, (k, options.jobs))
             for k in range(options.jobs)]
    try:
        spans = [span for span in (part.result() for part in parts) if span is not None]
    except NotPlainCsv:         # pandas reads the dates and names a bad one's line
        return date_range(path, cols, options.chunk_rows)
    return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None


def _forecast_into(path: Path, part: Path, out: Path, options: Options, cols: Columns,
                   span: tuple, pool) -> Summary:
    grid = {"freq": options.freq, "start": span[0], "end": span[1]}
    try:
        try:
            summary = _streamed(path, part, out, options, cols,
                                grid | {"csv_by_arrow": True}, pool)
        except NotPlainCsv:     # a CSV cell Arrow cannot take: pandas reads it, by the rules
            summary = _streamed(path, part, out, options, cols,
                                grid | {"csv_by_arrow": False}, pool)
    except NotGrouped:
        whole = read_all(path, cols, options.chunk_rows)
        summary = _write(iter([located_panel(whole, path, cols, **grid)]), part, options,
                         Summary(out=out, horizon=options.horizon, streamed=False))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return summary


def _streamed(path: Path, part: Path, out: Path, options: Options, cols: Columns,
              reading: dict, pool) -> Summary:
    """The file forecast group by group; ``reading``: the grid and how a CSV is read."""
    if pool is not None:
        return _in_processes(path, part, out, options, cols, reading, pool)
    return _write(panels(path, cols, **reading, max_series=options.max_series,
                         chunk_rows=options.chunk_rows),
                  part, options, Summary(out=out, horizon=options.horizon))


def _in_processes(path: Path, part: Path, out: Path, options: Options, cols: Columns,
                  reading: dict, pool) -> Summary:
    """Process k of n forecasts its share of the file (see :func:`panels`: a run of a Parquet
    file's row groups, or groups k, k + n, ...), each group into a file of its own; the files
    are then joined in the file's order, so the output is what one process writes."""
    folder = Path(tempfile.mkdtemp(prefix=f"{part.name}.", dir=part.parent))
    try:
        in_runs = shared_in_runs(path, cols, options.jobs, reading["csv_by_arrow"])
        shares = [pool.submit(_forecast_share, path, cols, options, reading,
                              (k, options.jobs), in_runs, folder)
                  for k in range(options.jobs)]
        done = [share.result() for share in shares]
        # a share of a CSV cannot see the others: a series with lines in two shares shows here
        if pd.Index(np.concatenate([ids for _, ids in done])).has_duplicates:
            raise NotGrouped("the rows of a series are not together in the file")
        summary = Summary(out=out, horizon=options.horizon)
        for one, _ in done:
            summary.merge(one)
        with part.open("wb") as handle:
            for n, piece in enumerate(sorted(folder.iterdir())):
                with piece.open("rb") as source:
                    if n:               # every piece has the header; the output has it once
                        source.readline()
                    shutil.copyfileobj(source, handle, 1 << 20)
        return summary
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _forecast_share(path: Path, cols: Columns, options: Options, reading: dict,
                    share: tuple[int, int], in_runs: bool,
                    folder: Path) -> tuple[Summary, np.ndarray]:
    """One process's groups (see :func:`_in_processes`), each written to ``folder`` under a
    name that sorts in the file's order; its summary and the ids it forecast."""
    reuse_freed_memory()
    one_blas_thread()
    deadline = time.monotonic() + options.time_budget
    mine, every = share
    summary, ids = Summary(out=folder, horizon=options.horizon), []
    for j, panel in enumerate(panels(path, cols, **reading, max_series=options.max_series,
                                     chunk_rows=options.chunk_rows, share=share)):
        result = forecast_panel(panel, options.horizon, season_length=options.season,
                                time_budget_seconds=max(deadline - time.monotonic(), 0.0),
                                calibrate=mine == 0 and j == 0)   # the file's first group
        place = (mine, j) if in_runs else (0, mine + j * every)
        with (folder / "{:04d}-{:09d}.csv".format(*place)).open("wb") as handle:
            write_csv(result, options.quantiles, handle, header=True)
        summary.add(result.info, len(result.ids))
        ids.append(np.asarray(result.ids, dtype=object))
    return summary, (np.concatenate(ids) if ids else np.zeros(0, dtype=object))


def _write(groups_of_series, part: Path, options: Options, summary: Summary) -> Summary:
    deadline = time.monotonic() + options.time_budget
    try:
        with part.open("wb") as handle:
            for i, panel in enumerate(groups_of_series):
                # calibration is measured on the first group's backtest only (it is a sample)
                result = forecast_panel(panel, options.horizon, season_length=options.season,
                                        time_budget_seconds=max(deadline - time.monotonic(),
                                                                0.0), calibrate=i == 0)
                write_csv(result, options.quantiles, handle, header=i == 0)
                summary.add(result.info, len(result.ids))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return summary


def write_csv(result: PanelForecast, quantiles: tuple[float, ...], handle: BinaryIO, *,
              header: bool) -> None:
    """The rows of :func:`restock.forecast.forecast_frame` as CSV, written by Arrow's writer
    (several times faster than pandas' on millions of rows): dates as YYYY-MM-DD, numbers to
    six significant digits, text quoted."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # the same h dates repeat for every series: formatted once
    columns = forecast_columns(result, quantiles,
                               dates=np.asarray(result.dates.strftime("%Y-%m-%d")))
    for name in ("item_id", "model"):
        columns[name] = columns[name].astype(str)
    for name, values in columns.items():
        if values.dtype.kind == "f":
            columns[name] = significant(values)
    pacsv.write_csv(pa.table({k: pa.array(v) for k, v in columns.items()}), handle,
                    pacsv.WriteOptions(include_header=header))


def significant(values: np.ndarray, digits: int = 6) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (as ``%.6g`` would print them).

    Dividing the rounded integer by a power of ten gives the double nearest that decimal, so
    it prints as the short decimal, not 1.2345600000000001. That holds while the power of ten
    is exact (up to 1e22), so amounts under ``TINY`` units are written as 0: a quantile of
    6.5e-34 units had been written as 6.5339800000000005e-34."""
    values = np.where(np.abs(values) < TINY, 0.0, values)
    with np.errstate(all="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
        exponent = (digits - 1 - np.where(np.isfinite(magnitude), magnitude, 0)).astype(int)
        scale = np.power(10.0, np.abs(exponent))
        up = exponent >= 0
        return np.where(up, np.round(values * scale) / scale, np.round(values / scale) * scale)


TINY = 1e-12
