"""Textbook inventory models: newsvendor, EOQ, (r, Q) and (s, S).

Notation and conventions follow Snyder & Shen, *Fundamentals of Supply Chain Theory* (2nd ed.):
``h`` holding cost per unit per period, ``p`` stockout (backorder) cost per unit per period, ``K``
fixed cost per order. For (r, Q), ``demand_mean``/``demand_sd`` are per unit time and lead-time
demand is ``N(mean L, sd² L)``. The newsvendor with a lead time ``L`` is the periodic base-stock
model: it protects ``L + 1`` periods. Results agree with stockpyl 1.0.2 on its documented examples.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from restock.policy.loss import (
    inverse_standard_normal_loss,
    normal_loss,
    normal_second_loss,
    poisson_loss,
)


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be greater than 0 (got {value})")


def _non_negative(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name} must not be negative (got {value})")


# ---------------------------------------------------------------- newsvendor

def newsvendor_normal_cost(level, holding_cost, stockout_cost, mean, sd, lead_time=0):
    """Expected cost ``h E[(S-D)+] + p E[(D-S)+]`` of stock level ``S``, demand over ``L+1``."""
    mu, sigma = mean * (lead_time + 1), sd * math.sqrt(lead_time + 1)
    return float(holding_cost * (level - mu)
                 + (holding_cost + stockout_cost) * normal_loss(level, mu, sigma))


def newsvendor_normal(holding_cost, stockout_cost, mean, sd, lead_time=0, level=None):
    """Optimal level ``mu + z sigma`` at the critical ratio ``p / (p + h)`` and its cost.

    Given ``level``, evaluates that level instead. Returns ``(level, expected_cost)``.
    """
    _positive(holding_cost=holding_cost, stockout_cost=stockout_cost)
    _non_negative(demand_mean=mean, demand_sd=sd, lead_time=lead_time)
    if level is None:
        ratio = stockout_cost / (stockout_cost + holding_cost)
        level = mean * (lead_time + 1) + stats.norm.ppf(ratio) * sd * math.sqrt(lead_time + 1)
        level = float(level)
    return level, newsvendor_normal_cost(level, holding_cost, stockout_cost, mean, sd, lead_time)


def newsvendor_poisson_cost(level, holding_cost, stockout_cost, mean):
    """Expected newsvendor cost of integer level ``S`` under Poisson demand."""
    return float(holding_cost * (level - mean)
                 + (holding_cost + stockout_cost) * poisson_loss(level, mean))


def newsvendor_poisson(holding_cost, stockout_cost, mean, level=None):
    """Smallest integer ``S`` with ``P(D <= S) >= p / (p + h)`` and its cost."""
    _positive(holding_cost=holding_cost, stockout_cost=stockout_cost)
    _non_negative(demand_mean=mean)
    if level is None:
        level = float(stats.poisson.ppf(stockout_cost / (stockout_cost + holding_cost), mean))
    return level, newsvendor_poisson_cost(level, holding_cost, stockout_cost, mean)


def newsvendor_explicit(revenue, purchase_cost, salvage_value, mean, sd):
    """Profit form: underage ``r - c``, overage ``c - v``. Returns ``(level, expected_profit)``."""
    if not salvage_value < purchase_cost < revenue:
        raise ValueError("need salvage_value < purchase_cost < revenue")
    level, cost = newsvendor_normal(purchase_cost - salvage_value, revenue - purchase_cost,
                                    mean, sd)
    return level, (revenue - purchase_cost) * mean - cost


# ---------------------------------------------------------------- EOQ

def economic_order_quantity(fixed_cost, holding_cost, demand_rate):
    """``Q* = sqrt(2 K lambda / h)`` and its cost per unit time ``sqrt(2 K lambda h)``."""
    _positive(fixed_cost=fixed_cost, holding_cost=holding_cost)
    _non_negative(demand_rate=demand_rate)
    return (math.sqrt(2 * fixed_cost * demand_rate / holding_cost),
            math.sqrt(2 * fixed_cost * demand_rate * holding_cost))


def economic_order_quantity_with_backorders(fixed_cost, holding_cost, stockout_cost,
                                            demand_rate):
    """EOQ with planned backorders: ``(Q*, stockout fraction h/(h+p), cost per unit time)``."""
    _positive(fixed_cost=fixed_cost, holding_cost=holding_cost, stockout_cost=stockout_cost)
    _non_negative(demand_rate=demand_rate)
    h, p = holding_cost, stockout_cost
    quantity = math.sqrt(2 * fixed_cost * demand_rate * (h + p) / (h * p))
    return quantity, h / (h + p), math.sqrt(2 * fixed_cost * demand_rate * h * p / (h + p))


# ---------------------------------------------------------------- (r, Q), normal demand

def _lead_time_demand(demand_mean, demand_sd, lead_time):
    _non_negative(demand_mean=demand_mean, demand_sd=demand_sd, lead_time=lead_time)
    return demand_mean * lead_time, demand_sd * math.sqrt(lead_time)


def _g(level, h, p, mu, sigma):
    return h * (level - mu) + (h + p) * float(normal_loss(level, mu, sigma))


def rq_cost(reorder_point, order_quantity, holding_cost, stockout_cost, fixed_cost,
            demand_mean, demand_sd, lead_time):
    """Exact expected cost per unit time ``(K lambda + int_r^{r+Q} g(y) dy) / Q``."""
    _positive(order_quantity=order_quantity, holding_cost=holding_cost,
              stockout_cost=stockout_cost, fixed_cost=fixed_cost)
    mu, sigma = _lead_time_demand(demand_mean, demand_sd, lead_time)
    r, q, h, p = reorder_point, order_quantity, holding_cost, stockout_cost
    holding = h * ((r + q - mu) ** 2 - (r - mu) ** 2) / 2
    shortage = (h + p) * float(normal_second_loss(r, mu, sigma)
                               - normal_second_loss(r + q, mu, sigma))
    return (fixed_cost * demand_mean + holding + shortage) / q


def rq_optimal_r_for_q(order_quantity, holding_cost, stockout_cost, demand_mean, demand_sd,
                       lead_time):
    """The ``r`` minimising the (r, Q) cost for a given ``Q``: ``g(r) = g(r + Q)``."""
    _positive(order_quantity=order_quantity, holding_cost=holding_cost,
              stockout_cost=stockout_cost)
    mu, sigma = _lead_time_demand(demand_mean, demand_sd, lead_time)
    h, p, q = holding_cost, stockout_cost, order_quantity
    best, _ = newsvendor_normal(h, p, mu, sigma)
    gap = lambda r: _g(r, h, p, mu, sigma) - _g(r + q, h, p, mu, sigma)
    return optimize.brentq(gap, best - q - 10 * sigma - 1, best, xtol=1e-12, rtol=1e-15)


def _iterate(step, r, q, tol=1e-10, limit=10_000):
    for _ in range(limit):
        new_r, new_q = step(r, q)
        if abs(new_r - r) <= tol and abs(new_q - q) <= tol:
            return new_r, new_q
        r, q = new_r, new_q
    raise ArithmeticError("the (r, Q) iteration did not converge")


def rq_eil_approximation(holding_cost, stockout_cost, fixed_cost, demand_mean, demand_sd,
                         lead_time):
    """Expected-inventory-level approximation (Hadley & Whitin): ``(r, Q, approx. cost)``."""
    _positive(holding_cost=holding_cost, stockout_cost=stockout_cost, fixed_cost=fixed_cost)
    mu, sigma = _lead_time_demand(demand_mean, demand_sd, lead_time)
    h, p, k, lam = holding_cost, stockout_cost, fixed_cost, demand_mean

    def step(r, q):
        r = float(stats.norm.ppf(1 - q * h / (p * lam), mu, sigma))
        return r, math.sqrt(2 * lam * (k + p * float(normal_loss(r, mu, sigma))) / h)

    r, q = _iterate(step, 0.0, economic_order_quantity(k, h, lam)[0])
    loss = float(normal_loss(r, mu, sigma))
    return r, q, h * (r - mu + q / 2) + k * lam / q + p * lam * loss / q


def rq_eoqb_approximation(holding_cost, stockout_cost, fixed_cost, demand_mean, demand_sd,
                          lead_time):
    """``Q`` from EOQ with backorders, ``r`` optimal for that ``Q``: ``(r, Q)``."""
    q, _, _ = economic_order_quantity_with_backorders(fixed_cost, holding_cost, stockout_cost,
                                                      demand_mean)
    return rq_optimal_r_for_q(q, holding_cost, stockout_cost, demand_mean, demand_sd,
                              lead_time), q


def rq_eoqss_approximation(holding_cost, stockout_cost, fixed_cost, demand_mean, demand_sd,
                           lead_time):
    """EOQ plus safety stock: ``Q`` = EOQ, ``r`` = newsvendor quantile of lead-time demand."""
    q, _ = economic_order_quantity(fixed_cost, holding_cost, demand_mean)
    mu, sigma = _lead_time_demand(demand_mean, demand_sd, lead_time)
    r, _ = newsvendor_normal(holding_cost, stockout_cost, mu, sigma)
    return r, q


def rq_loss_function_approximation(holding_cost, stockout_cost, fixed_cost, demand_mean,
                                   demand_sd, lead_time):
    """Loss-function approximation (Hadley & Whitin): ``n(r) = hQ/(h+p)``,
    ``Q = sqrt(2 (K lambda + (h+p) n2(r)) / h)``. Returns ``(r, Q)``."""
    _positive(holding_cost=holding_cost, stockout_cost=stockout_cost, fixed_cost=fixed_cost)
    mu, sigma = _lead_time_demand(demand_mean, demand_sd, lead_time)
    h, p, k, lam = holding_cost, stockout_cost, fixed_cost, demand_mean

    def step(r, q):
        z = float(inverse_standard_normal_loss(h * q / (h + p) / sigma))
        r = mu + z * sigma
        return r, math.sqrt(2 * (k * lam + (h + p) * float(normal_second_loss(r, mu, sigma))) / h)

    return _iterate(step, 0.0, economic_order_quantity(k, h, lam)[0])


# ---------------------------------------------------------------- (r, Q), Poisson demand

def rq_cost_poisson(reorder_point, order_quantity, holding_cost, stockout_cost, fixed_cost,
                    demand_mean, lead_time):
    """Exact cost of integer ``(r, Q)`` under Poisson demand: ``(K lambda + sum g(y)) / Q``."""
    _positive(order_quantity=order_quantity, holding_cost=holding_cost,
              stockout_cost=stockout_cost, fixed_cost=fixed_cost)
    mu = demand_mean * lead_time
    levels = np.arange(int(reorder_point) + 1, int(reorder_point + order_quantity) + 1)
    g = holding_cost * (levels - mu) + (holding_cost + stockout_cost) * poisson_loss(levels, mu)
    return float((fixed_cost * demand_mean + g.sum()) / order_quantity)


def rq_poisson_exact(holding_cost, stockout_cost, fixed_cost, demand_mean, lead_time):
    """Optimal integer ``(r, Q, cost)`` under Poisson demand.

    For each ``Q`` the best ``r`` places the ``Q`` levels ``r+1..r+Q`` on the lowest stretch of
    the convex newsvendor cost ``g``; the cost in ``Q`` is unimodal (Federgruen & Zheng 1992), so
    the search stops at the first increase.
    """
    _positive(holding_cost=holding_cost, stockout_cost=stockout_cost, fixed_cost=fixed_cost)
    _non_negative(demand_mean=demand_mean, lead_time=lead_time)
    mu = demand_mean * lead_time
    best = None
    q = 1
    while True:
        r = _best_window(q, holding_cost, stockout_cost, mu)
        cost = rq_cost_poisson(r, q, holding_cost, stockout_cost, fixed_cost, demand_mean,
                               lead_time)
        if best is not None and cost > best[2]:
            return best
        best, q = (r, q, cost), q + 1


def _best_window(q, h, p, mu) -> int:
    low = -q - 1
    high = int(mu + 10 * math.sqrt(mu) + 10)
    levels = np.arange(low, high + q + 1)
    g = h * (levels - mu) + (h + p) * poisson_loss(levels, mu)
    sums = np.convolve(g, np.ones(q), mode="valid")   # sums[i] = g[i] + ... + g[i+q-1]
    return int(levels[int(np.argmin(sums))] - 1)


# ---------------------------------------------------------------- (s, S), periodic review

def ss_cost_discrete(reorder_point, order_up_to_level, holding_cost, stockout_cost, fixed_cost,
                     demand_mean):
    """Exact cost per period of ``(s, S)`` with Poisson demand and zero lead time.

    Renewal argument (Zheng & Federgruen 1991): with ``m`` the renewal mass of the demand and
    ``M(j) = m(0) + ... + m(j-1)``, ``c(s, S) = (K + sum_{d<S-s} m(d) G(S-d)) / M(S-s)``.
    """
    s, big_s = int(reorder_point), int(order_up_to_level)
    if big_s <= s:
        raise ValueError("order_up_to_level must exceed reorder_point")
    mass = _renewal_mass(big_s - s, demand_mean)
    return _ss_cost(s, big_s, mass, holding_cost, stockout_cost, fixed_cost, demand_mean)


def _ss_cost(s, big_s, mass, h, p, k, mean):
    levels = big_s - np.arange(big_s - s)
    g = h * (levels - mean) + (h + p) * poisson_loss(levels, mean)
    head = mass[:big_s - s]
    return float((k + (head * g).sum()) / head.sum())


def _renewal_mass(count: int, mean: float) -> np.ndarray:
    pmf = stats.poisson.pmf(np.arange(count), mean)
    mass = np.zeros(count)
    mass[0] = 1.0 / (1.0 - pmf[0])
    for j in range(1, count):
        mass[j] = (pmf[1:j + 1] * mass[j - 1::-1][:j]).sum() / (1.0 - pmf[0])
    return mass


def ss_optimal_discrete(holding_cost, stockout_cost, fixed_cost, demand_mean):
    """Optimal integer ``(s, S, cost)`` for Poisson demand, zero lead time.

    Exhaustive over a window around the newsvendor level wide enough to hold the optimum
    (``s`` below it, ``S`` above it, both within a few EOQs and demand spreads).
    """
    _positive(holding_cost=holding_cost, stockout_cost=stockout_cost, fixed_cost=fixed_cost,
              demand_mean=demand_mean)
    h, p, k, mean = holding_cost, stockout_cost, fixed_cost, demand_mean
    base = int(newsvendor_poisson(h, p, mean)[0])
    spread = int(6 * math.sqrt(mean) + 4 * economic_order_quantity(k, h, mean)[0] + 10)
    mass = _renewal_mass(2 * spread + 1, mean)
    best = (0.0, 0.0, math.inf)
    for s in range(base - spread, base):
        for big_s in range(base, base + spread):
            cost = _ss_cost(s, big_s, mass, h, p, k, mean)
            if cost < best[2] - 1e-12:
                best = (float(s), float(big_s), cost)
    return best


def ss_power_approximation(holding_cost, stockout_cost, fixed_cost, demand_mean, demand_sd):
    """Ehrhardt & Mosier (1984) power approximation ``(s, S)``; mean/sd are those of the
    protection-interval demand, used as given."""
    _positive(holding_cost=holding_cost, stockout_cost=stockout_cost, fixed_cost=fixed_cost,
              demand_mean=demand_mean, demand_sd=demand_sd)
    h, p, k, mu, sigma = holding_cost, stockout_cost, fixed_cost, demand_mean, demand_sd
    q = 1.30 * mu**0.494 * (k / h) ** 0.506 * (1 + (sigma / mu) ** 2) ** 0.116
    z = math.sqrt(q / sigma * h / p)
    s = 0.973 * mu + sigma * (0.183 / z + 1.063 - 2.192 * z)
    return s, s + q
