"""The live planner's spread over lead time + review, learnt from its own closed windows.

Each run records what its forecast said over each SKU's lead time + review from the planning date
(``horizon_days``, ``horizon_mean``, ``horizon_sd``; one packed row per run,
:class:`restock.store.ForecastWindows`). Once such a window has closed, the history says what was consumed in it, and its error joins the SKU's record:
:func:`learn_spread` turns the windows of the last year into the SKU's sd over lead time + review
with :func:`restock.policy.spread.learnt_sd`, the rule the replay applies
(:func:`restock.simulate.horizon_spread`), so the backtested rule is the one that orders.

As in the replay, a SKU's windows start its own review period apart (the latest run of a
planning date counts; runs closer together than the SKU's review are skipped, so daily runs of a
weekly review do not count one week's error seven times, and a SKU reviewed monthly in an org
reviewed weekly counts a window a month), from the runs of the last :data:`LEARN_DAYS` days
(about the replay's 52 closed windows with a weekly review), and only windows whose whole span
lies inside the history the run reads.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd

from restock.policy.empirical import SETTLED_SALES
from restock.policy.spread import MIN_ITEMS_FOR_RATIO, learnt_sd
from restock.store.windows import ForecastWindows

LEARN_DAYS = 400     # runs this far back: a year of closed windows and the horizon before them


def horizon_windows(items: pd.DataFrame) -> pd.DataFrame:
    """Per SKU, what this run's forecast says over its lead time + review (to be recorded)."""
    days = (items["lead_time_days"] + items["review_period_days"]).to_numpy(float)
    frame = pd.DataFrame({"sku": items["sku"].astype(str).to_numpy(), "horizon_days": days,
                          "horizon_mean": items["demand_rate"].to_numpy(float) * days,
                          "horizon_sd": items["demand_sd"].to_numpy(float) * np.sqrt(days)})
    return frame[np.isfinite(days) & (days > 0)]


class Learnt(NamedTuple):
    """What the closed windows teach: ``items`` with their learnt spread, and ``errors``, the
    org's pooled standardised errors (empty while too few SKUs have any)."""

    items: pd.DataFrame
    errors: np.ndarray


def learn_from_windows(items: pd.DataFrame, history: pd.DataFrame,
                       windows: pd.DataFrame) -> Learnt:
    """``items`` with ``demand_sd`` learnt from the closed ``windows`` (:func:`closed_windows`)
    and ``spread_windows``, how many each SKU's rests on; and the windows' errors standardised
    by the square root of what was forecast, ``(actual - forecast) / sqrt(forecast)``, pooled
    over the SKUs, that a per-item cycle target reads its level from
    (:func:`restock.policy.empirical.pooled_error_levels`), as the replay's
    :func:`restock.simulate.horizon_errors`. A window counts there only when its SKU had sold on
    :data:`~restock.policy.empirical.SETTLED_SALES` days before it opened (a forecast from a few
    sales says nothing about later ones), and the pool only once
    :data:`~restock.policy.spread.MIN_ITEMS_FOR_RATIO` SKUs have such windows."""
    items = items.copy()
    days = (items["lead_time_days"] + items["review_period_days"]).to_numpy(float)
    found = _window_errors(windows, history, items["sku"].astype(str),
                           items["review_period_days"].to_numpy(float))
    squared, predicted, count = found.per_sku(len(items))
    model_sd = items["demand_sd"].to_numpy(float) * np.sqrt(days)
    learnt = learnt_sd(squared, predicted, count, model_sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_day = np.where(days > 0, learnt / np.sqrt(days), items["demand_sd"].to_numpy(float))
    items["demand_sd"] = np.nan_to_num(per_day, nan=0.0, posinf=0.0)
    items["spread_windows"] = count.astype(int)
    return Learnt(items, found.standardised())


def learn_spread(items: pd.DataFrame, history: pd.DataFrame,
                 windows: pd.DataFrame) -> pd.DataFrame:
    """``items`` with ``demand_sd`` learnt from the closed ``windows`` and ``spread_windows``
    (:func:`learn_from_windows` without the pooled errors)."""
    return learn_from_windows(items, history, windows).items


def closed_windows(recorded: ForecastWindows, org: str, as_of: date, review_days: float,
                   history_start: date) -> pd.DataFrame:
    """The recorded windows to learn from: one run per planning date (the latest), dates
    ``review_days`` apart back from ``as_of`` (the shortest review of the SKUs: each SKU's own
    spacing is kept by :func:`learn_spread`), each window closed by ``as_of`` and inside the
    history."""
    runs = recorded.runs(org, max(history_start, as_of - timedelta(days=LEARN_DAYS)), as_of)
    picked = _review_apart(runs, review_days)
    frame = recorded.read([row for _, row in picked])
    if frame.empty:
        return frame
    start = _days(frame["as_of"])
    end = start + np.ceil(frame["horizon_days"].to_numpy(float) - 1e-9).astype(np.int64)
    frame = frame.assign(start=start, end=end)
    return frame[frame["end"] <= np.datetime64(as_of, "D").astype(np.int64)]


def _review_apart(runs: list[tuple[date, int]], review_days: float) -> list[tuple[date, int]]:
    picked: list[tuple[date, int]] = []
    for day, row in runs:   # newest first
        if not picked or (picked[-1][0] - day).days >= review_days - 1e-9:
            picked.append((day, row))
    return picked


class _Errors(NamedTuple):
    """Each kept window's SKU (position), error, claimed variance and forecast, and whether its
    SKU had settled (sold on enough days before the window opened)."""

    where: np.ndarray
    error: np.ndarray
    claimed: np.ndarray
    forecast: np.ndarray
    settled: np.ndarray

    def per_sku(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per SKU: summed squared errors, summed claimed variances, window count."""
        known = np.isfinite(self.error) & np.isfinite(self.claimed)
        return tuple(np.bincount(self.where[known], weights=w[known], minlength=n)
                     for w in (self.error ** 2, self.claimed, np.ones(len(self.error))))

    def standardised(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            errors = self.error / np.sqrt(self.forecast)
        usable = self.settled & (self.forecast > 0) & np.isfinite(errors)
        if np.unique(self.where[usable]).size < MIN_ITEMS_FOR_RATIO:
            return np.empty(0)
        return errors[usable]


def _window_errors(windows: pd.DataFrame, history: pd.DataFrame, skus: pd.Series,
                   review: np.ndarray) -> _Errors:
    """The windows to learn from, of SKUs of ``skus`` (reviewed every ``review`` days), with
    their errors."""
    if windows.empty:
        empty = np.empty(0)
        return _Errors(np.empty(0, dtype=np.int64), empty, empty, empty, np.empty(0, dtype=bool))
    index = pd.Index(skus)
    where = _positions(windows["sku"], index)
    start = windows["start"].to_numpy(np.int64)
    keep = _own_review_apart(where, start, review)
    where, start = where[keep], start[keep]
    forecast = windows["horizon_mean"].to_numpy(float)[keep]
    actual, selling_days = _totals(history, index, where, start,
                                   windows["end"].to_numpy(np.int64)[keep])
    return _Errors(where, actual - forecast, windows["horizon_sd"].to_numpy(float)[keep] ** 2,
                   forecast, selling_days >= SETTLED_SALES)


def _own_review_apart(where: np.ndarray, start: np.ndarray, review: np.ndarray) -> np.ndarray:
    """Which windows (of the SKU at ``where``, from day ``start``) to learn from: each SKU's
    own review apart. The runs come the shortest review apart (:func:`closed_windows`); a SKU
    reviewed less often keeps, back from the newest run, the latest window in each stretch of
    its own review period (one per review on a steady schedule)."""
    keep = where >= 0
    own = np.where(keep, review[where], 0.0)
    sparser = keep & (own > review.min(initial=np.inf) + 1e-9)
    if not sparser.any():
        return keep
    rows = np.flatnonzero(sparser)
    stretch = np.floor((start.max() - start[rows]) / own[rows]).astype(np.int64)
    order = np.lexsort((-start[rows], stretch, where[rows]))   # per SKU and stretch, latest first
    sku, stretch = where[rows][order], stretch[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (sku[1:] != sku[:-1]) | (stretch[1:] != stretch[:-1])
    keep[rows] = False
    keep[rows[order[first]]] = True
    return keep


CELLS_PER_BLOCK = 1 << 24   # SKU-days summed at once: 128 MB of float64


def _totals(history: pd.DataFrame, index: pd.Index, where: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantity consumed per window (the SKU at ``where`` in ``index``, days [start, end)),
    from tidy history rows, and the days with a sale in the history before ``start``.

    Each block of SKUs gets a grid of running daily sums (SKU x day, at most
    :data:`CELLS_PER_BLOCK` cells), and a window's total is the difference of two of its cells.
    Sorting the rows by SKU and day and searching them per window did the same at 100,000 SKUs
    and 10M rows in about four times the time.
    """
    code = _positions(history["sku"], index)
    keep = code >= 0
    code, days = code[keep], _days(history["date"])[keep]
    quantity = np.nan_to_num(history["quantity"].to_numpy(float)[keep])  # NaN would spoil a sum
    low = int(min(days.min(initial=start.min()), start.min()))
    width = int(max(days.max(initial=end.max()), end.max())) - low + 2  # column 0: nothing yet
    cells = code * width + (days - low + 1)
    per_block = max(1, CELLS_PER_BLOCK // width)
    totals, selling = np.zeros(len(where)), np.zeros(len(where))
    for first in range(0, len(index), per_block):
        size = min(per_block, len(index) - first)
        rows = (cells >= first * width) & (cells < (first + size) * width)
        grid = np.bincount(cells[rows] - first * width, weights=quantity[rows],
                           minlength=size * width).reshape(size, width)
        # days with a sale, however many rows each has (int32: half the memory of the sums)
        sold = np.cumsum(grid > 0, axis=1, dtype=np.int32)
        np.cumsum(grid, axis=1, out=grid)
        asked = (where >= first) & (where < first + size)
        sku = where[asked] - first
        totals[asked] = grid[sku, end[asked] - low] - grid[sku, start[asked] - low]
        selling[asked] = sold[sku, start[asked] - low]
    return totals, selling


def _positions(labels: pd.Series, index: pd.Index) -> np.ndarray:
    """Where each label is in ``index`` (-1: not there), each distinct label looked up once."""
    codes, distinct = pd.factorize(labels)
    found = index.get_indexer(pd.Index(distinct).astype(str))
    return np.where(codes >= 0, found[codes], -1)


def _days(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype(np.int64)
