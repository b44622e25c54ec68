"""Quantiles of demand from a forecast mean and an error variance, and their calibration.

Demand is never negative and, over short windows of sporadic series, very skewed, so a normal
distribution is the wrong shape. Count series (every observed quantity a whole number) get a
negative binomial with the forecast mean and variance (a Poisson when the variance is not above
the mean); other series get a gamma distribution with that mean and variance (the variance of a
total comes from PanelForecast.demand_over). An upper quantile is never lowered by a larger
variance: beyond the shape where it peaks, the shape is held there (``_widest_shape``).

The mean and variance handed in are those of a mixture (``with_history``): with weight
HISTORY_WEIGHT, demand over the coming periods is drawn as the series' whole history ran, its
mean and variance per period over that many independent periods; otherwise as the chosen model
forecasts. A model follows the recent level, and a series that went quiet and comes back, or a
level that moves again, is what its quantiles missed on held-out data (docs/forecasting.md §4).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import special

EXACT_COUNT_MEAN = 50.0     # count quantiles up to this mean by summing the pmf; above, gamma
EXACT_GAMMA_SHAPE = 0.5     # gamma quantiles below this shape exactly; above, Wilson-Hilferty
MAX_COUNT_STEPS = 2000
HISTORY_WEIGHT = 0.25       # the whole history's share of the quantiles' mixture


def with_history(mean: np.ndarray, var: np.ndarray, periods: np.ndarray | float,
                 history_mean: np.ndarray, history_var: np.ndarray,
                 weight: float = HISTORY_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the mixture: (1 - weight) the model's demand (``mean``, ``var``
    over ``periods``), ``weight`` the history's (per-period ``history_mean``, ``history_var``,
    times ``periods``). All arguments broadcast together."""
    past_mean, past_var = history_mean * periods, history_var * periods
    mixed = (1.0 - weight) * mean + weight * past_mean
    spread = (1.0 - weight) * var + weight * past_var
    return mixed, spread + weight * (1.0 - weight) * (mean - past_mean) ** 2


def demand_quantiles(mean: np.ndarray, var: np.ndarray, qs: Sequence[float],
                     counts: np.ndarray | bool = False) -> np.ndarray:
    """(..., len(qs)) quantiles of demand with these means and variances, never negative."""
    for q in qs:
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile {q} is not strictly between 0 and 1")
    mean = np.maximum(np.nan_to_num(np.asarray(mean, dtype=float)), 0.0)
    var = np.maximum(np.nan_to_num(np.asarray(var, dtype=float)), 0.0)
    counts = np.broadcast_to(np.asarray(counts, dtype=bool), mean.shape).ravel()
    shape = mean.shape
    mean, var = mean.ravel(), np.broadcast_to(var, shape).ravel()
    out = _quantiles(mean, var, qs, counts)
    for i, q in enumerate(qs):
        shape_floor = _widest_shape(q)
        if shape_floor is None:
            continue
        noise = np.where(counts, mean, 0.0)       # a count's own Poisson part
        most = noise + mean ** 2 / shape_floor
        over = (mean > 0) & (var > most)
        if over.any():
            out[over, i] = _quantiles(mean[over], most[over], [q], counts[over])[:, 0]
    return np.maximum(np.nan_to_num(out), 0.0).reshape(*shape, len(qs))


def _quantiles(mean: np.ndarray, var: np.ndarray, qs: Sequence[float],
               counts: np.ndarray) -> np.ndarray:
    out = np.empty((len(mean), len(qs)))
    out[~counts] = _gamma_quantiles(mean[~counts], var[~counts], qs)
    out[counts] = _count_quantiles(mean[counts], var[counts], qs)
    return out


@functools.lru_cache(maxsize=64)
def _widest_shape(q: float) -> float | None:
    """The gamma shape at which the ``q`` quantile, for a given mean, is highest (None: none).

    Below it a larger variance *lowers* an upper quantile: the mass piles up at zero and the
    rest moves to an ever rarer far tail. A backtest whose errors are large next to a small
    forecast (demand the forecast rate no longer carries) would then get a safety stock of
    zero, so a variance beyond that shape is taken at that shape.
    """
    shapes = np.logspace(-4, 3, 1401)
    ratio = special.gammaincinv(shapes, q) / shapes      # the quantile over the mean
    best = int(np.argmax(ratio))
    return None if best == len(shapes) - 1 else float(shapes[best])


def _gamma_quantiles(mean: np.ndarray, var: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Gamma with this mean and variance (a point mass at the mean when either is 0)."""
    out = np.repeat(mean[:, None], len(qs), axis=1)
    spread = (mean > 0) & (var > 0)
    k = mean[spread] ** 2 / var[spread]
    theta = var[spread] / mean[spread]
    exact = k < EXACT_GAMMA_SHAPE
    values = np.empty((len(k), len(qs)))
    for i, q in enumerate(qs):
        values[:, i] = _wilson_hilferty(k, q) * theta
        values[exact, i] = special.gammaincinv(k[exact], q) * theta[exact]
    out[spread] = values
    return out


def _wilson_hilferty(k: np.ndarray, q: float) -> np.ndarray:
    # The cube root of a gamma variable is close to normal (Wilson & Hilferty 1931).
    z = special.ndtri(q)
    base = 1.0 - 1.0 / (9.0 * k) + z / (3.0 * np.sqrt(k))
    return k * np.maximum(base, 0.0) ** 3


def _count_quantiles(mean: np.ndarray, var: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Negative binomial (Poisson when var <= mean): exact up to EXACT_COUNT_MEAN."""
    out = np.zeros((len(mean), len(qs)))
    big = mean > EXACT_COUNT_MEAN
    if big.any():   # large counts: gamma, then the nearest whole unit
        out[big] = np.floor(_gamma_quantiles(mean[big], np.maximum(var[big], mean[big]), qs)
                            + 0.5)
    small = np.flatnonzero(~big & (mean > 0))
    if len(small):
        out[small] = _count_exact(mean[small], var[small], qs)
    return out


def _count_exact(mean: np.ndarray, var: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Smallest k with P(X <= k) >= q, summing the pmf up by its recursion."""
    over = var > mean * (1.0 + 1e-9)
    p = np.where(over, mean / np.where(over, var, 1.0), 1.0)
    r = np.where(over, mean * p / np.where(over, 1.0 - p, 1.0), 0.0)
    with np.errstate(all="ignore"):
        pmf = np.where(over, np.exp(r * np.log(p)), np.exp(-mean))
    cdf = pmf.copy()
    out = np.full((len(mean), len(qs)), -1.0)
    active = np.arange(len(mean))
    for k in range(MAX_COUNT_STEPS):
        for i, q in enumerate(qs):
            hit = (out[active, i] < 0) & (cdf[active] >= q - 1e-12)
            out[active[hit], i] = k
        active = active[(out[active] < 0).any(axis=1)]
        if not len(active):
            break
        a = active
        pmf[a] = np.where(over[a], pmf[a] * (k + r[a]) / (k + 1) * (1.0 - p[a]),
                          pmf[a] * mean[a] / (k + 1))
        cdf[a] += pmf[a]
    left = out < 0      # a tail too long to sum: the gamma approximation
    if left.any():
        rows = np.flatnonzero(left.any(axis=1))
        approx = np.floor(_gamma_quantiles(mean[rows], np.maximum(var[rows], mean[rows]), qs)
                          + 0.5)
        out[rows] = np.where(left[rows], approx, out[rows])
    return out


def coverage(actual: np.ndarray, quantiles: np.ndarray, valid: np.ndarray | None = None
             ) -> np.ndarray:
    """Share of actuals at or below each quantile: ``actual`` (...), ``quantiles`` (..., k).

    A calibrated q-quantile covers a share q; ``valid`` (...) masks what to count.
    """
    hit = actual[..., None] <= quantiles + 1e-9
    if valid is None:
        return hit.reshape(-1, hit.shape[-1]).mean(axis=0)
    return hit[valid].mean(axis=0) if valid.any() else np.full(hit.shape[-1], np.nan)
