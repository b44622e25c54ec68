"""From a pulled snapshot to a plan: clean, forecast every series, build the items, plan.

The numbers the planner sees per SKU (demand rate and its spread per day) come from the forecast
over that SKU's own lead time + review period, so safety stock rests on the forecast's
uncertainty over the horizon that matters, not on a constant. Each run records that forecast
(``store.windows``); once an earlier run's window has closed its realised error joins the SKU's
spread and the org's pool of errors that a per-item cycle target reads its level from
(:mod:`restock.forecast_windows`, the replay's rule).

With a promotion calendar in the snapshot, the history is forecast with its promotion periods
brought back to each SKU's usual level, and the promotion periods inside a SKU's lead time +
review raise its demand by the lift learnt from its past promotions
(:mod:`restock.forecast.promotions`, the same code the backtest replays); the lines concerned get
a ``promotion`` reason. Without a calendar the plan is made as it always was.

Before planning, the review cycle that ended at the planning date is closed and each service
group's level corrected by the service it delivered over the last year
(:mod:`restock.feedback`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from restock.clean import clean_snapshot
from restock.config import OrgConfig
from restock.domain import (
    AccuracyPoint,
    ModelChange,
    QuarantinedRecord,
    Reason,
    ServiceDelivered,
    SkippedLine,
    Snapshot,
)
from restock.feedback import service_feedback
from restock.forecast import forecast_panel, to_panel
from restock.forecast.panel import Panel, PanelForecast
from restock.forecast.promotions import PromotionEffect, calendar_flags
from restock.forecast.select import model_key
from restock.forecast_windows import (
    LEARN_DAYS,
    closed_windows,
    horizon_windows,
    learn_from_windows,
)
from restock.policy import GroupShift, Plan, plan
from restock.store import CatalogEntry, Store

DAYS_PER_PERIOD = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
PAST_PACE_DAYS = 365        # the history a forecast's pace is set beside in reasons
PACE_BLOCK = 8192
SEASON = {"D": 7, "W": 52, "M": 12}
MAX_HORIZON_DAYS = 400
CODE_VERSION = "restock-0.1"


@dataclass
class PlanningResult:
    as_of: date
    items: pd.DataFrame
    plan: Plan
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)
    accuracy_summary: dict[str, Any] = field(default_factory=dict)
    accuracy_point: AccuracyPoint | None = None
    model_changes: list[ModelChange] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    service: list[ServiceDelivered] = field(default_factory=list)


def plan_snapshot(config: OrgConfig, snapshot: Snapshot, book: Any, store: Store,
                  now: datetime, run_id: str) -> PlanningResult:
    """Clean, forecast and plan ``snapshot`` for ``config`` (``book`` knows restock's own orders)."""
    as_of = _as_of(snapshot, now, config.timezone)
    cleaned = clean_snapshot(snapshot, as_of=as_of, org=config.org)
    source = snapshot.source
    del snapshot     # the raw frames, no longer needed (freed unless the caller keeps them)
    snap = cleaned.snapshot
    items, blocked_skips = _items(config, snap, cleaned.blocked_skus)
    history = _window(snap.history, as_of, config.forecast.history_days)
    previous = store.models.latest(config.org)
    forecast = _forecast(config, history, items, as_of, snap.promotions,
                         {e.sku: model_key(e.model, e.params or {}) for e in previous})
    items = _with_demand(items, forecast, config)
    windows = horizon_windows(items)      # recorded as the forecast said, before learning
    items, errors = learn_from_windows(items, history, closed_windows(
        store.windows, config.org, as_of, _shortest_review(items, config),
        as_of - timedelta(days=config.forecast.history_days)))
    items = book.add_own_orders(items, snap.open_orders, as_of)
    items["usual_order_qty"] = _usual_order(items, snap.offers, book.past_line_quantities())
    feedback = service_feedback(config, items, history, as_of, store, run_id)
    result = _call_plan(items, snap.offers, config, book.committed_in_slot(as_of),
                        feedback.shifts, errors)
    _explain_promotions(result, items, config.forecast.freq)
    catalog = _catalog(config, run_id, forecast, history)
    store.models.record(catalog)
    _prune_catalog(store, config)
    store.windows.record(config.org, run_id, as_of, windows)
    store.windows.prune(config.org, before=as_of - timedelta(days=LEARN_DAYS))  # never read again
    current_models = {e.sku: e.model for e in catalog}
    backtest = _mean(forecast.get("mase"))
    accuracy = _accuracy(previous, history, store, config.org, as_of, backtest, run_id)
    from restock.insight import model_changes
    return PlanningResult(
        as_of=as_of, items=items, plan=result,
        quarantined=[*cleaned.quarantined, *_set_aside(result)],
        skipped=blocked_skips, accuracy_point=accuracy,
        accuracy_summary=_accuracy_summary(forecast, accuracy),
        model_changes=model_changes(previous, current_models), service=feedback.service,
        stats={"skus": len(snap.catalog), "planned_items": len(items),
               "history_rows": len(snap.history), "series": len(catalog),
               "skus_with_learnt_spread": int((items["spread_windows"] > 0).sum()),
               "pooled_forecast_errors": int(errors.size),
               "source": source})


def _shortest_review(items: pd.DataFrame, config: OrgConfig) -> float:
    # Runs are picked this far apart; a SKU reviewed less often keeps every so many of them.
    return float(items["review_period_days"].min()) if len(items) else \
        config.policy.review_period_days


def _prune_catalog(store: Store, config: OrgConfig) -> None:
    # Measured by the clock that stamps the rows, not the planning date: a run pinned to a past
    # date (a backfill) must not keep what is old today, nor a future one delete what is recent.
    days = config.forecast.catalog_days
    if days is not None:
        store.models.prune(config.org, before=datetime.now(UTC) - timedelta(days=days))


# ---------------------------------------------------------------- dates and windows

def _as_of(snapshot: Snapshot, now: datetime, tz: str) -> date:
    # A source that pinned its own date (a fixed date, or the end of its history) wins; one that
    # only said "today" gets the org's planning date at ``now`` (the daemon's slot time).
    if snapshot.as_of != datetime.now(UTC).date():
        return snapshot.as_of
    return now.astimezone(ZoneInfo(tz)).date()


def _window(history: pd.DataFrame, as_of: date, days: int) -> pd.DataFrame:
    start = pd.Timestamp(as_of - timedelta(days=days))
    dates = pd.to_datetime(history["date"])
    return history[(dates >= start) & (dates < pd.Timestamp(as_of))]


# ---------------------------------------------------------------- items

def _items(config: OrgConfig, snap: Snapshot, blocked: dict[str, str]
           ) -> tuple[pd.DataFrame, list[SkippedLine]]:
    """One row per plannable SKU: catalog facts, summed stock over locations, its settings."""
    catalog = snap.catalog.drop_duplicates("sku").set_index("sku")
    stock = snap.positions.groupby("sku")[["on_hand", "allocated", "on_order", "backorders"]] \
        .sum()
    skipped = [_skip(sku, "blocked", f"not planned: {why}") for sku, why in sorted(blocked.items())]
    unknown = catalog.index.difference(stock.index).difference(list(blocked))
    skipped += [_skip(sku, "no_position", "not planned: the source reported no stock position "
                      "for it, and restock never orders without knowing the stock")
                for sku in unknown]
    items = stock.join(catalog[["description", "category"]], how="inner").reset_index()
    items["category"] = items["category"].where(items["category"].notna(), None)
    lead = snap.offers.groupby("sku")["lead_time_days"].min()
    items["lead_time_days"] = items["sku"].map(lead)
    _apply_settings(items, config)
    return items, skipped


def _apply_settings(items: pd.DataFrame, config: OrgConfig) -> None:
    policy = config.policy
    items["review_period_days"] = float(policy.review_period_days)
    items["lead_time_days"] = items["lead_time_days"].fillna(float(policy.lead_time_days))
    overrides = policy.overrides
    touched = items["sku"].isin(list(overrides.skus)) | items["category"].isin(
        list(overrides.categories))
    for index in np.flatnonzero(touched.to_numpy()):
        row = items.iloc[index]
        settings = policy.for_item(row["sku"], row["category"])
        items.iat[index, items.columns.get_loc("review_period_days")] = \
            float(settings.review_period_days)


def _skip(sku: str, code: str, message: str) -> SkippedLine:
    return SkippedLine(sku=sku, wanted_quantity=0.0, reasons=[Reason(code=code, message=message)])


# ---------------------------------------------------------------- forecast

def _forecast(config: OrgConfig, history: pd.DataFrame, items: pd.DataFrame,
              as_of: date, promotions: pd.DataFrame,
              previous: dict[str, str] | None = None) -> dict[str, Any]:
    """Forecast every SKU's consumption; returns per-SKU arrays keyed by name (and, with a
    promotion calendar, the SKUs' promotion effect and their promoted periods ahead).
    ``previous``: each SKU's model in the last catalogued run, kept while it scores within the
    margin (``restock.forecast.select.STICKY_MARGIN``)."""
    freq = config.forecast.freq
    # Several locations' rows of a SKU and day are summed by the panel itself (a groupby
    # first took 3.7 s on 7.7M rows).
    tidy = history[["sku", "date", "quantity"]]
    if tidy.empty or items.empty:    # nothing plannable (every SKU blocked): no horizon either
        return {"ids": np.array([], dtype=str)}
    panel = to_panel(tidy, freq=freq, id_col="sku", end=pd.Timestamp(as_of - timedelta(days=1)))
    horizon_days = (items["lead_time_days"] + items["review_period_days"]).max()
    horizon = int(min(max(math.ceil(horizon_days / DAYS_PER_PERIOD[freq]), 1),
                      math.ceil(MAX_HORIZON_DAYS / DAYS_PER_PERIOD[freq])))
    effect, known = _without_promotions(panel, promotions)
    result = forecast_panel(known, horizon,
                            season_length=config.forecast.season_length or SEASON[freq],
                            time_budget_seconds=config.forecast.statsmodels_seconds,
                            previous=previous)
    made = {"result": result, "ids": np.asarray(result.ids).astype(str), "panel": panel,
            "model": np.asarray(result.model).astype(str),
            "class": np.asarray(result.demand_class).astype(str),
            "mase": result.mase, "rmsse": result.rmsse, "params": result.params,
            "confidence": result.confidence}
    if effect is not None:
        made["promotion"] = effect
        made["promoted_ahead"] = calendar_flags(promotions, result.ids, result.dates, freq,
                                                id_col="sku")
    return made


def _without_promotions(panel: Panel, promotions: pd.DataFrame
                        ) -> tuple[PromotionEffect | None, Panel]:
    """Each SKU's promotion lift learnt from the history, and the history without it."""
    if promotions is None or promotions.empty:
        return None, panel
    promoted = calendar_flags(promotions, panel.ids, panel.dates, panel.freq, id_col="sku")
    on_promotion = promotions.loc[promotions["promotion"] == 1, "sku"].astype(str).unique()
    pooled = np.isin(panel.ids.astype(str), on_promotion)   # past or planned
    effect = PromotionEffect.learnt(panel.values, promoted, pooled=pooled)
    return effect, dataclasses.replace(panel, values=effect.remove(panel.values, promoted))


def _with_demand(items: pd.DataFrame, forecast: dict[str, Any], config: OrgConfig
                 ) -> pd.DataFrame:
    """Demand rate and its per-day spread over each SKU's own lead time + review period."""
    items = items.copy()
    days = (items["lead_time_days"] + items["review_period_days"]).to_numpy(float)
    rate, sd_day = np.zeros(len(items)), np.zeros(len(items))
    confidence = np.ones(len(items))
    model = np.full(len(items), "none", dtype=object)
    chosen_by = np.full(len(items), None, dtype=object)
    if len(forecast["ids"]):
        position = pd.Index(forecast["ids"]).get_indexer(items["sku"].astype(str))
        found = position >= 0
        result = forecast["result"]
        periods = np.zeros(len(result.ids))
        periods[position[found]] = days[found] / DAYS_PER_PERIOD[config.forecast.freq]
        mean, sd = _demand_over(forecast, periods)
        items["demand_quantiles"] = _quantiles_of(result, periods, (mean, sd), position,
                                                  config.forecast.quantiles)
        rate[found] = mean[position[found]] / days[found]
        sd_day[found] = sd[position[found]] / np.sqrt(days[found])
        model[found] = forecast["model"][position[found]]
        chosen_by[found] = result.chosen_by[position[found]]
        confidence[found] = np.asarray(forecast["confidence"], float)[position[found]]
    items["demand_rate"] = np.nan_to_num(rate, nan=0.0, posinf=0.0).clip(min=0.0)
    items["demand_sd"] = np.nan_to_num(sd_day, nan=0.0, posinf=0.0).clip(min=0.0)
    items["forecast_confidence"] = np.nan_to_num(confidence, nan=0.0)
    items["model"], items["chosen_by"] = model, chosen_by
    if "promotion" in forecast:
        _add_promotion_columns(items, forecast, position, periods)
    if "panel" in forecast:
        _add_past_pace(items, forecast["panel"], config.forecast.freq)
    return items


def _quantiles_of(result: PanelForecast, periods: np.ndarray, over: tuple, position: np.ndarray,
                  levels: tuple[float, ...]) -> list[dict[str, float] | None]:
    """Per item, {"q0.9": units, ...} of its demand over lead time + review (None without a
    forecast): what the forecast reason reports beside the mean."""
    if not levels:
        return [None] * len(position)
    values = result.demand_quantiles(periods, levels, over=over)
    names = [f"q{level:g}" for level in levels]
    return [dict(zip(names, (round(float(v), 2) for v in values[row]), strict=True))
            if row >= 0 else None
            for row in position]


def _add_past_pace(items: pd.DataFrame, panel: Panel, freq: str) -> None:
    """Per SKU, what its history says beside the forecast: its daily demand over the last year
    (``past_rate``) and the days since it last sold (``quiet_days``). A model that expects
    little after a quiet spell is explained against them (docs/policy.md, reasons)."""
    days = DAYS_PER_PERIOD[freq]
    periods = min(panel.values.shape[1], max(1, math.ceil(PAST_PACE_DAYS / days)))
    total, idle = np.zeros(len(panel.ids)), np.full(len(panel.ids), np.nan)
    for start in range(0, len(panel.ids), PACE_BLOCK):   # a block at a time: no panel copy
        recent = np.nan_to_num(panel.values[start:start + PACE_BLOCK, -periods:])
        sold = recent > 0
        since = np.argmax(sold[:, ::-1], axis=1)          # periods after the last sale
        total[start:start + len(recent)] = recent.sum(axis=1)
        idle[start:start + len(recent)] = np.where(sold.any(axis=1), since * days, np.nan)
    position = pd.Index(panel.ids).get_indexer(items["sku"].astype(str))
    found = position >= 0
    items["past_rate"] = np.where(found, total[position] / (periods * days), np.nan)
    items["quiet_days"] = np.where(found, idle[position], np.nan)


def _demand_over(forecast: dict[str, Any], periods: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    result = forecast["result"]
    if "promotion" not in forecast:
        return result.demand_over(periods)
    return forecast["promotion"].demand_over(result, periods, forecast["promoted_ahead"])


def _add_promotion_columns(items: pd.DataFrame, forecast: dict[str, Any],
                           position: np.ndarray, periods: np.ndarray) -> None:
    """Per SKU: promoted periods inside its lead time + review, its lift, and the factor by
    which they raised its demand there (1: no promotion ahead, or no forecast)."""
    result, effect = forecast["result"], forecast["promotion"]
    ahead = effect.periods_ahead(result, periods, forecast["promoted_ahead"])
    ratio = effect.ratio(result, periods, forecast["promoted_ahead"])
    found = position >= 0
    items["promotion_periods"] = np.where(found, ahead[position], 0).astype(int)
    items["promotion_lift"] = np.where(found, effect.size[position], 1.0)
    items["promotion_factor"] = np.where(found, ratio[position], 1.0)


def _usual_order(items: pd.DataFrame, offers: pd.DataFrame,
                 past: dict[str, list[float]]) -> pd.Series:
    """An item's usual order size: the median of its last orders when there are three or more,
    otherwise the demand over its lead time + review period, and never less than the smallest
    order a supplier accepts (a first fill-up, or an MOQ, is not unusual)."""
    cycle = items["demand_rate"] * (items["lead_time_days"] + items["review_period_days"])
    smallest = offers.assign(least=offers[["moq", "pack_size"]].max(axis=1)) \
        .groupby("sku")["least"].min()
    floor = items["sku"].map(smallest).fillna(0.0)
    known = items["sku"].map(lambda sku: float(np.median(past[sku][-10:]))
                             if len(past.get(sku, ())) >= 3 else np.nan)
    return known.fillna(np.maximum(cycle, floor))


def _call_plan(items: pd.DataFrame, offers: pd.DataFrame, config: OrgConfig,
               committed: float, shifts: dict[str, GroupShift], errors: np.ndarray) -> Plan:
    # The budget is per planning slot: a re-run of the slot may only spend what is left of it.
    policy = config.policy
    if policy.budget is not None:
        policy = policy.model_copy(update={"budget": max(policy.budget - committed, 0.0)})
    return plan(items, offers, policy, guard=config.guard, currency=config.currency,
                service_shift=shifts, horizon_errors=errors)


def _explain_promotions(result: Plan, items: pd.DataFrame, freq: str) -> None:
    """A ``promotion`` reason, after the forecast reason, on every line and skipped need whose
    demand a promotion ahead raised."""
    if "promotion_periods" not in items:
        return
    raised = items[(items["promotion_periods"] > 0) & (items["promotion_factor"] > 1.0)]
    reasons = {row.sku: _promotion_reason(row, freq) for row in raised.itertuples()}
    for line in [*result.lines, *result.skipped]:
        if line.sku in reasons:
            _insert_after_forecast(line.reasons, reasons[line.sku])


def _promotion_reason(row: Any, freq: str) -> Reason:
    unit = {"D": "day", "W": "week", "M": "month"}[freq]
    periods = int(row.promotion_periods)
    return Reason(
        code="promotion",
        message=f"{periods} {unit}{'s' if periods != 1 else ''} on promotion within the lead "
                f"time + review: forecast x{row.promotion_factor:.2f} (sales x"
                f"{row.promotion_lift:.2f} on promotion, learnt from its past promotions)",
        data={"promotion_periods": periods, "period": freq, "lift": float(row.promotion_lift),
              "demand_factor": float(row.promotion_factor)})


def _insert_after_forecast(reasons: list[Reason], reason: Reason) -> None:
    codes = [r.code for r in reasons]
    reasons.insert(codes.index("forecast") + 1 if "forecast" in codes else len(reasons), reason)


def _set_aside(result: Plan) -> list[QuarantinedRecord]:
    """Rows the planner refused (an offer with price 0, pack size 0...) as quarantined records."""
    return [QuarantinedRecord(dataset="offers" if r.data.get("supplier") else "items",
                              record=" ".join(f"{k}={r.data[k]}" for k in ("sku", "supplier")
                                              if r.data.get(k) is not None),
                              reason=r.message)
            for r in result.problems]


# ---------------------------------------------------------------- catalog and accuracy

def _catalog(config: OrgConfig, run_id: str, forecast: dict[str, Any],
             history: pd.DataFrame) -> list[CatalogEntry]:
    ids = forecast["ids"]
    if not len(ids):
        return []
    result, panel = forecast["result"], forecast["panel"]
    rate = result.point.mean(axis=1) / DAYS_PER_PERIOD[config.forecast.freq] \
        if result.point.shape[1] else np.zeros(len(ids))
    observed = (~np.isnan(panel.values)).sum(axis=1)
    start, end = _window_bounds(history)
    params, mase, rmsse = forecast["params"], forecast["mase"], forecast["rmsse"]
    return [CatalogEntry(
        org=config.org, run_id=run_id, sku=str(sku), model=str(forecast["model"][i]),
        demand_class=str(forecast["class"][i]),
        params=params[i],
        mase=_finite(mase[i]),
        rmsse=_finite(rmsse[i]),
        rate_per_day=float(rate[i]), window_start=start, window_end=end,
        observations=int(observed[i]), code_version=CODE_VERSION,
        chosen_by=str(result.chosen_by[i]))
        for i, sku in enumerate(ids)]


def _window_bounds(history: pd.DataFrame) -> tuple[date | None, date | None]:
    if history.empty:
        return None, None
    dates = pd.to_datetime(history["date"])
    return dates.min().date(), dates.max().date()


def _accuracy(previous: list[CatalogEntry], history: pd.DataFrame, store: Store, org: str,
              as_of: date, backtest: float | None, run_id: str) -> AccuracyPoint:
    from restock.insight import accuracy_now

    since = None
    if previous:
        earlier = store.runs.record(previous[0].run_id)
        since = earlier.as_of if earlier is not None else None
    return accuracy_now(previous if since else [], history, since or as_of, as_of, backtest,
                        run_id)


def _accuracy_summary(forecast: dict[str, Any], point: AccuracyPoint) -> dict[str, Any]:
    models = pd.Series(forecast.get("model", [])).value_counts().to_dict()
    classes = pd.Series(forecast.get("class", [])).value_counts().to_dict()
    return {"mase": point.mase, "bias": point.bias, "models": models, "classes": classes}


def _mean(values: Any) -> float | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else None


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
