"""Dense panels and the forecaster: classify, choose by backtest, forecast with uncertainty.

``forecast_panel`` works chunk by chunk (``chunk_size`` series at a time, bounding memory) and,
inside a chunk, on all series of a demand group at once (see restock.forecast.fast). The rules
for odd input are in docs/forecasting.md; what they touched is counted in ``Panel.notes`` and
carried into ``PanelForecast.info``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from restock.errors import DataError
from restock.forecast import fast
from restock.forecast.classify import Classes, classify
from restock.forecast.quantiles import coverage, demand_quantiles, with_history
from restock.forecast.select import (
    DAILY_LONG_RUN_SHARE,
    LONG_RUN_PERIODS,
    ORIGINS,
    Backtest,
    Choice,
    candidates,
    choose,
    demand_noise_at,
)

_FREQ_OFFSETS = {"D": "D", "W": "W-MON", "M": "MS"}
SEASON = {"D": 7, "W": 52, "M": 12}
CALIBRATION_SAMPLE = 1000
DEAD_CONFIDENCE = 0.5
DEFAULT_QUANTILES = (0.5, 0.9, 0.95)


@dataclass
class Panel:
    """Series × periods array of demand, with the ids and the period start dates."""

    ids: np.ndarray          # (n,) series ids
    dates: pd.DatetimeIndex  # (t,) period starts
    values: np.ndarray       # (n, t) float64, NaN = not observed (before a series starts)
    freq: str = "D"
    notes: dict = field(default_factory=dict)   # counts of what the input rules touched


@dataclass
class PanelForecast:
    """Point forecasts per series and step, the chosen model, its backtest and its uncertainty."""

    ids: np.ndarray
    dates: pd.DatetimeIndex        # (h,) forecast period starts
    point: np.ndarray              # (n, h) >= 0
    model: np.ndarray              # (n,) model name per series
    sigma: np.ndarray              # (n,) sd of one-period forecast error
    demand_class: np.ndarray       # (n,) smooth / erratic / intermittent / lumpy / new / dead / ..
    info: dict = field(default_factory=dict)
    params: list[dict] = field(default_factory=list)  # chosen model's parameters (JSON-able)
    mase: np.ndarray = field(default_factory=lambda: np.zeros(0))      # backtest, NaN: unmeasured
    rmsse: np.ndarray = field(default_factory=lambda: np.zeros(0))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))  # 0..1
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # whole units
    spread: np.ndarray = field(default_factory=lambda: np.zeros(0))  # total-error growth, >= 1
    chosen_by: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # (n,) why
    # the series has its model: a select.CHOSEN_BY key
    history_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) per period,
    history_var: np.ndarray = field(default_factory=lambda: np.zeros(0))   # whole history

    def demand_over(self, periods: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of total demand over the next ``periods`` (per series, may be fractional).

        Within the horizon the mean follows the forecast path; beyond it, the path's average rate.
        """
        periods = np.maximum(np.broadcast_to(np.asarray(periods, dtype=float), self.ids.shape),
                             0.0)
        n, h = self.point.shape
        if h == 0:
            return np.zeros(n), np.zeros(n)
        cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(self.point, axis=1)], axis=1)
        whole = np.minimum(np.floor(periods), h).astype(np.int64)
        rows = np.arange(n)
        mean = cumulative[rows, whole]
        rate = self.point.mean(axis=1)
        inside = whole < h
        step = self.point[rows, np.minimum(whole, h - 1)]
        mean = mean + np.where(inside, (periods - whole) * step, (periods - h) * rate)
        spread = self.spread if len(self.spread) == n else np.ones(n)
        # Over one period the spread is sigma; over a backtest window it grew by ``spread``
        # more than independent errors would; in between, interpolate.
        growth = 1.0 + (spread - 1.0) * np.clip(periods - 1.0, 0.0, None) / \
            max(self.info.get("backtest", {}).get("horizon", h) - 1, 1)
        sd = np.nan_to_num(self.sigma) * np.sqrt(periods * np.minimum(growth, spread))
        return np.maximum(mean, 0.0), sd

    def demand_quantiles(self, periods: np.ndarray | float, qs: Sequence[float],
                         over: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(n, len(qs)) quantiles of total demand over the next ``periods`` per series (the
        model's demand mixed with the history's, ``quantiles.with_history``). ``over``: the
        model's mean and sd of that total where they differ from ``demand_over``'s (a
        promotion ahead)."""
        mean, sd = self.demand_over(periods) if over is None else over
        periods = np.maximum(np.broadcast_to(np.asarray(periods, dtype=float), mean.shape), 0.0)
        mean, var = self._with_history(mean, sd ** 2, periods, slice(None))
        counts = self.counts if len(self.counts) == len(mean) else False
        return demand_quantiles(mean, var, qs, counts)

    def step_quantiles(self, qs: Sequence[float]) -> np.ndarray:
        """(n, h, len(qs)) quantiles of each single period's demand."""
        n, h = self.point.shape
        var = np.nan_to_num(self.sigma) ** 2
        counts = self.counts if len(self.counts) == n else np.zeros(n, dtype=bool)
        out = np.empty((n, h, len(qs)))
        # Most paths are flat: their quantiles are worked out once per series, not per step.
        flat = (self.point == self.point[:, :1]).all(axis=1) if h else np.ones(n, dtype=bool)
        for rows, steps in ((flat, 1), (~flat, h)):
            mean, step_var = self._with_history(self.point[rows, :steps],
                                                np.repeat(var[rows, None], steps, axis=1), 1.0,
                                                rows)
            out[rows] = demand_quantiles(mean, step_var, qs,
                                         np.repeat(counts[rows, None], steps, axis=1))
        return out

    def _with_history(self, mean: np.ndarray, var: np.ndarray, periods: np.ndarray | float,
                      rows) -> tuple[np.ndarray, np.ndarray]:
        """The model's mean and variance for ``rows`` mixed with each series' whole history,
        unchanged when the forecast carries no history (one built by hand)."""
        n = len(self.ids)
        if len(self.history_mean) != n or len(self.history_var) != n:
            return mean, var
        past_mean, past_var = self.history_mean[rows], self.history_var[rows]
        if mean.ndim == 2:
            past_mean, past_var = past_mean[:, None], past_var[:, None]
        return with_history(mean, var, periods, past_mean, past_var)

    def catalog(self) -> pd.DataFrame:
        """One row per series: what was chosen and why, with which parameters and backtest
        error (the model catalog's columns)."""
        import json

        window = self.info.get("window", {})
        return pd.DataFrame({
            "item_id": self.ids, "model": self.model, "chosen_by": self.chosen_by,
            "demand_class": self.demand_class,
            "params": [json.dumps(p, sort_keys=True) for p in self.params],
            "mase": self.mase, "rmsse": self.rmsse, "confidence": self.confidence,
            "window_start": window.get("start"), "window_end": window.get("end"),
            "code_version": self.info.get("code_version")})


# ---------------------------------------------------------------- tidy → panel

def to_panel(history: pd.DataFrame, *, freq: str = "D", id_col: str = "item_id",
             date_col: str = "date", value_col: str = "quantity",
             end: pd.Timestamp | None = None, start: pd.Timestamp | None = None) -> Panel:
    """Tidy rows → dense panel from ``start`` (default: the first date) to ``end`` (default: the
    last date). Rules (each counted in ``Panel.notes``):

    missing periods inside a series and missing or non-finite quantities are zero demand;
    negative quantities (returns) count as zero demand; several rows in one period (duplicate or
    irregular dates) are summed; dates off the period grid are moved to their period's start.
    """
    if freq not in _FREQ_OFFSETS:
        raise DataError(f"unknown frequency {freq!r} (use D, W or M)", record="freq")
    missing = [c for c in (id_col, date_col, value_col) if c not in history.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}; the input needs "
                        f"{id_col}, {date_col}, {value_col}", record="columns")
    stamps = _Stamps.of(_dates(history[date_col]), freq)
    quantity = _quantities(history[value_col])
    codes, ids = _item_codes(history[id_col])
    return _lay_out(codes, ids, stamps, quantity, freq, start, end)


def arrow_panel(table, *, freq: str = "D", id_col: str = "item_id", date_col: str = "date",
                value_col: str = "quantity", end: pd.Timestamp | None = None,
                start: pd.Timestamp | None = None) -> Panel | None:
    """:func:`to_panel` of a pyarrow Table whose rows are grouped by id, read without pandas.

    For files as exports write them (dates as Arrow dates, numeric quantities, every series'
    rows together) the columns are used as they are, which saves several passes over tens of
    millions of rows. Anything else — text dates, timestamps, missing ids or dates, ids not
    grouped — returns None, and :func:`to_panel` takes the table (and names a bad row).
    """
    import pyarrow as pa

    if freq not in _FREQ_OFFSETS:
        raise DataError(f"unknown frequency {freq!r} (use D, W or M)", record="freq")
    ids, dates, numbers = (table.column(c) for c in (id_col, date_col, value_col))
    if not (pa.types.is_date32(dates.type) and _is_number(numbers.type)) or \
            ids.null_count or dates.null_count or not table.num_rows:
        return None
    runs = _grouped_runs(ids)
    if runs is None:
        return None
    codes, names = runs
    days = _joined(dates.cast(pa.int32()))
    quantity = _joined(numbers)                                       # null → NaN
    if not np.issubdtype(quantity.dtype, np.floating):
        quantity = quantity.astype(np.float64)
    if not np.isfinite(quantity).all():     # the rule: not a finite number → missing
        quantity = np.where(np.isfinite(quantity), quantity, np.nan)
    return _lay_out(codes, names, _Stamps.of_days(days, freq), quantity, freq, start, end)


def _joined(column) -> np.ndarray:
    """A chunked Arrow column as one numpy array, joined by numpy (whose freed memory the
    process reuses, where Arrow's pool would map fresh pages for every group)."""
    parts = [chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _is_number(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(kind) or pa.types.is_integer(kind)


def _grouped_runs(ids) -> tuple[np.ndarray, np.ndarray] | None:
    """(code per row in sorted-id order, sorted ids) when each id's rows are together."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(ids.type):
        ids = pc.dictionary_encode(ids)
    # Runs are found chunk by chunk, each on its own dictionary: unifying the dictionaries
    # rewrote every row's index (a tenth of laying out a Parquet group).
    names, lengths = [], []
    for chunk in (ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]):
        index = chunk.indices.to_numpy()
        if not len(index):
            continue
        first = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        dictionary = np.asarray(chunk.dictionary.to_numpy(zero_copy_only=False), dtype=str)
        names.append(dictionary[index[first]])
        lengths.append(np.diff(np.r_[first, len(index)]))
    names, lengths = np.concatenate(names), np.concatenate(lengths)
    fresh = np.r_[True, names[1:] != names[:-1]]     # a run may go on in the next chunk
    if not fresh.all():
        lengths = np.add.reduceat(lengths, np.flatnonzero(fresh))
        names = names[fresh]
    if len(np.unique(names)) != len(names):
        return None
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    return np.repeat(rank, lengths), names[order]


def _lay_out(codes: np.ndarray, ids: np.ndarray, stamps: _Stamps, quantity: np.ndarray,
             freq: str, start, end) -> Panel:
    """The dense panel of rows given as series codes (0.. in ``ids`` order), days, quantities."""
    if len(codes) == 0:
        return Panel(ids=ids, dates=pd.DatetimeIndex([]), values=np.zeros((0, 0)), freq=freq,
                     notes=_notes(codes, stamps, quantity, freq, merged=0))
    grid = _grid(stamps, freq, start, end)
    cell = codes * len(grid)
    # in place: a second temporary of tens of millions of rows costs more than the sum
    cell += _grid_index(stamps.period, grid[0], freq)
    plain = bool((quantity >= 0).all())       # no NaN, nothing negative: the usual file
    values, starts, merged = _scatter(cell, codes, quantity if plain else
                                      np.fmax(quantity, 0.0),  # NaN, < 0 → 0
                                      len(ids), len(grid))
    for row in np.flatnonzero(starts):
        values[row, :starts[row]] = np.nan
    notes = _notes(codes, stamps, quantity, freq, merged=merged, plain=plain)
    return Panel(ids=ids, dates=grid, values=values, freq=freq, notes=notes)


@dataclass
class _Stamps:
    """The rows' dates as whole day numbers (since 1970-01-01) and their periods' first days."""

    raw: np.ndarray        # the dates as given (datetime64), for the duplicate count
    days: np.ndarray       # int64 day of each row
    period: np.ndarray     # int64 first day of each row's period
    moved: int             # rows whose date is not its period's first day at midnight

    @classmethod
    def of(cls, dates: np.ndarray, freq: str) -> _Stamps:
        # Integer arithmetic on the day number: numpy's datetime casts cost several passes
        # each over tens of millions of rows.
        unit, count = np.datetime_data(dates.dtype)
        if unit not in _TICKS_PER_DAY or count != 1:
            dates, unit = dates.astype("datetime64[ns]"), "ns"
        days, clock = np.divmod(dates.view(np.int64), _TICKS_PER_DAY[unit])
        period = _period_start(days, freq)
        off = clock != 0
        if freq != "D":
            off |= period != days
        return cls(raw=dates, days=days, period=period, moved=int(np.count_nonzero(off)))

    @classmethod
    def of_days(cls, days: np.ndarray, freq: str) -> _Stamps:
        """From whole day numbers (dates without a time of day)."""
        days = days.astype(np.int64)
        period = _period_start(days, freq)
        moved = 0 if freq == "D" else int(np.count_nonzero(period != days))
        return cls(raw=days, days=days, period=period, moved=moved)


_TICKS_PER_DAY = {"D": 1, "s": 86_400, "ms": 86_400_000, "us": 86_400_000_000,
                  "ns": 86_400_000_000_000}


def _period_start(days: np.ndarray, freq: str) -> np.ndarray:
    """Each day number's period start (itself; Monday of its week; first of its month)."""
    if freq == "M":
        months = days.astype("datetime64[D]").astype("datetime64[M]")
        return months.astype("datetime64[D]").astype(np.int64)
    if freq == "W":   # 1970-01-01 was a Thursday: shift so that Monday is 0
        return days - (days + 3) % 7
    return days


def _grid(stamps: _Stamps, freq: str, start, end) -> pd.DatetimeIndex:
    """Period starts from the first to the last period, widened to ``start`` and ``end``."""
    first = int(stamps.period.min())
    last = int(stamps.period.max())
    if start is not None:
        first = min(first, int(np.datetime64(pd.Timestamp(start), "D").astype(np.int64)))
    if end is not None:
        last = max(last, int(np.datetime64(pd.Timestamp(end), "D").astype(np.int64)))
    return _period_starts(first, last, freq)


@lru_cache(maxsize=8)
def _period_starts(first: int, last: int, freq: str) -> pd.DatetimeIndex:
    # The groups of a file share their grid: building it took 1.3 ms a group (DatetimeIndex
    # is immutable, so the same one can be handed to every panel).
    grid = pd.period_range(pd.Timestamp(np.datetime64(first, "D")),
                           pd.Timestamp(np.datetime64(last, "D")),
                           freq=_FREQ_OFFSETS[freq][0]).start_time
    return pd.DatetimeIndex(grid)


def _grid_index(period: np.ndarray, first: pd.Timestamp, freq: str) -> np.ndarray:
    """Column of each period start on a grid beginning at ``first`` (arithmetic, no lookup)."""
    if freq == "M":
        months = period.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        return months - np.datetime64(first, "M").astype(np.int64)
    index = period - np.datetime64(first, "D").astype(np.int64)
    return index // 7 if freq == "W" else index


def _scatter(cell: np.ndarray, codes: np.ndarray, quantity: np.ndarray, n: int,
             t: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(n, t) sums of ``quantity`` per cell, each series' first observed column, and how many
    rows were merged into a cell another row already had."""
    if len(cell) < 2 or (cell[1:] > cell[:-1]).all():
        # Sorted by item and date with one row per period, as exports usually are: a plain
        # scatter, and each series starts at its first row.
        values = np.zeros(n * t)
        values[cell] = quantity
        # codes rise with the cells, and every code has a row: each one's first row is found
        # by bisection rather than by comparing every pair of rows
        first = np.searchsorted(codes, np.arange(n))
        starts = cell[first] - np.arange(n) * t
        return values.reshape(n, t), starts, 0
    values = np.bincount(cell, weights=quantity, minlength=n * t).reshape(n, t)
    rows_in = np.bincount(cell, minlength=n * t).reshape(n, t)
    merged = len(cell) - int(np.count_nonzero(rows_in))
    return values, (rows_in > 0).argmax(axis=1), merged


def _item_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, ids in sorted order); a missing id is a DataError naming the row."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        names = np.asarray(column.cat.categories.astype(str))
        raw = column.cat.codes.to_numpy()
    else:
        raw, names = pd.factorize(column)
        names = np.asarray(names).astype(str)
    if (raw < 0).any():
        where = int(np.flatnonzero(raw < 0)[0])
        raise DataError("the item id is missing", record=f"row {where + 1}")
    # Which ids occur: one per run of equal codes is enough (few runs when rows are grouped).
    seen = np.zeros(len(names), dtype=bool)
    seen[raw[np.flatnonzero(np.r_[True, raw[1:] != raw[:-1]])] if len(raw) else raw] = True
    used = np.flatnonzero(seen)
    order = np.argsort(names[used], kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[used[order]] = np.arange(len(used))
    if len(used) == len(names) and (order == np.arange(len(used))).all():
        return raw.astype(np.int64), names     # codes already in sorted-id order
    return rank[raw], names[used[order]]


def _dates(column: pd.Series) -> np.ndarray:
    """datetime64 per row (any unit); an unreadable date is a DataError naming the row."""
    if pd.api.types.is_datetime64_any_dtype(column) and \
            getattr(column.dt, "tz", None) is None:
        parsed = column.to_numpy()          # any unit: converting a big column costs a pass
        bad = np.isnat(parsed)
    else:
        series = pd.to_datetime(column, errors="coerce")
        bad = series.isna().to_numpy()
        if bad.any():   # the format was inferred from the first rows; parse the odd ones alone
            series = series.astype("datetime64[ns]")
            series[bad] = pd.to_datetime(column[bad], errors="coerce", format="mixed")
            bad = series.isna().to_numpy()
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_localize(None)
        parsed = series.to_numpy(dtype="datetime64[ns]")
    if bad.any():
        where = int(np.flatnonzero(bad)[0])
        raise DataError(f"date {column.iloc[where]!r} is not a date", record=f"row {where + 1}")
    return parsed


def _quantities(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column) \
            and isinstance(column.dtype, np.dtype):
        values = column.to_numpy().astype(np.float64)
        values[~np.isfinite(values)] = np.nan
        return values
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()
    if bad.any():   # blank text is a missing quantity; anything else is not a number
        bad &= column.astype(str).str.strip() != ""
    if bad.any():
        where = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"quantity {column.iloc[where]!r} is not a number",
                        record=f"row {where + 1}")
    values = numbers.to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def _notes(codes: np.ndarray, stamps: _Stamps, quantity: np.ndarray, freq: str, *,
           merged: int, plain: bool = False) -> dict:
    """What the layout did to the rows; ``plain``: every quantity is known to be >= 0."""
    notes = {
        "rows": len(stamps.days),
        "missing_quantities": 0 if plain else int(np.isnan(quantity).sum()),
        "negative_quantities": 0 if plain else int((quantity < 0).sum()),
        "duplicate_dates": _duplicates(codes, stamps.raw) if merged else 0,
        "rows_merged_into_a_period": merged,
        "dates_moved_to_period_start": stamps.moved,
    }
    sample = _distinct_days(stamps.days[:_HINT_SAMPLE])
    hint = _frequency_hint(sample, freq)
    # A hint says *every* date is alike: a sample of enough dates that are not settles it
    # for all rows; otherwise look at every row.
    if len(stamps.days) > _HINT_SAMPLE and (hint or len(sample) < 3):
        hint = _frequency_hint(_distinct_days(stamps.days), freq)
    if hint:
        notes["frequency_warning"] = hint
    return notes


_HINT_SAMPLE = 10_000


def _distinct_days(days: np.ndarray) -> np.ndarray:
    """The distinct day numbers as dates (a scatter, no sort)."""
    if not len(days):
        return days.astype("datetime64[D]")
    low = int(days.min())
    seen = np.zeros(int(days.max()) - low + 1, dtype=bool)
    seen[days - low] = True
    return (np.flatnonzero(seen) + low).astype("datetime64[D]")


def _duplicates(codes: np.ndarray, dates: np.ndarray) -> int:
    keys = pd.DataFrame({"c": codes, "d": dates})
    return int(keys.duplicated().sum())


def _frequency_hint(days: np.ndarray, freq: str) -> str | None:
    """A warning when the dates (``days``: the distinct days used) look coarser than ``freq``."""
    if len(days) < 3 or freq == "M":
        return None
    if (days == days.astype("datetime64[M]").astype(days.dtype)).all():
        return f"every date is a month start: monthly data read with freq {freq}? (use M)"
    if freq == "D":
        weekday = (days.astype(np.int64) + 3) % 7
        if (weekday == weekday[0]).all():
            return "every date is the same weekday: weekly data read with freq D? (use W)"
    return None


# ---------------------------------------------------------------- the forecaster

def forecast_panel(panel: Panel, horizon: int, *, season_length: int | None = None,
                   time_budget_seconds: float = 0.0, criterion: str = "auto",
                   combine: int = 1, calibrate: bool = True,
                   chunk_size: int = 2_000, min_history: int | None = None,
                   high_value: np.ndarray | None = None,
                   previous: Mapping[str, str] | None = None) -> PanelForecast:
    """Classify every series, choose its model by rolling-origin backtest and forecast it.

    ``season_length`` None takes 7 / 52 / 12 for D / W / M (1 turns seasonal models off).
    ``time_budget_seconds`` > 0 lets statsmodels' ETS / Theta / ARIMA compete on the long
    regular series (and those ``high_value`` marks first) for that long, in parallel processes.
    ``previous`` maps a series id to the model it had last time (``select.model_key``): it is
    kept while it scores within ``select.STICKY_MARGIN`` of the best, statsmodels' ones too
    (known by name, their parameters are refitted every run).
    """
    if horizon < 1:
        raise DataError(f"horizon must be at least 1 (got {horizon})", record="horizon")
    season = SEASON.get(panel.freq, 1) if season_length is None else int(season_length)
    n, t = panel.values.shape
    plan = Backtest.plan(t, horizon)
    # A series with fewer observed periods than the horizon is forecast by its mean: a backtest
    # on windows a fraction of the horizon long chose models that chased its last spike.
    history_needed = max(min_history or 0, fast_min_history(plan), horizon)
    last = None if not previous else \
        np.array([previous.get(str(i)) for i in panel.ids], dtype=object)
    parts = [_forecast_chunk(panel.values[lo:lo + chunk_size], horizon, season, plan,
                             panel.freq, history_needed, criterion, combine,
                             calibrate=calibrate and lo == 0,
                             previous=None if last is None else last[lo:lo + chunk_size])
             for lo in range(0, max(n, 1), chunk_size)] if n else []
    result = _assemble(panel, horizon, parts)
    if time_budget_seconds > 0 and n:
        from restock.forecast.models import improve_with_statsmodels
        improve_with_statsmodels(result, panel, plan, season, time_budget_seconds,
                                 criterion=criterion, high_value=high_value, previous=last)
    if panel.freq == "D" and n:
        _lean_on_long_run(result, np.concatenate([p.long_run for p in parts]),
                          np.concatenate([p.classes.size_moment for p in parts]))
    result.info.update(_info(panel, plan, criterion, season, result, parts))
    return result


def _lean_on_long_run(result: PanelForecast, long_run: np.ndarray, moment: np.ndarray,
                      share: float = DAILY_LONG_RUN_SHARE) -> None:
    """Daily forecasts of the series whose model was chosen (not set by their class: new,
    too short and dead series keep their rule) move ``share`` of the way from their level to
    the long-run mean (``select.DAILY_LONG_RUN_SHARE``). The path is scaled, so a weekly season
    or a trend keeps its shape; a zero path gets the share flat. The error variance stays at
    least the demand's own noise at the new rate (``select.demand_noise``)."""
    rows = np.flatnonzero(result.chosen_by != "class")
    path = result.point[rows]
    level = path.mean(axis=1)
    target = (1.0 - share) * level + share * long_run[rows]
    with np.errstate(all="ignore"):
        scaled = path * (target / level)[:, None]
    result.point[rows] = np.where(level[:, None] > 0, scaled, target[:, None])
    noise = demand_noise_at(target, moment[rows])
    result.sigma[rows] = np.sqrt(np.maximum(result.sigma[rows] ** 2, noise))


def _long_run_mean(y: np.ndarray, start: np.ndarray, history_mean: np.ndarray) -> np.ndarray:
    """Mean demand over each series' last LONG_RUN_PERIODS observed periods (the whole history's
    mean, already known, when the panel is no longer)."""
    t = y.shape[1]
    if t <= LONG_RUN_PERIODS:
        return history_mean
    lo = t - LONG_RUN_PERIODS
    backfilled = np.clip(start - lo, 0, LONG_RUN_PERIODS)     # prefix periods in the window
    total = y[:, lo:].sum(axis=1) - backfilled * y[:, 0]
    observed = LONG_RUN_PERIODS - backfilled
    with np.errstate(all="ignore"):
        return np.where(observed > 0, total / observed, 0.0)


def fast_min_history(plan: Backtest) -> int:
    """Observed periods a series needs before its model is chosen by backtest."""
    from restock.forecast.select import MIN_TRAIN
    return MIN_TRAIN + plan.horizon


@dataclass
class _Chunk:
    point: np.ndarray
    model: np.ndarray
    params: np.ndarray      # (n,) object: the chosen model's parameter dict (read-only)
    mase: np.ndarray
    rmsse: np.ndarray
    sigma: np.ndarray
    confidence: np.ndarray
    spread: np.ndarray
    classes: Classes
    counts: np.ndarray
    calibration: dict
    chosen_by: np.ndarray   # (n,) a select.CHOSEN_BY key
    long_run: np.ndarray    # (n,) mean demand over the last LONG_RUN_PERIODS (daily data only)


def _forecast_chunk(values: np.ndarray, horizon: int, season: int, plan: Backtest, freq: str,
                    min_history: int, criterion: str, combine: int,
                    calibrate: bool, previous: np.ndarray | None = None) -> _Chunk:
    y, start = fast.backfill(values)
    classes = classify(y, start, freq=freq, min_history=min_history)
    n = len(y)
    out = _Chunk(point=np.zeros((n, horizon)), model=np.full(n, "Zero", dtype=object),
                 params=_no_params(n), mase=np.full(n, np.nan),
                 rmsse=np.full(n, np.nan), sigma=np.zeros(n), confidence=np.zeros(n),
                 spread=np.ones(n),
                 classes=classes, counts=_whole_units(y), calibration={},
                 chosen_by=np.full(n, "class", dtype=object),
                 long_run=_long_run_mean(y, start, classes.history_mean) if freq == "D" else
                 np.zeros(n))
    _simple(out, y, start, classes, horizon)
    for group in (classes.regular, classes.sporadic):
        rows = np.flatnonzero(group)
        if len(rows):
            choice = _choose_group(y[rows], start[rows], plan, horizon, season,
                                   sporadic=bool(classes.sporadic[rows[0]]), daily=freq == "D",
                                   criterion=_criterion(criterion, classes.sporadic[rows[0]]),
                                   combine=combine, keep=calibrate,
                                   moment=classes.size_moment[rows],
                                   previous=None if previous is None else previous[rows])
            _store(out, rows, choice)
            if calibrate:
                history = classes.history_mean[rows], classes.history_var[rows]
                out.calibration.setdefault("parts", []).append((choice, out.counts[rows],
                                                                history))
    return out


def _no_params(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [{}] * n       # one empty dict shared: parameter dicts are never changed in place
    return out


def _criterion(criterion: str, sporadic: bool) -> str:
    # "auto": squared error alone for regular demand; for sporadic demand, absolute and squared
    # error together, which keeps a lumpy spike from steering the choice (bench: real sets).
    if criterion != "auto":
        return criterion
    return "both" if sporadic else "rmsse"


def _choose_group(y: np.ndarray, start: np.ndarray, plan: Backtest, horizon: int, season: int,
                  *, sporadic: bool, criterion: str, combine: int, keep: bool,
                  moment: np.ndarray, previous: np.ndarray | None = None,
                  daily: bool = False) -> Choice:
    nz = fast.nonzero(y, start) if sporadic else None
    plan = plan.sparse() if sporadic else plan
    pool = candidates(y, start, nz, plan, sporadic=sporadic, season=season, moment=moment,
                      horizon=horizon, daily=daily)
    return choose(y, start, plan, pool, horizon, criterion=criterion, combine=combine,
                  keep_backtest=keep, moment=moment, previous=previous)


def _simple(out: _Chunk, y: np.ndarray, start: np.ndarray, classes: Classes,
            horizon: int) -> None:
    """new and too-short series: the mean so far (spread: at least Poisson); dead ones: zero."""
    short = np.flatnonzero(np.isin(classes.label, ("new", "too_short")))
    observed = np.maximum(classes.observed[short], 1)
    real = np.arange(y.shape[1])[None, :] >= start[short, None]
    mean = np.where(real, y[short], 0.0).sum(axis=1) / observed
    var = (np.where(real, y[short] - mean[:, None], 0.0) ** 2).sum(axis=1) / observed
    out.point[short] = mean[:, None]
    out.model[short] = "Mean"
    out.sigma[short] = np.sqrt(np.maximum(var, mean))
    for row, periods in zip(short, observed, strict=True):
        out.params[row] = {"periods": int(periods)}
    out.confidence[classes.label == "dead"] = DEAD_CONFIDENCE


def _store(out: _Chunk, rows: np.ndarray, choice: Choice) -> None:
    out.point[rows] = choice.point
    out.model[rows] = choice.model
    params = np.empty(len(rows), dtype=object)
    params[:] = choice.params
    out.params[rows] = params
    out.mase[rows], out.rmsse[rows] = choice.mase, choice.rmsse
    out.sigma[rows] = np.sqrt(np.nan_to_num(choice.mse, nan=0.0))
    out.spread[rows] = choice.spread
    out.chosen_by[rows] = choice.chosen_by
    share = np.minimum(choice.origins / ORIGINS, 1.0)
    with np.errstate(all="ignore"):
        out.confidence[rows] = np.nan_to_num(share / (1.0 + choice.rmsse), nan=0.0)


def _whole_units(y: np.ndarray) -> np.ndarray:
    recent = y[:, -366:]        # whole units lately is what the quantiles are for
    return (np.floor(recent) == recent).all(axis=1)


def _assemble(panel: Panel, horizon: int, parts: list[_Chunk]) -> PanelForecast:
    def cat(name: str, empty: np.ndarray) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts]) if parts else empty

    dates = pd.date_range(panel.dates[-1], periods=horizon + 1,
                          freq=_FREQ_OFFSETS[panel.freq])[1:] if len(panel.dates) else \
        pd.DatetimeIndex([])
    return PanelForecast(
        ids=panel.ids, dates=dates, point=np.maximum(cat("point", np.zeros((0, horizon))), 0.0),
        model=cat("model", np.array([], dtype=object)).astype(str),
        sigma=cat("sigma", np.zeros(0)),
        demand_class=np.concatenate([p.classes.label for p in parts]) if parts else
        np.array([], dtype=str),
        params=[params for p in parts for params in p.params], mase=cat("mase", np.zeros(0)),
        rmsse=cat("rmsse", np.zeros(0)), confidence=cat("confidence", np.zeros(0)),
        counts=cat("counts", np.zeros(0, dtype=bool)), spread=cat("spread", np.zeros(0)),
        chosen_by=cat("chosen_by", np.zeros(0, dtype=object)),
        history_mean=np.concatenate([p.classes.history_mean for p in parts]) if parts else
        np.zeros(0),
        history_var=np.concatenate([p.classes.history_var for p in parts]) if parts else
        np.zeros(0))


def _info(panel: Panel, plan: Backtest, criterion: str, season: int, result: PanelForecast,
          parts: list[_Chunk]) -> dict:
    from restock import __version__

    window = {"start": str(panel.dates[0].date()), "end": str(panel.dates[-1].date())} \
        if len(panel.dates) else {}
    return {
        "code_version": __version__, "freq": panel.freq, "season_length": season,
        "criterion": criterion, "backtest": {"origins": plan.ends, "horizon": plan.horizon},
        "window": window, "input": dict(panel.notes),
        "classes": pd.Series(result.demand_class).value_counts().to_dict(),
        "models": pd.Series(result.model).value_counts().to_dict(),
        "mean_mase": _nanmean(result.mase), "mean_rmsse": _nanmean(result.rmsse),
        "calibration": _calibration(parts[0]) if parts else {},
        # after the statsmodels pass, which may have replaced some
        "kept_steady_level": int((result.chosen_by == "steady").sum()),
        "long_run_share": DAILY_LONG_RUN_SHARE if panel.freq == "D" else 0.0,
    }


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


def _calibration(chunk: _Chunk, qs: Sequence[float] = DEFAULT_QUANTILES) -> dict:
    """Share of backtest actuals at or below each quantile, per period and over the window.

    Measured on the first chunk's backtest (up to CALIBRATION_SAMPLE series); the error
    variance comes from the same backtest, and the history mixed in is the whole series', so
    this checks the distribution's shape, and the accuracy benchmark measures it on held-out
    data.
    """
    per_period, total, weights = [], [], []
    for choice, counts, history in chunk.calibration.get("parts", []):
        take = slice(0, CALIBRATION_SAMPLE)
        paths, actual, valid = choice.backtest[take], choice.actual[take], choice.valid[take]
        if not valid.any():
            continue
        var = np.nan_to_num(choice.mse[take], nan=0.0)
        whole = counts[take]
        past_mean, past_var = history[0][take], history[1][take]
        mean, step_var = with_history(paths, var[:, None, None], 1.0,
                                      past_mean[:, None, None], past_var[:, None, None])
        step_q = demand_quantiles(mean, np.broadcast_to(step_var, paths.shape), qs,
                                  np.broadcast_to(whole[:, None, None], paths.shape))
        per_period.append(coverage(actual, step_q, np.broadcast_to(valid[:, :, None],
                                                                    actual.shape)))
        h = paths.shape[2]
        mean, total_var = with_history(paths.sum(axis=2),
                                       var[:, None] * h * choice.spread[take][:, None], h,
                                       past_mean[:, None], past_var[:, None])
        sum_q = demand_quantiles(mean, np.broadcast_to(total_var, valid.shape), qs,
                                 np.broadcast_to(whole[:, None], valid.shape))
        total.append(coverage(actual.sum(axis=2), sum_q, valid))
        weights.append(valid.sum())
    if not weights:
        return {}
    w = np.asarray(weights, dtype=float)
    return {"quantiles": list(qs),
            "per_period": [round(float(v), 4) for v in np.average(per_period, axis=0, weights=w)],
            "over_backtest_horizon": [round(float(v), 4) for v in
                                      np.average(total, axis=0, weights=w)],
            "note": "in-sample: the spread is estimated from the same backtest"
                    " and the history mixed in includes it"}


# ---------------------------------------------------------------- library face

def forecast(history: pd.DataFrame, horizon: int, *, freq: str = "D",
             season_length: int | None = None, quantiles: Sequence[float] = (),
             id_col: str = "item_id", date_col: str = "date", value_col: str = "quantity",
             time_budget_seconds: float = 0.0, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Forecast every series of a tidy frame; returns item_id, step, date, forecast, model, q*.

    The frame's ``attrs["forecast_info"]`` holds the run's summary (classes, models, backtest
    error, calibration and what the input rules touched).
    """
    panel = to_panel(history, freq=freq, id_col=id_col, date_col=date_col, value_col=value_col,
                     end=end)
    result = forecast_panel(panel, horizon, season_length=season_length,
                            time_budget_seconds=time_budget_seconds)
    frame = forecast_frame(result, quantiles)
    frame.attrs["forecast_info"] = result.info
    return frame


def forecast_frame(result: PanelForecast, quantiles: Sequence[float] = ()) -> pd.DataFrame:
    """The tidy output of a PanelForecast: one row per series and step."""
    return pd.DataFrame(forecast_columns(result, quantiles))


def forecast_columns(result: PanelForecast, quantiles: Sequence[float] = (),
                     dates: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`forecast_frame`'s columns as arrays: item_id, step, date, forecast, model, q*.

    ``dates``: how to show the h forecast dates (default: the dates themselves)."""
    n, h = result.point.shape
    columns = {
        "item_id": np.repeat(result.ids, h),
        "step": np.tile(np.arange(1, h + 1), n),
        "date": np.tile(result.dates.to_numpy() if dates is None else dates, n),
        "forecast": result.point.ravel(),
        "model": np.repeat(result.model, h),
    }
    if len(quantiles) and n:
        values = result.step_quantiles(quantiles).reshape(n * h, len(quantiles))
        for k, q in enumerate(quantiles):
            columns[f"q{q:g}"] = values[:, k]
    return columns
