"""Forecast a tidy demand file into a tidy forecast CSV, a group of series at a time."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from restock.errors import DataError
from restock.forecast.io import (
    Columns,
    NotGrouped,
    date_range,
    located,
    panels,
    read_all,
    reuse_freed_memory,
)
from restock.forecast.panel import forecast_frame, forecast_panel, to_panel

FREQS = ("D", "W", "M")


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

    def __post_init__(self) -> None:
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
    streamed: bool = True
    seconds: float = 0.0

    def add(self, info: dict, series: int) -> None:
        """Fold one group's PanelForecast.info into the totals."""
        self.series += series
        self.classes.update(info.get("classes", {}))
        self.models.update(info.get("models", {}))
        notes = dict(info.get("input", {}))
        warning = notes.pop("frequency_warning", None)
        if warning:
            self.warnings.add(warning)
        self.notes.update({k: v for k, v in notes.items() if isinstance(v, int)})

    def lines(self) -> list[str]:
        """A few human lines for stderr."""
        def counts(counter: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in counter.most_common())

        fixes = {k: v for k, v in self.notes.items() if k != "rows" and v}
        how = "" if self.streamed else ", read whole"
        lines = [(f"forecast {self.series} series × {self.horizon} periods → {self.out} "
                  f"({self.seconds:.1f} s{how})"),
                 f"classes: {counts(self.classes)}", f"models: {counts(self.models)}"]
        if fixes:
            lines.append("input rules applied: " + ", ".join(
                f"{k.replace('_', ' ')} {v}" for k, v in sorted(fixes.items())))
        lines += [f"warning: {w}" for w in sorted(self.warnings)]
        return lines


def forecast_file(path: Path, out: Path, options: Options,
                  columns: tuple[str, str, str] = ("item_id", "date", "quantity")) -> Summary:
    """Forecast every series of ``path`` into ``out`` (written whole or not at all)."""
    started = time.perf_counter()
    cols = Columns(*columns)
    path, out = Path(path), Path(out)
    span = date_range(path, cols, options.chunk_rows)
    if span is None:
        raise DataError("the file has no rows", record=str(path))
    part = out.with_name(out.name + ".part")
    reuse_freed_memory()
    grid = {"freq": options.freq, "start": span[0], "end": span[1]}
    try:
        summary = _write(panels(path, cols, **grid, max_series=options.max_series,
                                chunk_rows=options.chunk_rows),
                         part, options, Summary(out=out, horizon=options.horizon))
    except NotGrouped:
        whole = read_all(path, cols, options.chunk_rows)
        summary = _write(iter([_whole_panel(whole, path, cols, grid)]), part, options,
                         Summary(out=out, horizon=options.horizon, streamed=False))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(out)
    summary.seconds = time.perf_counter() - started
    return summary


def _whole_panel(frame: pd.DataFrame, path: Path, cols: Columns, grid: dict):
    try:
        return to_panel(frame, id_col=cols.id, date_col=cols.date, value_col=cols.quantity,
                        **grid)
    except DataError as err:
        raise located(err, path, frame) from None


def _write(groups_of_series, part: Path, options: Options, summary: Summary) -> Summary:
    deadline = time.monotonic() + options.time_budget
    try:
        with part.open("w", encoding="utf-8", newline="") as handle:
            for i, panel in enumerate(groups_of_series):
                result = forecast_panel(panel, options.horizon, season_length=options.season,
                                        time_budget_seconds=max(deadline - time.monotonic(),
                                                                0.0))
                table = forecast_frame(result, options.quantiles)
                table["date"] = table["date"].dt.strftime("%Y-%m-%d")
                table.to_csv(handle, header=i == 0, index=False, float_format="%.6g")
                summary.add(result.info, len(result.ids))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return summary
