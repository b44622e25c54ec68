"""Order-up-to levels for a whole catalogue in one call, from each item's buffer setting.

An item's buffer is one of: a number of ``units``, ``days_of_cover`` of average demand, or a
service level — a cycle service level (chance of no stockout per review cycle) or a fill rate
(share of demand met from stock) — computed from the forecast's uncertainty over the protection
interval (lead time + review period). Slow movers (few units per protection interval) are counted
in whole units with a Poisson or negative binomial demand instead of a normal one. Both
:func:`restock.policy.plan` and :func:`restock.simulate.simulate` use :func:`stock_levels`, so a
backtest measures exactly the rule that places orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from restock.policy.loss import inverse_standard_normal_loss, standard_normal_loss

SLOW_MOVER_MEAN = 20.0   # below this mean protection demand, whole-unit distributions fit better
MAX_DISPERSION = 5.0     # variance / mean above which a negative binomial's tail is not trusted
_GRID_CELLS = 4_000_000  # cells of the (items × units) grid evaluated at once
# The service levels the org files allow, and the safety factors they span (the exposure and the
# pooled factors stay within them).
LOWEST_LEVEL, HIGHEST_LEVEL = 0.5, 0.9999
LOWEST_Z, HIGHEST_Z = special.ndtri(LOWEST_LEVEL), special.ndtri(HIGHEST_LEVEL)
NARROW_EXCESS = 1e-6   # excess (in sds) below which the difference quotient is rounding noise
NEWTON_STEPS, CONVERGED = 30, 1e-13
_SQRT_2PI = np.sqrt(2 * np.pi)
_LOG_MULTIPLIER = 50.0   # the price of service searched within exp(-50) to exp(50)


@dataclass
class Levels:
    """Per item: demand over the protection interval, safety stock and order-up-to level."""

    mean: np.ndarray          # expected demand over lead time + review period
    sd: np.ndarray            # its standard deviation
    safety_stock: np.ndarray  # order_up_to - mean (negative when a fill rate allows it)
    order_up_to: np.ndarray
    method: np.ndarray        # units / days_of_cover / normal / poisson / negative_binomial


def stock_levels(rate, sd, lead_time, review_period, *, service_level=np.nan,
                 fill_rate=False, buffer_units=np.nan, cover_periods=np.nan,
                 lead_time_sd=0.0, discrete=True, distribution="normal",
                 slow_below=SLOW_MOVER_MEAN, max_dispersion=MAX_DISPERSION,
                 safety_factor=np.nan) -> Levels:
    """Order-up-to levels ``S = mean + safety stock`` over lead time + review period.

    Arguments broadcast over items; all times are in the periods of ``rate`` (units per period)
    and ``sd`` (sd of one period's demand forecast error). Per item exactly one buffer applies:
    ``buffer_units`` where not NaN, else ``cover_periods`` (safety stock = that many periods of
    average demand), else ``service_level`` — a fill rate where ``fill_rate`` is true, otherwise a
    cycle service level. ``distribution`` is the shape of demand over the protection interval
    for service-level buffers: ``normal`` or ``gamma`` (skewed, never negative); with
    ``discrete``, slow movers (mean below ``slow_below``, variance at most ``max_dispersion`` times
    the mean) are counted in whole units. A service-level item with a ``safety_factor`` (not
    NaN) keeps that many sds of normal demand instead: the factor a pooled target gave it
    (:func:`pooled_cycle_z`, :func:`pooled_fill_z`), whatever its own level.
    """
    rate, sd, lead, review, level, fill, units, cover, lead_sd, factor = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (rate, sd, lead_time, review_period,
                                                service_level, fill_rate, buffer_units,
                                                cover_periods, lead_time_sd, safety_factor)))
    mean = rate * (lead + review)
    spread = np.sqrt(sd**2 * (lead + review) + rate**2 * lead_sd**2)
    safety = np.zeros_like(mean)
    method = np.full(mean.shape, "normal", dtype=object)
    by_units, by_cover = ~np.isnan(units), np.isnan(units) & ~np.isnan(cover)
    by_service = ~by_units & ~by_cover
    safety[by_units], method[by_units] = units[by_units], "units"
    safety[by_cover], method[by_cover] = cover[by_cover] * rate[by_cover], "days_of_cover"
    fill = fill.astype(bool)
    if distribution == "gamma":
        level_x = gamma_levels(mean[by_service], spread[by_service] ** 2, level[by_service],
                               fill[by_service], rate[by_service] * review[by_service])
        safety[by_service] = level_x - mean[by_service]
        method[by_service] = "gamma"
        by_service_normal = np.zeros_like(by_service)
    else:
        by_service_normal = by_service
    cycle = by_service_normal & ~fill
    safety[cycle] = stats.norm.ppf(level[cycle]) * spread[cycle]
    rated = by_service_normal & fill
    safety[rated] = _fill_rate_safety(spread[rated], level[rated], rate[rated] * review[rated])
    if discrete:
        # Forecast errors far wider than Poisson mostly reflect a level that moved, not a
        # heavy-tailed demand: a negative binomial that wide would stock for rare giants.
        slow = by_service & (mean > 0) & (mean < slow_below) & \
            (spread**2 <= max_dispersion * mean) & np.isnan(factor)
        whole, kind = discrete_levels(mean[slow], spread[slow] ** 2, level[slow], fill[slow],
                                      rate[slow] * review[slow])
        safety[slow], method[slow] = whole - mean[slow], kind
    factored = by_service & ~np.isnan(factor)
    if factored.any():
        safety[factored] = factor[factored] * spread[factored]
        method[factored] = "normal"
    return Levels(mean=mean, sd=spread, safety_stock=safety, order_up_to=mean + safety,
                  method=method)


def gamma_levels(mean, variance, level, fill_rate, cycle_demand) -> np.ndarray:
    """Levels meeting a cycle service level or fill rate when demand over the protection
    interval is gamma with this mean and variance (never negative, skewed like real demand)."""
    mean, variance, level, fill_rate, cycle_demand = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (mean, variance, level, fill_rate, cycle_demand)))
    spread = (mean > 0) & (variance > 0)
    with np.errstate(all="ignore"):
        shape = np.where(spread, mean**2 / np.where(spread, variance, 1.0), 1.0)
        scale = np.where(spread, variance / np.where(spread, mean, 1.0), 1.0)
    quantile = special.gammaincinv(shape, np.clip(level, 1e-12, 1 - 1e-12)) * scale
    allowed = (1.0 - level) * cycle_demand
    low, high = np.zeros(mean.shape), mean + 40 * np.sqrt(np.maximum(variance, 0)) + 1
    for _ in range(60):   # gamma loss falls in x: bisection to ~1e-18 of the bracket
        mid = 0.5 * (low + high)
        above = gamma_loss(mid, shape, scale) > allowed
        low, high = np.where(above, mid, low), np.where(above, high, mid)
    level_x = np.where(fill_rate.astype(bool), 0.5 * (low + high), quantile)
    return np.where(spread, level_x, mean)


def gamma_loss(x, shape, scale):
    """``E[(D - x)+]`` for gamma demand: ``k θ Q(k+1, x/θ) - x Q(k, x/θ)`` (Q: upper regularised
    incomplete gamma)."""
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    return (shape * scale * special.gammaincc(shape + 1, x / scale)
            - x * special.gammaincc(shape, x / scale))


def _fill_rate_safety(sd: np.ndarray, level: np.ndarray, cycle_demand: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(sd > 0, (1.0 - level) * cycle_demand / sd, 1.0)
    return np.where(sd > 0, inverse_standard_normal_loss(target) * sd, 0.0)


def discrete_levels(mean, variance, level, fill_rate, cycle_demand):
    """Least whole-unit levels meeting a cycle service level or fill rate, for slow movers.

    Demand over the protection interval is Poisson(mean) where ``variance <= mean``, otherwise
    negative binomial with that mean and variance. Returns ``(levels, method names)``.
    """
    mean, variance, level, fill_rate, cycle_demand = (
        np.asarray(v, dtype=float) for v in (mean, variance, level, fill_rate, cycle_demand))
    levels = np.zeros(mean.shape)
    if mean.size == 0:
        return levels, np.array([], dtype=object)
    top = np.ceil(mean + 12 * np.sqrt(np.maximum(variance, mean)) + 10).astype(int)
    order = np.argsort(top)   # items of similar reach share a grid width
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * (top[order[stop]] + 1) <= _GRID_CELLS:
            stop += 1
        chunk = order[start:stop]
        levels[chunk] = _least_whole_level(mean[chunk], variance[chunk], level[chunk],
                                           fill_rate[chunk].astype(bool), cycle_demand[chunk],
                                           int(top[order[stop - 1]]) + 1)
        start = stop
    kind = np.where(variance > mean * (1 + 1e-9), "negative_binomial", "poisson").astype(object)
    return levels, kind


def _least_whole_level(mean, variance, level, fill, cycle_demand, width):
    cdf = np.cumsum(_pmf_grid(mean, variance, width), axis=1)
    # E[(D - x)+] = mean - sum_{k < x} P(D > k), for x = 0, 1, ...
    covered = np.concatenate([np.zeros((len(mean), 1)), np.cumsum(1.0 - cdf, axis=1)[:, :-1]],
                             axis=1)
    loss = mean[:, None] - covered
    meets = np.where(fill[:, None], loss <= ((1 - level) * cycle_demand)[:, None] + 1e-12,
                     cdf >= level[:, None] - 1e-12)
    return np.where(meets.any(axis=1), meets.argmax(axis=1), width - 1).astype(float)


def _pmf_grid(mean, variance, width):
    k = np.arange(width, dtype=float)[None, :]
    mean = np.maximum(mean, 1e-12)[:, None]
    over = (variance > mean[:, 0] * (1 + 1e-9))[:, None]
    var = np.where(over, variance[:, None], 2 * mean)
    r = mean**2 / (var - mean)
    p = mean / var
    with np.errstate(divide="ignore", invalid="ignore"):
        log_nb = (special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1)
                  + r * np.log(p) + k * np.log1p(-p))
        log_poisson = k * np.log(mean) - mean - special.gammaln(k + 1)
    return np.exp(np.where(over, log_nb, log_poisson))


def pooled_cycle_z(level: float, sd, unit_cost, cycles_per_order=1.0, *,
                   excess=0.0) -> np.ndarray:
    """Safety factors giving ``level`` as the average cycle service of a group of items, at the
    least stock value.

    Item ``i``'s safety stock costs ``unit_cost_i sd_i z_i``. Its order (at least the MOQ, in
    whole packs) exceeds a cycle's demand by ``excess_i`` sds
    (:func:`restock.policy.exposure.excess_width`), so the position after a review spreads over
    that width and the share of its cycles ending short is ``(L(z_i) - L(z_i + excess_i)) /
    excess_i`` (:func:`cycle_short_share`; ``1 - Phi(z_i)`` without excess). The cheapest mix
    for an average service of ``level`` equalises the service one more sd buys per currency
    unit, ``(Phi(z_i + excess_i) - Phi(z_i)) / excess_i`` (``phi(z_i)`` without excess) over
    ``unit_cost_i sd_i`` (a Lagrange condition), so expensive or very uncertain items get less
    of the target and cheap, steady ones more. ``z`` stays within the service range of the org
    files (0.5 to 0.9999); an item without spread or cost gets the upper end, since its
    protection is free. Where the lower end already gives more than ``level``, every item
    stays there.

    ``cycles_per_order`` is the older count, for callers that still pass it: one exposed cycle
    per order of ``n_i`` cycles, service ``1 - (1 - Phi(z_i)) / n_i`` at a price ``n_i`` times
    higher. It misjudged MOQ-bound items several times over; give ``excess`` instead (not both).
    """
    orders = np.asarray(cycles_per_order, dtype=float)
    price, width, orders = np.broadcast_arrays(
        np.asarray(unit_cost, dtype=float) * np.asarray(sd, dtype=float) * orders,
        np.asarray(excess, dtype=float), orders)
    shape = price.shape
    price, width, orders = (np.array(v, dtype=float).ravel() for v in (price, width, orders))
    if np.any(width > 0) and np.any(orders != 1.0):
        raise ValueError("excess: give the order's excess or cycles_per_order, not both")
    width[width <= NARROW_EXCESS] = 0.0
    if not price.size:
        return price.reshape(shape)
    return _cheapest_mix(level, price, width, orders).reshape(shape)


def _cheapest_mix(level: float, price: np.ndarray, width: np.ndarray,
                  orders: np.ndarray) -> np.ndarray:
    """The factors at the multiplier (the price of service) that gives ``level`` on average,
    found by Brent's method: average service falls as the multiplier rises."""
    tried: dict[float, np.ndarray] = {}
    # Factors at the highest multiplier tried that gave more than the level: those at any
    # higher one are at or below them, the start Newton's method needs.
    upper = [np.full(price.shape, HIGHEST_Z)]

    def surplus(log_multiplier: float) -> float:
        z = _cheapest_factors(np.exp(log_multiplier) * price, width, upper[0])
        tried[log_multiplier] = z
        gap = float((1.0 - cycle_short_share(z, width) / orders).mean()) - level
        if gap > 0:
            upper[0] = z
        return gap

    low, high = _multiplier_range(price, width)
    if surplus(low) <= 0:
        root = low    # out of reach: every item at the upper end
    elif surplus(high) >= 0:
        root = high   # the lower end everywhere already gives it
    else:
        root = optimize.brentq(surplus, low, high, xtol=1e-12)
    if root not in tried:   # Brent's method returns a multiplier it tried, the nearer end
        surplus(root)
    return tried[root]


def _multiplier_range(price: np.ndarray, width: np.ndarray) -> tuple[float, float]:
    # The log multipliers below which every priced item sits at the upper end and above which
    # at the lower end: searching only between them spares Brent's method the flat ends.
    priced = price > 0
    if not priced.any():
        return -_LOG_MULTIPLIER, _LOG_MULTIPLIER
    with np.errstate(divide="ignore"):
        top = np.log(_window_density(np.full(price.shape, HIGHEST_Z), width) / price)[priced]
        bottom = np.log(_window_density(np.full(price.shape, LOWEST_Z), width) / price)[priced]
    return (float(np.clip(top.min(), -_LOG_MULTIPLIER, _LOG_MULTIPLIER)),
            float(np.clip(bottom.max(), -_LOG_MULTIPLIER, _LOG_MULTIPLIER)))


def _window_density(z: np.ndarray, width: np.ndarray) -> np.ndarray:
    # The mean of phi over [z, z + width]: the service one more sd buys (phi(z) without width).
    wide = width > 0
    density = np.exp(-z**2 / 2) / _SQRT_2PI
    density[wide] = (special.ndtr(-z[wide]) - special.ndtr(-z[wide] - width[wide])) / width[wide]
    return density


def cycle_short_share(z, excess=0.0) -> np.ndarray:
    """Share of review cycles ending short at safety factor ``z`` when orders exceed a cycle's
    demand by ``excess`` sds: the position after a review spreads over ``[z, z + excess]``, so
    the share is ``(L(z) - L(z + excess)) / excess`` (standard normal loss ``L``), ``1 - Phi(z)``
    where the excess is at most :data:`NARROW_EXCESS`."""
    z, width = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(excess, dtype=float))
    share = np.array(special.ndtr(-z), dtype=float)
    wide = width > NARROW_EXCESS
    if wide.any():
        start, w = z[wide], width[wide]
        share[wide] = (standard_normal_loss(start) - standard_normal_loss(start + w)) / w
    return share


def _cheapest_factors(marginal: np.ndarray, width: np.ndarray,
                      upper: np.ndarray) -> np.ndarray:
    """Per item the ``z`` at which one more sd buys ``marginal`` service, the mean of ``phi``
    over ``[z, z + width]``, within the levels 0.5 to 0.9999 (the upper end where ``marginal``
    is 0); ``upper``: factors known to be at or above the answer.

    That mean falls in ``z`` for ``z >= 0`` and its log is concave (phi is log-concave, and so
    is its average over a window), so Newton's method on the log from a start at or above the
    root approaches it from above without overshooting. ``phi^-1(marginal)`` is such a start:
    the mean over the window is below ``phi(z)``. It is also the answer without width.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.sqrt(np.maximum(-2 * np.log(np.minimum(marginal * _SQRT_2PI, 1.0)), 0.0))
    z = np.clip(np.where(marginal > 0, z, HIGHEST_Z), LOWEST_Z, HIGHEST_Z)
    active = np.flatnonzero((width > 0) & (marginal > 0))
    z[active] = np.minimum(z[active], upper[active])
    log_marginal = np.log(marginal[active])
    for _ in range(NEWTON_STEPS):
        if not active.size:
            break
        start, w = z[active], width[active]
        bought = special.ndtr(-start) - special.ndtr(-start - w)   # width x the mean of phi
        falling = np.exp(-start**2 / 2) - np.exp(-(start + w) ** 2 / 2)   # x sqrt(2 pi)
        with np.errstate(divide="ignore", invalid="ignore"):
            # d/dz log(bought) = -falling / (sqrt(2 pi) bought): Newton's step on the log. From
            # above it only falls; a rise is rounding (narrow windows) or a root past the top.
            step = (np.log(bought / w) - log_marginal) * bought * _SQRT_2PI / falling
        moved = np.maximum(start + np.minimum(np.nan_to_num(step), 0.0), LOWEST_Z)
        moving = moved < start - CONVERGED
        z[active], active, log_marginal = moved, active[moving], log_marginal[moving]
    return z


def pooled_fill_z(level: float, sd, cycle_demand, unit_cost,
                  cycles_per_order=1.0) -> np.ndarray:
    """Safety factors giving ``level`` as the fill rate of a group of items together (units
    short over all of them / their demand per cycle), at the least stock value.

    Item ``i`` is short ``sd_i L(z_i)`` units per cycle on average (normal loss) and its safety
    stock costs ``unit_cost_i sd_i z_i``; the cheapest mix for a total shortage of
    ``(1 - level) sum(cycle_demand)`` buys the same shortage back per currency unit everywhere,
    ``1 - Phi(z_i) = unit_cost_i / lambda`` (a Lagrange condition): dear items run leaner, cheap
    ones fuller, whatever their spread. ``z`` stays between 0 and ``Phi^-1(0.9999)``; an item
    without cost gets the upper end, since its protection is free. An item whose orders last
    ``n_i = cycles_per_order`` review cycles (MOQ, packs) is exposed once per order: ``sd_i
    L(z_i) / n_i`` units short per review cycle, and ``1 - Phi(z_i) = n_i unit_cost_i / lambda``.
    """
    orders = np.asarray(cycles_per_order, dtype=float)
    cost = np.asarray(unit_cost, dtype=float) * orders
    sd = np.asarray(sd, dtype=float) / orders
    allowed = (1.0 - level) * float(np.sum(cycle_demand))
    low, high = 0.0, stats.norm.ppf(0.9999)

    def factors(log_price: float) -> np.ndarray:
        share = np.clip(cost * np.exp(-log_price), stats.norm.sf(high), stats.norm.sf(low))
        return np.clip(stats.norm.isf(share), low, high)

    lo, hi = -60.0, 60.0
    for _ in range(100):   # units short fall as the price of a unit short rises
        mid = 0.5 * (lo + hi)
        if (sd * standard_normal_loss(factors(mid))).sum() > allowed:
            lo = mid
        else:
            hi = mid
    return factors(hi)
