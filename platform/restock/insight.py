"""What a run's summary says beyond its orders: projected stockouts, forecast accuracy over the
last runs, the series whose model changed, and the service each group delivered."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy.stats import norm

from restock.domain import AccuracyPoint, ModelChange, ServiceDelivered, StockoutRisk
from restock.store import CatalogEntry, ServiceCycle

MAX_STOCKOUTS = 50          # the riskiest items a summary lists
MIN_PROBABILITY = 0.05      # below this chance of running out an item is not called at risk
MAX_DAYS = 36_500
TREND_RUNS = 10             # runs in a summary's accuracy trend, this one included


def stockouts(items: pd.DataFrame, ordered: dict[str, float], as_of: date) -> list[StockoutRisk]:
    """Items likely to run out before their next delivery can land.

    ``items`` needs sku, description, on_hand, allocated, backorders, demand_rate, demand_sd,
    lead_time_days and review_period_days. An item ordered now gets its delivery after its lead
    time; one not ordered, after the next review plus the lead time.
    """
    if items.empty:
        return []
    usable = (items["on_hand"] - items["allocated"] - items["backorders"]).to_numpy(float)
    rate = items["demand_rate"].to_numpy(float)
    sd_day = items["demand_sd"].to_numpy(float)
    is_ordered = items["sku"].isin(list(ordered)).to_numpy()
    wait = items["lead_time_days"].to_numpy(float) + np.where(
        is_ordered, 0.0, items["review_period_days"].to_numpy(float))
    mean, sd = rate * wait, sd_day * np.sqrt(wait)
    with np.errstate(divide="ignore", invalid="ignore"):
        probability = np.where(sd > 0, norm.sf((usable - mean) / np.where(sd > 0, sd, 1.0)),
                               (mean > usable).astype(float))
        days_left = np.where(rate > 0, np.maximum(usable, 0.0) / rate, np.inf)
    shortfall = np.maximum(mean - np.maximum(usable, 0.0), 0.0)
    risky = np.flatnonzero((probability >= MIN_PROBABILITY) & (rate > 0))
    risky = risky[np.argsort(-probability[risky], kind="stable")][:MAX_STOCKOUTS]
    return [_risk(items.iloc[i], probability[i], days_left[i], wait[i], shortfall[i],
                  bool(is_ordered[i]), as_of) for i in risky]


def _risk(item: pd.Series, probability: float, days_left: float, wait: float, short: float,
          ordered: bool, as_of: date) -> StockoutRisk:
    # Beyond a century "runs out" means "does not run out" (and would overflow a date).
    runs_out = as_of + timedelta(days=math.floor(days_left)) if days_left < MAX_DAYS else None
    why = ("ordered now, but it arrives after stock runs out" if ordered
           else "not ordered in this run")
    return StockoutRisk(sku=str(item["sku"]), description=str(item.get("description", "") or ""),
                        stockout_date=runs_out, next_delivery=as_of + timedelta(days=round(wait)),
                        probability=round(float(probability), 4),
                        shortfall_units=round(float(short), 2), ordered=ordered, reason=why)


def accuracy_now(previous: list[CatalogEntry], history: pd.DataFrame, since: date,
                 until: date, backtest_mase: float | None, run_id: str) -> AccuracyPoint:
    """How the previous run's forecasts did on the consumption seen since, plus backtest MASE.

    Bias = (forecast − actual) / actual over the items both know; positive means over-forecast.
    """
    bias, items = None, None
    days = (until - since).days
    if previous and days > 0:
        rates = pd.Series({e.sku: e.rate_per_day or 0.0 for e in previous})
        window = history[(history["date"] >= pd.Timestamp(since))
                         & (history["date"] < pd.Timestamp(until))]
        actual = window.groupby("sku")["quantity"].sum().reindex(rates.index, fill_value=0.0)
        total = float(actual.sum())
        if total > 0:
            bias = round(float((rates * days).sum() - total) / total, 4)
            items = len(rates)
    mase = None if backtest_mase is None or not math.isfinite(backtest_mase) \
        else round(backtest_mase, 4)
    return AccuracyPoint(run_id=run_id, as_of=until, mase=mase, bias=bias, items=items)


def accuracy_trend(earlier: list[AccuracyPoint], now: AccuracyPoint,
                   keep: int = TREND_RUNS) -> list[AccuracyPoint]:
    """This run's accuracy after those of up to ``keep - 1`` earlier runs (``earlier``: each
    earlier run's own point, newest first), oldest first."""
    return [*list(reversed(earlier))[-(keep - 1):], now]


def model_changes(previous: list[CatalogEntry], current: dict[str, str]) -> list[ModelChange]:
    """Series whose chosen model differs from the previous run's."""
    before = {e.sku: e.model for e in previous}
    return [ModelChange(sku=sku, previous=before[sku], current=model,
                        reason="chosen anew by backtest on the latest history")
            for sku, model in sorted(current.items())
            if sku in before and before[sku] != model]


def service_delivered(group: str, measure: str, target: float, cycles: list[ServiceCycle],
                      shift: float, applied: bool = True) -> ServiceDelivered:
    """A service group's delivered service over ``cycles`` (its last year's): the share of
    item-cycles without a stockout, or of units asked that were met, for a fill rate."""
    if measure == "fill_rate":
        asked = sum(c.units_asked for c in cycles)
        delivered = sum(c.units_met for c in cycles) / asked if asked > 0 else None
    else:
        counted = sum(c.item_cycles for c in cycles)
        delivered = 1 - sum(c.stockout_cycles for c in cycles) / counted if counted else None
    return ServiceDelivered(group=group, measure=measure, target=target,
                            delivered=None if delivered is None else round(delivered, 4),
                            item_cycles=sum(c.item_cycles for c in cycles), cycles=len(cycles),
                            shift=round(shift, 4), applied=applied)
