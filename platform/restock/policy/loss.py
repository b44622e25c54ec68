"""Loss functions of demand distributions: expected units short above a stock level.

``n(x) = E[(D - x)+]`` is what a stock level ``x`` fails to cover on average; safety stock for a
fill rate, (r, Q) costs and the budget's "expected shortage" all rest on it. Every function takes
numpy arrays (or scalars) and broadcasts, so a whole catalogue is one call.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

_Z_LOW, _Z_HIGH = -8.0, 40.0
_SQRT_2PI = np.sqrt(2 * np.pi)


def standard_normal_loss(z):
    """``L(z) = phi(z) - z (1 - Phi(z))``: the loss of a standard normal demand at ``z``."""
    z = np.asarray(z, dtype=float)
    # What scipy.stats.norm.pdf and .sf evaluate, without their per-call argument handling: the
    # exposure and pooled solvers call this in every Newton step over whole catalogues.
    return np.exp(-z**2 / 2.0) / _SQRT_2PI - z * special.ndtr(-z)


def normal_loss(x, mean=0.0, sd=1.0):
    """``E[(D - x)+]`` for ``D ~ N(mean, sd²)``; with ``sd == 0`` demand is exactly ``mean``."""
    x, mean, sd = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, mean, sd)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mean) / sd
        result = sd * standard_normal_loss(z)
    return np.where(sd > 0, result, np.maximum(mean - x, 0.0))


def normal_second_loss(x, mean=0.0, sd=1.0):
    """``E[(D - x)+²] / 2`` for a normal demand (the integral of the loss from ``x`` upward)."""
    x, mean, sd = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, mean, sd)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mean) / sd
        result = 0.5 * sd**2 * ((z**2 + 1) * stats.norm.sf(z) - z * stats.norm.pdf(z))
    return np.where(sd > 0, result, 0.5 * np.maximum(mean - x, 0.0) ** 2)


def inverse_standard_normal_loss(target):
    """The ``z`` with ``L(z) = target`` (vectorised bisection; ``L`` falls strictly in ``z``)."""
    target = np.asarray(target, dtype=float)
    low = np.full(target.shape, _Z_LOW)
    high = np.full(target.shape, _Z_HIGH)
    for _ in range(64):   # 48 / 2**64: far below float resolution
        mid = 0.5 * (low + high)
        above = standard_normal_loss(mid) > target
        low = np.where(above, mid, low)
        high = np.where(above, high, mid)
    return 0.5 * (low + high)


def poisson_loss(x, mean):
    """``E[(D - x)+]`` for Poisson demand at integer levels ``x``."""
    x, mean = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(mean, dtype=float))
    return (mean - x) * stats.poisson.sf(x, mean) + mean * stats.poisson.pmf(x, mean)


def negative_binomial_params(mean, variance):
    """scipy's ``(n, p)`` for a negative binomial with this mean and variance (> mean)."""
    mean = np.asarray(mean, dtype=float)
    variance = np.asarray(variance, dtype=float)
    return mean**2 / (variance - mean), mean / variance


def discrete_loss(x, mean, variance):
    """``E[(D - x)+]`` at integer ``x`` for a slow mover: Poisson when ``variance <= mean``,
    otherwise negative binomial with that mean and variance."""
    x, mean, variance = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                              for v in (x, mean, variance)))
    top = int(np.max(np.maximum(x, 0), initial=0)) + 1
    k = np.arange(top)
    cdf = discrete_cdf(k[None, :], mean.reshape(-1, 1), variance.reshape(-1, 1))
    # E[min(D, x)] = sum_{k < x} P(D > k)
    covered = np.where(k[None, :] < x.reshape(-1, 1), 1.0 - cdf, 0.0).sum(axis=1)
    return (mean.reshape(-1) - covered - np.minimum(x.reshape(-1), 0)).reshape(x.shape)


def discrete_cdf(k, mean, variance):
    """``P(D <= k)`` for the slow-mover distribution (Poisson or negative binomial)."""
    mean, variance = np.broadcast_arrays(np.asarray(mean, dtype=float),
                                         np.asarray(variance, dtype=float))
    overdispersed = variance > mean * (1 + 1e-9)
    safe_var = np.where(overdispersed, variance, mean * 2 + 1e-12)
    n, p = negative_binomial_params(np.maximum(mean, 1e-12), safe_var)
    return np.where(overdispersed, stats.nbinom.cdf(k, n, p), stats.poisson.cdf(k, mean))
