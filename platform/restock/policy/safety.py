"""Safety stock, reorder points and order-up-to levels for a cycle service level or a fill rate.

Vocabulary (Snyder & Shen, *Fundamentals of Supply Chain Theory*):

- **cycle service level** (type 1, alpha): the probability of no stockout in a replenishment cycle;
  the stock level is the alpha-quantile of demand over the protection interval.
- **fill rate** (type 2, beta): the share of demand met from stock; the expected units short per
  cycle, ``n(S)``, may be ``(1 - beta)`` times the demand of one cycle.
- **protection interval**: what one order must cover — lead time ``L`` for continuous review
  (``(r, Q)``), lead time + review period ``L + R`` for periodic review (``(R, S)``).

Demand over a protection interval of ``T`` periods with per-period mean ``mu`` and sd ``sigma`` is
``N(mu T, sigma² T)``; when the lead time itself varies with sd ``sigma_L`` the variance gains
``mu² sigma_L²``. Slow movers (few units per protection interval) use Poisson or, when the
forecast error says demand is more variable than Poisson, a negative binomial with that variance.
All functions broadcast over numpy arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from restock.policy.loss import (
    discrete_cdf,
    discrete_loss,
    inverse_standard_normal_loss,
    normal_loss,
)


def _check_level(level, name: str):
    level = np.asarray(level, dtype=float)
    if np.any(~((level > 0) & (level < 1))):
        raise ValueError(f"{name} must be strictly between 0 and 1 (got {level})")
    return level


def protection_demand(rate, sd, lead_time, review_period=0.0, lead_time_sd=0.0):
    """Mean and sd of demand over lead time + review period, with lead-time variability.

    ``rate``/``sd`` are per period (sd of one period's demand or forecast error, independent
    periods); ``lead_time``, ``review_period`` and ``lead_time_sd`` are in the same periods.
    """
    rate, sd, lead_time, review_period, lead_time_sd = (
        np.asarray(v, dtype=float) for v in (rate, sd, lead_time, review_period, lead_time_sd))
    if np.any(lead_time < 0) or np.any(review_period < 0) or np.any(lead_time_sd < 0):
        raise ValueError("lead_time, review_period and lead_time_sd must not be negative")
    horizon = lead_time + review_period
    variance = sd**2 * horizon + rate**2 * lead_time_sd**2
    return rate * horizon, np.sqrt(variance)


def safety_stock_cycle(sd, level):
    """Safety stock ``z_alpha * sd`` for a cycle service level ``level`` (``sd`` of protection
    demand)."""
    level = _check_level(level, "cycle service level")
    return stats.norm.ppf(level) * np.asarray(sd, dtype=float)


def safety_stock_fill_rate(sd, level, cycle_demand):
    """Safety stock for a fill rate: the ``z sd`` with ``sd L(z) = (1 - level) cycle_demand``.

    ``cycle_demand`` is the mean demand of one replenishment cycle (``Q`` for (r, Q), the
    review period's demand for (R, S)). It may be negative when the cycle alone already meets the
    target — that is the textbook answer, and callers decide whether to floor it.
    """
    level = _check_level(level, "fill rate")
    sd = np.asarray(sd, dtype=float)
    cycle_demand = np.asarray(cycle_demand, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = (1.0 - level) * cycle_demand / sd
    z = inverse_standard_normal_loss(np.where(sd > 0, target, 1.0))
    return np.where(sd > 0, z * sd, 0.0)


def reorder_point(rate, sd, lead_time, *, cycle_service=None, fill_rate=None,
                  order_quantity=None, lead_time_sd=0.0):
    """Continuous review: ``r = mu L + safety stock`` over lead-time demand ``N(mu L, sd² L)``.

    Give ``cycle_service``, or ``fill_rate`` with the ``order_quantity`` (the cycle's demand).
    """
    mean, sigma = protection_demand(rate, sd, lead_time, 0.0, lead_time_sd)
    if (cycle_service is None) == (fill_rate is None):
        raise ValueError("give exactly one of cycle_service and fill_rate")
    if cycle_service is not None:
        return mean + safety_stock_cycle(sigma, cycle_service)
    if order_quantity is None:
        raise ValueError("a fill-rate reorder point needs the order_quantity")
    return mean + safety_stock_fill_rate(sigma, fill_rate, order_quantity)


def order_up_to_level(rate, sd, lead_time, review_period=1.0, *, cycle_service=None,
                      fill_rate=None, lead_time_sd=0.0):
    """Periodic review (R, S): ``S`` covers lead time + review period.

    With ``review_period = 1`` this is the base-stock level of Snyder & Shen (protection over
    ``L + 1`` periods; fill rate ``1 - n(S) / mu``).
    """
    mean, sigma = protection_demand(rate, sd, lead_time, review_period, lead_time_sd)
    if (cycle_service is None) == (fill_rate is None):
        raise ValueError("give exactly one of cycle_service and fill_rate")
    if cycle_service is not None:
        return mean + safety_stock_cycle(sigma, cycle_service)
    cycle = np.asarray(rate, dtype=float) * np.asarray(review_period, dtype=float)
    return mean + safety_stock_fill_rate(sigma, fill_rate, cycle)


def fill_rate_of(level, mean, sd, cycle_demand):
    """The fill rate a stock ``level`` gives: ``1 - n(level) / cycle_demand`` (normal demand)."""
    return 1.0 - normal_loss(level, mean, sd) / np.asarray(cycle_demand, dtype=float)


def cycle_service_of(level, mean, sd):
    """The cycle service level a stock ``level`` gives: ``P(D <= level)`` (normal demand)."""
    return stats.norm.cdf(level, mean, sd)


def discrete_level(mean, variance, *, cycle_service=None, fill_rate=None, cycle_demand=None):
    """Smallest integer stock level meeting the target for a slow mover.

    Demand over the protection interval is Poisson(mean) when ``variance <= mean``, otherwise a
    negative binomial with that mean and variance. For a fill rate, ``cycle_demand`` is the mean
    demand of one cycle; the level is the least ``S`` with ``1 - E[(D-S)+]/cycle_demand >= beta``.
    """
    mean = np.atleast_1d(np.asarray(mean, dtype=float))
    variance = np.broadcast_to(np.asarray(variance, dtype=float), mean.shape)
    if (cycle_service is None) == (fill_rate is None):
        raise ValueError("give exactly one of cycle_service and fill_rate")
    if cycle_service is not None:
        level = _check_level(cycle_service, "cycle service level")
        return _least_level(mean, variance, lambda k: discrete_cdf(k, mean[:, None],
                                                                   variance[:, None])
                            >= np.broadcast_to(level, mean.shape)[:, None])
    beta = np.broadcast_to(_check_level(fill_rate, "fill rate"), mean.shape)
    allowed = (1 - beta) * np.broadcast_to(np.asarray(cycle_demand, dtype=float), mean.shape)
    return _least_level(mean, variance, lambda k: discrete_loss(
        np.broadcast_to(k, (len(mean), k.shape[1])), mean[:, None], variance[:, None])
        <= allowed[:, None] + 1e-12)


def _least_level(mean, variance, meets) -> np.ndarray:
    top = int(np.ceil(np.max(mean + 12 * np.sqrt(np.maximum(variance, mean)) + 10,
                             initial=10)))
    k = np.arange(top + 1, dtype=float)[None, :]
    ok = meets(k)
    return np.where(ok.any(axis=1), ok.argmax(axis=1), top).astype(float)


def solve_increasing(func, target, low, high):
    """Scalar root of an increasing ``func(x) = target`` on ``[low, high]`` (to float precision)."""
    return optimize.brentq(lambda x: func(x) - target, low, high, xtol=1e-12, rtol=1e-15)
