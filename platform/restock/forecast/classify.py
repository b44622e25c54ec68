"""Demand classification per series: Syntetos-Boylan classes plus new, dead and too-short.

ADI is the average demand interval (observed periods / periods with demand) and CV² the squared
coefficient of variation of the non-zero demand sizes. With the usual cut-offs (ADI 1.32,
CV² 0.49): smooth (regular, steady sizes), erratic (regular, varying sizes), intermittent
(sporadic, steady sizes), lumpy (sporadic, varying sizes).

Before that, three cases get a deliberate rule of their own (docs/forecasting.md):

- ``too_short``: fewer than ``MIN_OBSERVATIONS`` observed periods; forecast the mean so far.
- ``dead``: no demand at all, or none for ``dead_after`` periods (at least 4 × ADI and half a
  year); forecast zero.
- ``new``: fewer than ``min_history`` observed periods (too little to backtest, or to forecast
  the horizon asked: ``forecast_panel`` asks at least the horizon); forecast the
  mean so far (the simplest unbiased rate), with confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ADI_CUT, CV2_CUT = 1.32, 0.49
MIN_OBSERVATIONS = 3
HALF_YEAR = {"D": 182, "W": 26, "M": 6}
CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "new", "dead", "too_short")


@dataclass
class Classes:
    """Per series: class label and the statistics it was derived from."""

    label: np.ndarray       # (n,) one of CLASSES
    adi: np.ndarray         # (n,) inf when there was no demand
    cv2: np.ndarray         # (n,) NaN when there was no demand
    observed: np.ndarray    # (n,) observed periods
    demands: np.ndarray     # (n,) periods with demand
    idle: np.ndarray        # (n,) periods since the last demand (observed periods if none)
    size_moment: np.ndarray | None = None   # (n,) E[size²] / E[size] (0 without demand)
    history_mean: np.ndarray | None = None  # (n,) demand per observed period, whole history
    history_var: np.ndarray | None = None   # (n,) its variance per period (0 if unobserved)

    @property
    def sporadic(self) -> np.ndarray:
        """Series whose demand is intermittent or lumpy (Croston-type models fit them)."""
        return np.isin(self.label, ("intermittent", "lumpy"))

    @property
    def regular(self) -> np.ndarray:
        """Series whose demand is smooth or erratic (level/trend/season models fit them)."""
        return np.isin(self.label, ("smooth", "erratic"))


def classify(y: np.ndarray, start: np.ndarray, *, freq: str = "D", min_history: int = 8,
             dead_after: int | None = None) -> Classes:
    """Classify every row of a backfilled panel (see restock.forecast.fast.backfill)."""
    t = y.shape[1]
    observed = np.maximum(t - start, 0)
    # The backfilled prefix repeats the first value ``start`` times: take it back out of the
    # whole-row sums rather than mask every row.
    first, prefix = y[:, 0] if t else np.zeros(len(y)), np.minimum(start, t)
    positive = y > 0
    demands = np.count_nonzero(positive, axis=1) - prefix * (first > 0)
    total = y.sum(axis=1) - prefix * first
    squares = np.einsum("ij,ij->i", y, y) - prefix * first ** 2
    with np.errstate(all="ignore"):
        adi = np.where(demands > 0, observed / np.maximum(demands, 1), np.inf)
        size_mean = total / demands
        size_var = squares / demands - size_mean ** 2
        cv2 = np.where(demands > 0, np.maximum(size_var, 0.0) / size_mean ** 2, np.nan)
        moment = np.where(total > 0, squares / total, 0.0)
        history_mean = np.where(observed > 0, total / observed, 0.0)
        history_var = np.where(observed > 0, np.maximum(squares / observed - history_mean ** 2,
                                                        0.0), 0.0)
    last = t - 1 - positive[:, ::-1].argmax(axis=1)
    idle = np.where(demands > 0, t - 1 - last, observed).astype(np.int64)
    limit = np.maximum(4 * np.where(np.isfinite(adi), adi, 0), HALF_YEAR.get(freq, 182)) \
        if dead_after is None else np.full(len(y), dead_after)
    label = np.where(adi < ADI_CUT, np.where(cv2 < CV2_CUT, "smooth", "erratic"),
                     np.where(cv2 < CV2_CUT, "intermittent", "lumpy")).astype(object)
    label[observed < min_history] = "new"
    label[(demands > 0) & (idle >= limit) & (observed >= min_history)] = "dead"
    label[demands == 0] = "dead"
    label[observed < MIN_OBSERVATIONS] = "too_short"
    return Classes(label=label.astype(str), adi=adi, cv2=cv2, observed=observed,
                   demands=demands, idle=idle, size_moment=moment,
                   history_mean=history_mean, history_var=history_var)
