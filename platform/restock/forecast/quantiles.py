"""Quantiles of demand from a forecast mean and an error variance, and their calibration.

Demand is never negative and, over short windows of sporadic series, very skewed, so a normal
distribution is the wrong shape. Count series (every observed quantity a whole number) get a
negative binomial with the forecast mean and variance (a Poisson when the variance is not above
the mean); other series get a gamma distribution with that mean and variance. The variance comes
from the chosen model's squared error in the rolling-origin backtest, scaled by the number of
periods (errors of successive periods taken as independent).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special, stats


def demand_quantiles(mean: np.ndarray, var: np.ndarray, qs: Sequence[float],
                     counts: np.ndarray | bool = False) -> np.ndarray:
    """(n, len(qs)) quantiles of demand with these means and variances, never negative."""
    mean = np.maximum(np.nan_to_num(np.asarray(mean, dtype=float)), 0.0)
    var = np.maximum(np.nan_to_num(np.asarray(var, dtype=float)), 0.0)
    counts = np.broadcast_to(np.asarray(counts, dtype=bool), mean.shape)
    out = np.repeat(mean[..., None], len(qs), axis=-1)
    for k, q in enumerate(qs):
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile {q} is not strictly between 0 and 1")
        out[..., k] = np.where(counts, _count_quantile(mean, var, q), _gamma_quantile(mean, var, q))
    return np.maximum(np.nan_to_num(out), 0.0)


def _gamma_quantile(mean: np.ndarray, var: np.ndarray, q: float) -> np.ndarray:
    spread = (mean > 0) & (var > 0)
    with np.errstate(all="ignore"):
        shape = np.where(spread, mean ** 2 / np.where(var > 0, var, 1.0), 1.0)
        scale = np.where(spread, var / np.where(mean > 0, mean, 1.0), 0.0)
        return np.where(spread, special.gammaincinv(shape, q) * scale, mean)


def _count_quantile(mean: np.ndarray, var: np.ndarray, q: float) -> np.ndarray:
    over = var > mean * (1.0 + 1e-9)
    with np.errstate(all="ignore"):
        r = np.where(over, mean ** 2 / np.where(over, var - mean, 1.0), 1.0)
        p = np.where(over, mean / np.where(var > 0, var, 1.0), 0.5)
        negbin = stats.nbinom.ppf(q, r, p)
        poisson = stats.poisson.ppf(q, np.where(mean > 0, mean, 1.0))
    return np.where(mean > 0, np.where(over, negbin, poisson), 0.0)


def coverage(actual: np.ndarray, quantiles: np.ndarray, valid: np.ndarray | None = None
             ) -> np.ndarray:
    """Share of actuals at or below each quantile: ``actual`` (...), ``quantiles`` (..., k).

    A calibrated q-quantile covers a share q; ``valid`` (...) masks what to count.
    """
    hit = actual[..., None] <= quantiles + 1e-9
    if valid is None:
        return hit.reshape(-1, hit.shape[-1]).mean(axis=0)
    return hit[valid].mean(axis=0) if valid.any() else np.full(hit.shape[-1], np.nan)
