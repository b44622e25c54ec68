"""Backtests: replay a real demand history period by period through a replenishment policy.

At every review period the policy sees only the history before it, forecasts, and sets a reorder
level and an order-up-to level; an order (rounded to packs and MOQ) arrives after the item's lead
time; each period's demand is met from stock, the rest backordered or lost. The last ``periods``
periods are measured: fill rate, cycle service level, stock on hand and its value, orders,
stockout periods and costs (holding + ordering + shortage, where the costs are given).

``simulate(history, items, policy)`` runs one policy; :func:`restock_policy` is restock's own rule
(the same :func:`restock.policy.stock_levels` the planner uses, on :mod:`restock.forecast`), and
:func:`min_max_policy` and :func:`sba_normal_policy` are the rules a buyer would otherwise use.
Forecasts made at each review are cached on a :class:`ForecastCache`, so several policies or
targets on one history forecast only once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from restock.errors import ConfigError, DataError
from restock.forecast import forecast_panel, to_panel
from restock.forecast.panel import Panel
from restock.forecast.promotions import (  # noqa: F401  (re-exported)
    EFFECTS,
    LIFT_PRIOR,
    PromotionEffect,
    calendar_flags,
    on_the_calendar,
    promotion_extra,
    promotion_lift,
)
from restock.forecast.select import model_key
from restock.policy.empirical import SETTLED_SALES, pooled_error_levels
from restock.policy.exposure import cycles_per_order as policy_cycles_per_order
from restock.policy.exposure import excess_width as policy_excess_width
from restock.policy.exposure import exposed_level as policy_exposed_level
from restock.policy.feedback import (  # noqa: F401  (re-exported)
    FEEDBACK_LIMIT,
    FEEDBACK_PRIOR,
    LOWEST_ASKED,
    ServiceRecord,
    corrected_level,
    service_correction,
)
from restock.policy.levels import pooled_cycle_z, pooled_fill_z, stock_levels
from restock.policy.quantity import whole_packs
from restock.policy.spread import learnt_sd

ITEM_DEFAULTS = {"moq": 0.0, "pack_size": 1.0, "order_cost": 0.0, "holding_cost": 0.0,
                 "shortage_cost": 0.0}
MIN_HISTORY = 8   # periods a policy sees before its first decision


# ---------------------------------------------------------------- inputs

def check_history(history: pd.DataFrame, source: str = "history") -> pd.DataFrame:
    """Tidy history (item_id, date, quantity) with parsed dates; a bad row is a DataError
    naming ``source:line`` (line 1 is the CSV header)."""
    _columns(history, ("item_id", "date", "quantity"), source)
    frame = history.reset_index(drop=True)
    quantity = pd.to_numeric(frame["quantity"], errors="coerce")
    _first_bad(frame, ~(np.isfinite(quantity) & (quantity >= 0)), "quantity",
               "must be a number >= 0", source)
    dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
    _first_bad(frame, dates.isna(), "date", "must be a date like 2024-01-31", source)
    return pd.DataFrame({"item_id": frame["item_id"].astype(str), "date": dates,
                         "quantity": quantity.astype(float)})


def check_items(items: pd.DataFrame, source: str = "items") -> pd.DataFrame:
    """Item settings: item_id, lead_time (periods, > 0), unit_cost (> 0) and optionally moq,
    pack_size (> 0), order_cost, holding_cost (per unit per period), shortage_cost (per unit
    short). A bad value is a DataError naming ``source:line`` and the field."""
    _columns(items, ("item_id", "lead_time", "unit_cost"), source)
    frame = items.reset_index(drop=True).copy()
    frame["item_id"] = frame["item_id"].astype(str)
    duplicated = frame["item_id"].duplicated()
    _first_bad(frame, duplicated, "item_id", "appears more than once", source)
    for column, default in ITEM_DEFAULTS.items():
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(default) \
            if column in frame else default
    for column in ("lead_time", "unit_cost"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    rules = [("lead_time", frame["lead_time"] > 0, "must be greater than 0"),
             ("unit_cost", frame["unit_cost"] > 0, "must be greater than 0"),
             ("pack_size", frame["pack_size"] > 0, "must be greater than 0")]
    rules += [(c, frame[c] >= 0, "must not be negative") for c in ITEM_DEFAULTS if c != "pack_size"]
    for column, ok, message in rules:
        _first_bad(frame, ~(ok & np.isfinite(frame[column])), column, message, source)
    return frame


def _columns(frame: pd.DataFrame, required: tuple[str, ...], source: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                        record=source)


def _first_bad(frame: pd.DataFrame, bad, field: str, message: str, source: str) -> None:
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        row = int(np.argmax(bad))
        item, value = frame["item_id"].iloc[row], frame[field].iloc[row]
        shown = f"{float(value):g}" if isinstance(value, (int, float, np.number)) \
            and not isinstance(value, bool) else repr(str(value))
        raise DataError(f"item {item}: {field} {message} (got {shown})",
                        record=f"{source}:{row + 2}")


def promotion_flags(promotions: pd.DataFrame, panel: Panel,
                    source: str = "promotions") -> np.ndarray:
    """The promotion calendar (item_id, date, promotion: 1 on promotion, 0 not) as an items x
    periods array aligned with ``panel``; days not listed are not promoted. A bad row is a
    DataError naming ``source:line``."""
    _columns(promotions, ("item_id", "date", "promotion"), source)
    frame = promotions.reset_index(drop=True)
    flag = pd.to_numeric(frame["promotion"], errors="coerce")
    _first_bad(frame, ~flag.isin([0, 1]), "promotion", "must be 0 or 1", source)
    dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
    _first_bad(frame, dates.isna(), "date", "must be a date like 2024-01-31", source)
    calendar = pd.DataFrame({"item_id": frame["item_id"], "date": dates, "promotion": flag})
    return calendar_flags(calendar, panel.ids, panel.dates, panel.freq)


def check_level(level: float, name: str = "service_level") -> float:
    """A service target strictly between 0.5 and 0.9999, or a ConfigError naming it."""
    if not 0.5 < level < 0.9999:
        raise ConfigError(f"must be between 0.5 and 0.9999 (got {level})", field=name)
    return float(level)


# ---------------------------------------------------------------- the state a policy sees

@dataclass
class Items:
    """Per-item settings aligned with the panel's rows (times in periods)."""

    ids: np.ndarray
    lead: np.ndarray          # whole periods (fractional lead times are rounded up)
    unit_cost: np.ndarray
    moq: np.ndarray           # rounded up to whole packs
    pack: np.ndarray
    order_cost: np.ndarray
    holding_cost: np.ndarray
    shortage_cost: np.ndarray

    @classmethod
    def aligned(cls, items: pd.DataFrame, ids: np.ndarray) -> Items:
        frame = items.set_index("item_id").loc[ids]
        pack = frame["pack_size"].to_numpy(float)
        return cls(ids=ids, lead=np.ceil(frame["lead_time"].to_numpy(float) - 1e-9),
                   unit_cost=frame["unit_cost"].to_numpy(float),
                   moq=whole_packs(frame["moq"].to_numpy(float), pack), pack=pack,
                   order_cost=frame["order_cost"].to_numpy(float),
                   holding_cost=frame["holding_cost"].to_numpy(float),
                   shortage_cost=frame["shortage_cost"].to_numpy(float))


class ForecastCache:
    """Forecasts made at each decision period from the history before it, computed once.

    ``window`` limits each forecast to the last so many periods (None: all history so far).
    ``promotions`` (items x periods, 1 where an item is on promotion, aligned with the panel) is
    the retailer's promotion calendar, known ahead for the lead time + review: the history is
    forecast with promotion periods scaled down to the item's usual level (so a spike neither
    lifts the level nor the spread afterwards), and the periods ahead on promotion are scaled
    back up by the item's lift, learnt from the history before ``t``; with
    ``promotion_effect="extra"`` a promotion adds the item's extra units per period instead
    (both in :mod:`restock.forecast.promotions`, which the live cycle uses too).

    With ``review`` each forecast keeps the models of the forecast one review earlier where
    they still score within the margin (``previous`` of ``forecast_panel``), as a live run keeps
    the last run's from the model catalog; the chain of earlier forecasts is made first, so a
    forecast does not depend on which others were asked for before it. ``simulate`` sets it to
    its review period when it is None.
    """

    def __init__(self, panel: Panel, *, season_length: int | None = None,
                 window: int | None = None, promotions: np.ndarray | None = None,
                 promotion_effect: str = "lift", review: int | None = None) -> None:
        if promotion_effect not in EFFECTS:
            raise ConfigError(f"must be lift or extra (got {promotion_effect!r})",
                              field="promotion_effect")
        self.panel, self.season_length, self.window = panel, season_length, window
        self.review = review
        self.effect = promotion_effect
        self.promotions = None if promotions is None else np.asarray(promotions, dtype=bool)
        if self.promotions is not None and self.promotions.shape != panel.values.shape:
            raise DataError(f"promotions must be {panel.values.shape} like the panel "
                            f"(got {self.promotions.shape})", record="promotions")
        self._pooled = None if self.promotions is None else on_the_calendar(self.promotions)
        self._made: dict[tuple[int, int], object] = {}
        self._effects: dict[int, PromotionEffect] = {}

    def demand_over(self, t: int, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of demand over ``periods`` after period ``t`` (known: periods < t)."""
        horizon = math.ceil(float(np.max(periods, initial=1.0)))
        made = self._made_at(t, horizon)
        if self.promotions is None:
            return made.demand_over(periods)
        return self.promotion_effect(t).demand_over(made, periods, self.promotions[:, t:])

    def _made_at(self, t: int, horizon: int):
        chain = [t]
        while self.review and chain[-1] - self.review >= MIN_HISTORY and \
                (chain[-1] - self.review, horizon) not in self._made:
            chain.append(chain[-1] - self.review)
        for origin in reversed(chain):
            if (origin, horizon) not in self._made:
                earlier = self._made.get((origin - self.review, horizon)) if self.review else None
                self._made[(origin, horizon)] = self._forecast(origin, horizon, earlier)
        return self._made[(t, horizon)]

    def _forecast(self, t: int, horizon: int, earlier):
        start = self._start(t)
        values = self.panel.values[:, start:t]
        if self.promotions is not None:
            values = self.promotion_effect(t).remove(values, self.promotions[:, start:t])
        known = Panel(ids=self.panel.ids, dates=self.panel.dates[start:t], values=values,
                      freq=self.panel.freq)
        previous = None if earlier is None else {
            str(i): model_key(name, params)
            for i, name, params in zip(earlier.ids, earlier.model, earlier.params, strict=True)}
        return forecast_panel(known, horizon, season_length=self.season_length,
                              previous=previous)

    def promotion_effect(self, t: int) -> PromotionEffect:
        """Each item's promotion effect as known before ``t`` (see
        :class:`restock.forecast.promotions.PromotionEffect`)."""
        if t not in self._effects:
            start = self._start(t)
            self._effects[t] = PromotionEffect.learnt(self.panel.values[:, start:t],
                                                      self.promotions[:, start:t], self.effect,
                                                      pooled=self._pooled)
        return self._effects[t]

    def _start(self, t: int) -> int:
        return 0 if self.window is None else max(0, t - self.window)

    def made_before(self, t: int, periods: np.ndarray) -> list[int]:
        """Decision periods before ``t`` that already have a forecast over ``periods``."""
        horizon = math.ceil(float(np.max(periods, initial=1.0)))
        return sorted(made for made, h in self._made if h == horizon and made < t)


@dataclass
class Decision:
    """What a policy knows when it decides at period ``t``: history before ``t`` and settings."""

    t: int
    history: np.ndarray       # (n, t) demand so far, NaN before a series starts
    items: Items
    review: int
    forecasts: ForecastCache
    service: ServiceRecord | None = None   # what the replay delivered in cycles closed so far


Policy = Callable[[Decision], tuple[np.ndarray, np.ndarray]]
"""A rule: ``(reorder level, order-up-to level)`` per item; order when position <= reorder."""


# ---------------------------------------------------------------- policies

CALIBRATIONS = ("errors", "spread", "none")


def restock_policy(service_level: float, *, fill_rate: bool = False,
                   calibrate: str | bool | None = None, pooled: bool = False,
                   feedback: bool = True, per_order: bool = True, **shape) -> Policy:
    """restock's rule: order up to forecast + safety stock over lead time + review, the safety
    stock for a cycle service level or a fill rate.

    ``calibrate`` says where the spread over lead time + review comes from: ``"spread"`` (or
    True) fits a normal to the root mean square of the policy's own past forecast errors over
    that horizon (:func:`horizon_spread`) and uses ``stock_levels`` (whole units for slow
    movers); ``"errors"`` reads the level straight off the distribution of those errors pooled
    over the items (:func:`horizon_errors`, :func:`restock.policy.empirical.pooled_error_levels`);
    ``"none"`` (or False) scales one period's error by sqrt(L + R). The default (None) is
    :func:`default_calibration`: ``"errors"`` for a per-item cycle service level, ``"spread"``
    for a fill rate or a pooled target. With ``pooled`` the target
    is the items' aggregate (their average cycle service, or the fill rate of their demand
    together), reached at the least stock value (:func:`restock.policy.levels.pooled_cycle_z`,
    :func:`restock.policy.levels.pooled_fill_z`).

    With ``feedback`` (not with ``"none"``) the level asked of the formula is corrected by the
    service the replay delivered in cycles closed before the decision
    (:func:`restock.policy.service_correction`), and a fill-rate target that is not pooled is
    met with one safety factor for all items, set by the fill delivered; without it a fill rate
    uses the per-item loss function (and ``"errors"`` falls back to ``"spread"`` for it).
    ``shape`` passes ``distribution`` / ``discrete`` / ``slow_below`` on to ``stock_levels``.
    """
    level = check_level(service_level)
    how = default_calibration(fill_rate, pooled) if calibrate is None else \
        {True: "spread", False: "none"}.get(calibrate, calibrate)
    if how not in CALIBRATIONS:
        raise ConfigError(f"must be one of {', '.join(CALIBRATIONS)} (got {calibrate!r})",
                          field="calibrate")

    def decide(state: Decision) -> tuple[np.ndarray, np.ndarray]:
        horizon = state.items.lead + state.review
        mean, sd = state.forecasts.demand_over(state.t, horizon)
        asked, by_fill = level, fill_rate
        if feedback and how != "none" and state.service is not None:
            # A fill-rate target is met with one safety factor for all items, set by the fill
            # delivered: the per-item loss-function stock of the forecast's spread stocked
            # about twice as much for the same fill in the replays (see docs/policy.md).
            asked, by_fill = _fed_back(state, level, fill_rate), False
        cycle_demand = mean / horizon * state.review
        model_sd = sd
        if how != "none":
            sd = horizon_spread(state, horizon, sd)
        if how == "errors" and not pooled and not by_fill:
            if per_order:
                asked = exposed_level(asked, cycle_demand, sd, state.items, units=fill_rate)
            target = pooled_error_levels(horizon_errors(state, horizon), mean,
                                         _scale(mean, model_sd), asked)
            target = np.maximum(target, 0.0)
            return target - 1e-9, target
        if pooled:
            return _pooled_levels(asked, mean, sd, state.items, fill_rate, cycle_demand,
                                  per_order)
        if not by_fill and per_order:
            asked = exposed_level(asked, cycle_demand, sd, state.items, units=fill_rate)
        levels = stock_levels(mean / horizon, sd / np.sqrt(horizon), state.items.lead,
                              state.review, service_level=asked, fill_rate=by_fill, **shape)
        target = np.maximum(levels.order_up_to, 0.0)
        return target - 1e-9, target
    return decide


def default_calibration(fill_rate: bool, pooled: bool = False) -> str:
    """restock's calibration for a target: error quantiles for a per-item cycle service level,
    the learnt spread for a fill rate or a pooled target.

    On both replays the error quantiles (with the per-order exposure and the feedback) met a
    cycle target at less stock than every other rule; for a fill rate they stocked far more
    than the spread (MAN, 0.95: 0.931 at 7.7 M€ against 0.936 at 4.6 M€), and the pooled
    factors are derived for a normal spread.
    """
    return "spread" if fill_rate or pooled else "errors"


def cycles_per_order(cycle_demand, items: Items) -> np.ndarray:
    """:func:`restock.policy.exposure.cycles_per_order` for the replay's items: review cycles one
    order lasts (at least the MOQ, in whole packs, over a cycle's demand; at least 1)."""
    return policy_cycles_per_order(cycle_demand, items.pack, items.moq)


def exposed_level(level, cycle_demand, sd, items: Items, *, units: bool = False) -> np.ndarray:
    """:func:`restock.policy.exposure.exposed_level` for the replay's items (their MOQ and
    packs): the level to ask of one protection interval when an order outlasts a review cycle.
    """
    return policy_exposed_level(level, cycle_demand, sd, items.pack, items.moq, units=units)


def _fed_back(state: Decision, level: float, fill_rate: bool) -> float:
    year = -(-state.service.year // state.review)   # the last year's cycles
    shift = service_correction(state.service, level, fill_rate=fill_rate, window=year)
    return corrected_level(level, shift)


def _learning_origins(state: Decision, horizon: np.ndarray) -> list[int]:
    """Every review period back from ``t`` over ``LEARN_WINDOWS`` windows that have closed."""
    longest = int(np.max(horizon, initial=1))
    origins = range(state.t - state.review, MIN_HISTORY - 1, -state.review)
    return list(origins)[:LEARN_WINDOWS + -(-longest // state.review)]


def _scale(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    # Errors of counts grow like the square root of the mean (Poisson), so dividing by it puts
    # items on one footing even where a model's own sd is far off (a few sales, a new level).
    return np.sqrt(mean)


LEARN_WINDOWS = 52   # past review windows whose forecast errors the "errors" calibration reads


def horizon_errors(state: Decision, horizon: np.ndarray) -> np.ndarray:
    """Standardised errors ``(actual - forecast) / sd`` of demand over ``horizon`` (windows x
    items) for forecasts made every review period before ``t`` whose windows have closed.

    Origins go back up to ``LEARN_WINDOWS`` reviews, before the replay's own start too: each
    forecast there uses only the history before its origin, so nothing after ``t`` is read.
    NaN where the window is still open or the forecast claims no spread.
    """
    values = np.nan_to_num(state.history)
    cumulative = np.concatenate([np.zeros((len(values), 1)), np.cumsum(values, axis=1)], axis=1)
    selling = np.concatenate([np.zeros((len(values), 1)), np.cumsum(values > 0, axis=1)], axis=1)
    rows = np.arange(len(values))
    rows_out = []
    for origin in _learning_origins(state, horizon):
        end = origin + horizon.astype(int)
        closed = end <= state.t
        if not closed.any():
            continue
        mean, sd = state.forecasts.demand_over(origin, horizon)
        actual = cumulative[rows, np.minimum(end, state.t)] - cumulative[:, origin]
        with np.errstate(all="ignore"):
            scale = _scale(mean, sd)
            # A forecast from a few sales says nothing about how wrong later ones will be.
            settled = selling[:, origin] >= SETTLED_SALES
            rows_out.append(np.where(closed & settled & (scale > 0), (actual - mean) / scale,
                                     np.nan))
    return np.array(rows_out) if rows_out else np.empty((0, len(values)))


def _pooled_levels(level, mean, sd, items: Items, fill_rate, cycle_demand,
                   per_order) -> tuple[np.ndarray, np.ndarray]:
    active = mean > 0   # an item with no expected demand is not part of the service average
    z = np.full(len(mean), norm.ppf(level))
    sd_in, cost, demand = sd[active], items.unit_cost[active], cycle_demand[active]
    if fill_rate:
        orders = cycles_per_order(cycle_demand, items)[active] if per_order else 1.0
        z[active] = pooled_fill_z(level, sd_in, demand, cost, orders)
    else:
        excess = policy_excess_width(demand, sd_in, items.pack[active], items.moq[active]) \
            if per_order else 0.0
        z[active] = pooled_cycle_z(level, sd_in, cost, excess=excess)
    target = np.maximum(mean + z * sd, 0.0)
    return target - 1e-9, target


def horizon_spread(state: Decision, horizon: np.ndarray, model_sd: np.ndarray) -> np.ndarray:
    """The sd of demand over lead time + review, learnt from forecast errors already known
    (:func:`restock.policy.spread.learnt_sd`, the rule the live planner applies): the windows
    of forecasts made every review period before ``t`` whose windows have closed by ``t``."""
    values = np.nan_to_num(state.history)
    cumulative = np.concatenate([np.zeros((len(values), 1)), np.cumsum(values, axis=1)], axis=1)
    squared, count, predicted = (np.zeros(len(values)) for _ in range(3))
    rows = np.arange(len(values))
    # The same review-spaced origins as horizon_errors, whatever else the cache holds, so the
    # spread does not depend on which other rules ran on the same cache first.
    for made in sorted(set(state.forecasts.made_before(state.t, horizon))
                       | set(_learning_origins(state, horizon))):
        closed = made + horizon <= state.t
        if not closed.any():
            continue
        mean, sd = state.forecasts.demand_over(made, horizon)
        end = np.minimum(made + horizon, state.t).astype(int)
        error = cumulative[rows, end] - cumulative[:, made] - mean
        squared += np.where(closed, error**2, 0.0)
        predicted += np.where(closed, sd**2, 0.0)
        count += closed
    return learnt_sd(squared, predicted, count, model_sd)


def min_max_policy(safety_periods: float) -> Policy:
    """A buyer's min/max from average demand: min = average x (lead time + ``safety_periods``),
    max = min + average x review period; order up to max when the position falls to min."""
    def decide(state: Decision) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            average = np.nan_to_num(np.nanmean(state.history, axis=1))
        low = average * (state.items.lead + safety_periods)
        return low, low + average * state.review
    return decide


def sba_normal_policy(service_level: float, *, alpha: float = 0.1) -> Policy:
    """SBA forecast with a normal safety stock from the spread of past demand:
    ``S = rate (L + R) + z sd sqrt(L + R)``."""
    z = norm.ppf(check_level(service_level))

    def decide(state: Decision) -> tuple[np.ndarray, np.ndarray]:
        rate = sba(state.history, alpha)
        with np.errstate(all="ignore"):
            spread = np.nan_to_num(np.nanstd(state.history, axis=1))
        horizon = state.items.lead + state.review
        target = rate * horizon + z * spread * np.sqrt(horizon)
        return target - 1e-9, target
    return decide


def sba(values: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """Syntetos-Boylan: 0.95 x (smoothed demand size / smoothed interval), per row."""
    n = values.shape[0]
    size, interval, gap = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    for column in values.T:
        observed = ~np.isnan(column)
        gap = gap + observed
        hit = observed & (column > 0)
        first = hit & np.isnan(size)
        size = np.where(first, column, np.where(hit, size + alpha * (column - size), size))
        interval = np.where(first, gap, np.where(hit, interval + alpha * (gap - interval),
                                                 interval))
        gap = np.where(hit, 0.0, gap)
    with np.errstate(all="ignore"):
        return np.nan_to_num(0.95 * size / interval)


# ---------------------------------------------------------------- the replay

@dataclass
class Backtest:
    """A replay's measurements: totals and one row per item."""

    totals: dict
    items: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready: the totals at top level, then the settings and ``items``."""
        rows = self.items.astype(object).where(self.items.notna(), None)
        return {**self.totals, **self.settings, "items": rows.to_dict("records")}


def simulate(history: pd.DataFrame, items: pd.DataFrame, policy: Policy, *, periods: int,
             freq: str = "W", review: int = 1, lost_sales: bool = False,
             forecasts: ForecastCache | None = None, panel: Panel | None = None,
             warm_up: int | None = None) -> Backtest:
    """Replay ``history`` through ``policy`` and measure its last ``periods`` periods.

    The replay starts ``warm_up`` periods before them (default and least: two of the longest
    lead time and a review), with empty shelves.

    Items in the history without settings in ``items`` (and the reverse) are left out and
    counted. Give ``panel`` and ``forecasts`` to reuse them across runs on the same history.
    """
    if freq not in ("D", "W", "M"):
        raise ConfigError(f"must be D, W or M (got {freq!r})", field="freq")
    if review < 1:
        raise ConfigError(f"must be at least 1 period (got {review})", field="review")
    history, items = check_history(history), check_items(items)
    panel = panel or to_panel(history, freq=freq)
    known = np.isin(panel.ids, items["item_id"].to_numpy())
    panel = Panel(ids=panel.ids[known], dates=panel.dates, values=panel.values[known], freq=freq)
    setting = Items.aligned(items, panel.ids)
    start = _start(panel, setting, periods, review, warm_up)
    forecasts = forecasts or ForecastCache(panel)
    if forecasts.review is None:
        forecasts.review = review
    run = _Replay(panel.values, setting, policy, review, lost_sales, forecasts,
                  PERIODS_PER_YEAR[freq])
    measure_from = panel.values.shape[1] - periods
    measured = run.play(start, measure_from)
    measured.insert(1, "demand_periods_before",
                    (np.nan_to_num(panel.values[:, :measure_from]) > 0).sum(axis=1))
    totals = _totals(measured, setting)
    totals.update(_established(measured))
    totals.update(_reachable(measured))
    totals.update(items_in_history_only=int((~known).sum()),
                  items_without_history=int((~items["item_id"].isin(panel.ids)).sum()))
    return Backtest(totals=totals, items=measured, settings={
        "periods": periods, "freq": freq, "review_periods": review,
        "demand_model": "lost_sales" if lost_sales else "backorders"})


PERIODS_PER_YEAR = {"D": 364, "W": 52, "M": 12}


def reachable_from(values: np.ndarray, lead: np.ndarray, review: int) -> np.ndarray:
    """Per item, the first period a policy could have stock for it: its first demand in the
    whole history, plus one review to notice it, plus the lead time for an order to arrive.

    Before that no rule could serve the item, however it forecasts, so the headline service
    counts only periods and review cycles from then on (infinity for an item never sold).
    """
    sold = np.nan_to_num(values) > 0
    first = np.where(sold.any(axis=1), sold.argmax(axis=1), np.inf)
    return first + review + lead


def _start(panel: Panel, setting: Items, periods: int, review: int,
           warm_up: int | None = None) -> int:
    total = panel.values.shape[1]
    least = 2 * int(setting.lead.max(initial=0)) + review
    warm = least if warm_up is None else warm_up
    if warm < least:
        raise ConfigError(f"must be at least {least} periods (two lead times and a review) "
                          f"(got {warm})", field="warm_up")
    most = total - warm - MIN_HISTORY
    if not 1 <= periods <= most:
        raise ConfigError(f"must be between 1 and {max(most, 0)} for this history of {total} "
                          f"periods (the replay needs {MIN_HISTORY} periods of history and "
                          f"{warm} to reach a steady state first) (got {periods})",
                          field="periods")
    return total - periods - warm


class _Replay:
    """The period-by-period state of every item at once."""

    def __init__(self, values, setting: Items, policy: Policy, review: int, lost_sales: bool,
                 forecasts: ForecastCache, year: int) -> None:
        self.values, self.setting, self.policy = values, setting, policy
        self.review, self.lost_sales, self.forecasts = review, lost_sales, forecasts
        self.reachable = reachable_from(values, setting.lead, review)
        n, total = values.shape
        self.record = ServiceRecord(year=year)
        self._cycle = _Cycle(n)
        self.arrivals = np.zeros((n, total + int(setting.lead.max(initial=0)) + 2))
        self.on_order = np.zeros(n)
        self.stock = np.zeros(n)   # net: negative is backordered demand

    def play(self, start: int, measure_from: int) -> pd.DataFrame:
        # Empty shelves at the start: two lead times of warm-up reach the policy's own steady
        # state, where a stock seeded from a guess would linger as dead stock.
        tally = _Tally(len(self.stock))
        # From empty shelves an item reaches its steady state after two lead times and a
        # review (the least warm-up); service before that says nothing about the rule.
        first = np.maximum(self.reachable, start + 2 * self.setting.lead + self.review)
        # The service feedback counts an item's review cycles from one lead time + review
        # later: shelves filled from empty are a state no live system is in, and the short
        # cycles right after it (MAN: 0.73-0.89 where the rule then delivered 0.93-0.96) had
        # pushed every item's cycle level up for a year of the measured window. Its units are
        # counted from the warm-up's end as before: counting them later too left the fill-rate
        # rows 1.6-2.1 points under target on MAN (see docs/policy.md).
        settled = first + self.setting.lead + self.review
        for t in range(start, self.values.shape[1]):
            self.stock += self.arrivals[:, t]
            self.on_order -= self.arrivals[:, t]
            decides = (t - start) % self.review == 0
            reachable = t >= first
            if decides:
                self._cycle.close(self.record, self.values[:, :t], t)
                self._cycle.open(t >= settled)
            ordered = self._order(t) if decides else np.zeros(len(self.stock), dtype=bool)
            if t >= measure_from:
                tally.cycle_start(decides, reachable)
            met, short = self._serve(np.nan_to_num(self.values[:, t]))
            stockout = (short > 0) | (self.stock < -1e-9)
            self._cycle.add(met, short, stockout, reachable)
            if t >= measure_from:
                tally.add(self, met, short, ordered, stockout, reachable)
        return tally.frame(self.setting)

    def _state(self, t: int) -> Decision:
        return Decision(t=t, history=self.values[:, :t], items=self.setting, review=self.review,
                        forecasts=self.forecasts, service=self.record)

    def _order(self, t: int) -> np.ndarray:
        reorder, target = self.policy(self._state(t))
        position = self.stock + self.on_order
        want = np.where(position <= reorder, target - position, 0.0)
        quantity = np.where(want > 1e-9, np.maximum(whole_packs(want, self.setting.pack),
                                                    self.setting.moq), 0.0)
        arrive = t + self.setting.lead.astype(int)
        self.arrivals[np.arange(len(quantity)), arrive] += quantity
        self.on_order += quantity
        return quantity > 0

    def _serve(self, demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        met = np.minimum(np.maximum(self.stock, 0.0), demand)
        self.stock = self.stock - demand
        if self.lost_sales:
            self.stock = np.maximum(self.stock, 0.0)
        return met, demand - met


class _Cycle:
    """The review cycle under way, for the replay's :class:`ServiceRecord`."""

    def __init__(self, n: int) -> None:
        self.counted = np.zeros(n, dtype=bool)   # reachable when the cycle began
        self.stockout = np.zeros(n, dtype=bool)
        self.demand, self.met = 0.0, 0.0
        self.started = False

    def open(self, reachable: np.ndarray) -> None:
        self.counted, self.started = reachable.copy(), True
        self.stockout[:] = False
        self.demand = self.met = 0.0

    def add(self, met, short, stockout, reachable) -> None:
        self.stockout |= stockout
        self.demand += float((met + short)[reachable].sum())
        self.met += float(met[reachable].sum())

    def close(self, record: ServiceRecord, history: np.ndarray, t: int) -> None:
        if not self.started:
            return
        # As the measured aggregate counts items with demand in the window, count items that
        # sold in the last year, not ones long dead (always "served", with nothing to serve).
        active = (np.nan_to_num(history[:, max(0, t - record.year):t]) > 0).any(axis=1)
        counted = self.counted & active
        record.cycles.append(int(counted.sum()))
        record.stockout_cycles.append(int((counted & self.stockout).sum()))
        record.demand.append(self.demand)
        record.met.append(self.met)


class _Tally:
    """Sums over the measured periods, per item; ``reachable_*`` only from the period each item
    could first be served (:func:`reachable_from`)."""

    def __init__(self, n: int) -> None:
        zeros = lambda: np.zeros(n)
        self.demand, self.met, self.on_hand, self.orders = zeros(), zeros(), zeros(), zeros()
        self.stockout_periods, self.cycles, self.stockout_cycles = zeros(), zeros(), zeros()
        self.reachable_demand, self.reachable_met = zeros(), zeros()
        self.reachable_cycles, self.reachable_stockout_cycles = zeros(), zeros()
        self.backlog = zeros()
        self.periods = 0
        self.in_cycle = np.zeros(n, dtype=bool)
        self.cycle_reachable = np.zeros(n, dtype=bool)
        self.counting = False

    def cycle_start(self, decides: bool, reachable: np.ndarray) -> None:
        if decides:
            self._close_cycle()
            self.in_cycle[:] = False
            self.counting = True
            self.cycles += 1
            self.cycle_reachable = reachable.copy()
            self.reachable_cycles += reachable

    def _close_cycle(self) -> None:
        self.stockout_cycles += self.in_cycle
        self.reachable_stockout_cycles += self.in_cycle & self.cycle_reachable

    def add(self, replay: _Replay, met, short, ordered, stockout, reachable) -> None:
        self.periods += 1
        self.demand += met + short
        self.met += met
        self.reachable_demand += np.where(reachable, met + short, 0.0)
        self.reachable_met += np.where(reachable, met, 0.0)
        self.stockout_periods += stockout
        if self.counting:
            self.in_cycle |= stockout
        self.on_hand += np.maximum(replay.stock, 0.0)
        self.backlog += np.maximum(-replay.stock, 0.0)
        self.orders += ordered

    def frame(self, setting: Items) -> pd.DataFrame:
        if self.counting:
            self._close_cycle()
        periods = max(self.periods, 1)
        active = self.demand > 0
        avg_on_hand = self.on_hand / periods
        with np.errstate(all="ignore"):
            fill = np.where(active, self.met / self.demand, np.nan)
            csl = np.where(active & (self.cycles > 0),
                           1 - self.stockout_cycles / np.maximum(self.cycles, 1), np.nan)
        holding = self.on_hand * setting.holding_cost
        ordering = self.orders * setting.order_cost
        shortage = (self.demand - self.met) * setting.shortage_cost
        return pd.DataFrame({
            "item_id": setting.ids, "demand": self.demand, "met": self.met,
            "fill_rate": fill, "cycle_service_level": csl, "cycles": self.cycles,
            "stockout_cycles": self.stockout_cycles, "stockout_periods": self.stockout_periods,
            "avg_on_hand": avg_on_hand, "avg_inventory_value": avg_on_hand * setting.unit_cost,
            "avg_backorders": self.backlog / periods, "orders": self.orders,
            "holding_cost": holding, "ordering_cost": ordering, "shortage_cost": shortage,
            "total_cost": holding + ordering + shortage,
            "reachable_demand": self.reachable_demand, "reachable_met": self.reachable_met,
            "reachable_cycles": self.reachable_cycles,
            "reachable_stockout_cycles": self.reachable_stockout_cycles})


ESTABLISHED = 3   # periods with demand before the measured window that make an item "established"


def _established(measured: pd.DataFrame) -> dict:
    """Service of items with a demand history before the window, apart from the new ones.

    An item whose first demand falls inside the measured window cannot be foreseen by any rule
    that learns from history; on spare parts such items carry most stockouts, so service is
    also reported without them.
    """
    known = measured[measured["demand_periods_before"] >= ESTABLISHED]
    active = known[known["demand"] > 0]
    cycles = float(active["cycles"].sum())
    demand = float(active["demand"].sum())
    return {
        "established_items": len(known),
        "new_items_with_demand": int(((measured["demand_periods_before"] == 0)
                                      & (measured["demand"] > 0)).sum()),
        "established_fill_rate": float(active["met"].sum()) / demand if demand else None,
        "established_cycle_service_level":
            1 - float(active["stockout_cycles"].sum()) / cycles if cycles else None,
        "established_avg_inventory_value": float(known["avg_inventory_value"].sum()),
    }


def _totals(measured: pd.DataFrame, setting: Items) -> dict:
    active = measured["demand"] > 0
    demand = float(measured["demand"].sum())
    cycles = float(measured.loc[active, "cycles"].sum())
    return {
        "fill_rate": float(measured["met"].sum()) / demand if demand else None,
        "cycle_service_level": 1 - float(measured.loc[active, "stockout_cycles"].sum()) / cycles
        if cycles else None,
        "avg_inventory_value": float(measured["avg_inventory_value"].sum()),
        "avg_on_hand_units": float(measured["avg_on_hand"].sum()),
        "orders": int(measured["orders"].sum()),
        "stockout_periods": int(measured["stockout_periods"].sum()),
        "holding_cost": float(measured["holding_cost"].sum()),
        "ordering_cost": float(measured["ordering_cost"].sum()),
        "shortage_cost": float(measured["shortage_cost"].sum()),
        "total_cost": float(measured["total_cost"].sum()),
        "demand": demand, "item_count": len(measured),
        "items_with_demand": int(active.sum()),
    }


def _reachable(measured: pd.DataFrame) -> dict:
    """Service counted from each item's first reachable period (:func:`reachable_from`) on: the
    fair aggregate, since before it no rule could have had stock of the item."""
    active = measured["reachable_demand"] > 0
    demand = float(measured["reachable_demand"].sum())
    cycles = float(measured.loc[active, "reachable_cycles"].sum())
    stockouts = float(measured.loc[active, "reachable_stockout_cycles"].sum())
    return {
        "reachable_fill_rate": float(measured["reachable_met"].sum()) / demand
        if demand else None,
        "reachable_cycle_service_level": 1 - stockouts / cycles if cycles else None,
        "reachable_share_of_demand": demand / float(measured["demand"].sum())
        if measured["demand"].sum() else None,
        "reachable_items_with_demand": int(active.sum()),
    }
