"""restock's replenishment policy against a buyer's usual rules, replayed on real histories.

Data: ../shared/data/sets — MAN industrial spare parts (weekly, real unit costs, fixed order
costs, holding costs, lead times of 7 or 16 weeks, MOQs and packs) and the Italian pasta store
(daily; no costs in the source, so stock is valued at 1 per unit, lead time 7 days).

Policies, all on the same replay (review every ``review`` periods, backorders):

- restock: forecast (restock.forecast, re-run at every review on the history known then) and
  order up to expected demand over lead time + review + safety stock (restock.policy.
  stock_levels, whole units for slow movers), the spread over lead time + review learnt from its
  own closed forecast windows, and the level asked of the formula corrected by the service the
  replay delivered in the cycles closed before each decision (restock.simulate.
  service_correction: a fill-rate target is met the same way, one safety factor for all items
  set by the fill delivered), and a level per protection interval that counts how often an
  item runs short when its MOQ or packs make an order last several reviews (exposed_level: the
  positions after a review spread over the order's excess; a fill rate counts one exposed
  interval per order). ``restock_without_feedback``: the rule before both (fill rate from the
  per-item loss function); ``restock_cycle_without_calibration``: one
  period's error scaled by sqrt(L + R); ``pooled_cycle`` / ``pooled_fill_rate``: the target
  as the items' aggregate (average cycle service, fill rate of all their demand), reached at
  the least stock value (restock.policy.pooled_cycle_z / pooled_fill_z), with the same feedback;
- min/max: min = average demand x (lead time + k periods), max = min + average x review, for k
  swept over a range (a buyer's rule of thumb has no service target of its own);
- SBA + normal: SBA forecast, safety stock z x sd of past demand x sqrt(L + R), z swept.

Service is measured two ways, the same for every rule. The headline (``achieved``, the
``reachable_*`` fields) counts, per item, only the periods and review cycles from its first
demand + one review + its lead time on: before that no rule could have had stock of an item
nobody had asked for yet (590 MAN items first sell inside the measured window). The raw figure
over all measured periods (``fill_rate``, ``cycle_service_level``; ``achieved_all_periods`` in
``comparison``) is kept beside it, and service of "established" items (demand in at least 3
periods before the window) as a third view. Stock value is always over all measured periods.

An aggregate can hide items left far below it. Every run also records how evenly it serves the
items (``item_cycle_service_*``, ``item_fill_rate_*``): among items with at least 5 reachable
review cycles with demand in the measured window, the share whose own service (as simulate
counts it per item from its reachable periods and cycles) is within 5 points of each target or
above, the 10th percentile and median of that service, and the share below 0.5.

For each restock target (0.90 / 0.95 / 0.98, cycle service and fill rate) the result records the
achieved service, and each baseline's average stock value and total cost at that same achieved
service (linear interpolation along the baseline's sweep; null when the sweep never reaches it),
with the baseline's per-item attainment at that service beside restock's, and the stock value
the baseline needs to match restock's share of items within 5 points of the target, and its 10th
percentile of per-item service.
Writes bench/results/policy_backtest.json; ``python -m bench.policy_backtest pasta`` runs one set.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results" / "policy_backtest.json"
DATA = Path(os.environ.get("RESTOCK_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data")) / "sets"
TARGETS = (0.90, 0.95, 0.98)
MIN_MAX_K = (0.0, 0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
SBA_LEVELS = (0.55, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
# The headline: service from each item's first reachable period (restock.simulate.
# reachable_from); the same measured over all periods is kept beside it as *_all_periods.
MEASURES = {"cycle": "reachable_cycle_service_level", "fill_rate": "reachable_fill_rate"}
RAW = {"reachable_cycle_service_level": "cycle_service_level",
       "reachable_fill_rate": "fill_rate"}
COMPARED = {**MEASURES, "pooled_cycle": MEASURES["cycle"],
            "pooled_fill_rate": MEASURES["fill_rate"]}
CURVE_TARGETS = (0.8, 0.85, 0.99)   # with TARGETS: restock's value-vs-service curve
TOTALS = ("fill_rate", "cycle_service_level", "avg_inventory_value", "total_cost", "orders",
          "stockout_periods", "established_fill_rate", "established_cycle_service_level",
          "established_avg_inventory_value", "established_items", "new_items_with_demand",
          "reachable_fill_rate", "reachable_cycle_service_level", "reachable_share_of_demand",
          "reachable_items_with_demand")   # of simulate's totals, kept for every run
# Per-item attainment: an item's own service is read only with this many reachable review
# cycles with demand behind it (fewer say little), and "near" a target is within NEAR of it.
MIN_DEMAND_CYCLES = 5
NEAR = 0.05
PER_ITEM = {MEASURES["cycle"]: "item_cycle_service", MEASURES["fill_rate"]: "item_fill_rate"}


def man() -> dict:
    """The MAN set: weekly, items with any demand, their real costs and constraints."""
    demand = pd.read_csv(DATA / "man.csv.gz")
    raw = pd.read_csv(DATA / "man_items.csv")
    used = demand.groupby("item_id")["quantity"].sum()
    used = used[used > 0].index
    items = pd.DataFrame({
        "item_id": raw["item_id"], "lead_time": raw["lead_time_weeks"],
        "unit_cost": raw["cost_price_eur"], "moq": raw["min_order_qty"],
        "pack_size": raw["units_per_pack"], "order_cost": raw["fixed_order_cost_eur"],
        "holding_cost": raw["holding_cost_eur_per_unit_year"] / 52})
    return {"name": "man", "history": demand[demand["item_id"].isin(used)],
            "items": items[items["item_id"].isin(used)], "freq": "W", "review": 4,
            "periods": 104, "season_length": 1, "window": None, "warm_up": None}


def pasta() -> dict:
    """The pasta store: daily, no costs (stock valued at 1 per unit), 7-day lead time; its
    promotion calendar (1 per item and day on promotion), taken as known for the 14 days ahead.
    The replay starts a year before the measured one (its history allows it), so the service
    feedback has a year of closed cycles behind it when measuring starts."""
    demand = pd.read_csv(DATA / "pasta.csv.gz")
    ids = demand["item_id"].unique()
    items = pd.DataFrame({"item_id": ids, "lead_time": 7, "unit_cost": 1.0})
    return {"name": "pasta", "history": demand, "items": items, "freq": "D", "review": 7,
            "periods": 364, "season_length": 7, "window": 365, "warm_up": 364 + 21,
            "promotions": pd.read_csv(DATA / "pasta_promotions.csv.gz")}


def evaluate(data: dict) -> dict:
    """Every policy on one data set; restock's targets compared at equal achieved service."""
    from restock.forecast import to_panel
    from restock.simulate import (
        ForecastCache,
        check_history,
        min_max_policy,
        promotion_flags,
        restock_policy,
        sba_normal_policy,
        simulate,
    )

    tidy = check_history(data["history"])
    panel = to_panel(tidy, freq=data["freq"])
    cache = ForecastCache(panel, season_length=data["season_length"], window=data["window"],
                          promotions=None if data.get("promotions") is None
                          else promotion_flags(data["promotions"], panel))
    options = {"periods": data["periods"], "freq": data["freq"], "review": data["review"],
               "panel": panel, "forecasts": cache, "warm_up": data["warm_up"]}

    def run(policy) -> dict:
        starts: list[int] = []
        result = simulate(tidy, data["items"], _noting(policy, starts), **options)
        totals = result.totals
        measured = [t for t in starts if t >= panel.values.shape[1] - data["periods"]]
        return {**{k: totals[k] for k in TOTALS}, **_per_item(result.items, panel, measured)}

    start = time.perf_counter()
    # restock's cycle rule (error quantiles) forecasts at every review back a year before the
    # window; run it first so that every rule after it learns from the same closed windows,
    # whatever the order.
    first = run(restock_policy(0.95))
    forecast_seconds = time.perf_counter() - start
    restock = {measure: [{"target": t, **(first if (t, measure) == (0.95, "cycle") else
                                          run(restock_policy(t, fill_rate=measure != "cycle")))}
                         for t in TARGETS] for measure in MEASURES}
    uncalibrated = [{"target": t, **run(restock_policy(t, calibrate=False))} for t in TARGETS]
    spread = [{"target": t, **run(restock_policy(t, calibrate="spread"))} for t in TARGETS]
    without_feedback = {measure: [{"target": t, **run(restock_policy(
        t, fill_rate=measure != "cycle", feedback=False, per_order=False))} for t in TARGETS]
        for measure in MEASURES}
    curve = [{"target": t, **run(restock_policy(t))} for t in CURVE_TARGETS]
    extra = _with_extra_units(data, panel, options, run) if "promotions" in data else None
    restock["pooled_cycle"] = [{"target": t, **run(restock_policy(t, pooled=True))}
                               for t in TARGETS]
    restock["pooled_fill_rate"] = [{"target": t, **run(restock_policy(t, pooled=True,
                                                                      fill_rate=True))}
                                   for t in TARGETS]
    min_max = [{"k": k, **run(min_max_policy(k))} for k in MIN_MAX_K]
    sba = [{"z_level": z, **run(sba_normal_policy(z))} for z in SBA_LEVELS]
    return {"items": len(panel.ids), "periods_measured": data["periods"],
            "freq": data["freq"], "review_periods": data["review"],
            "seconds_forecasting": round(forecast_seconds, 1),
            "promotions_known_ahead": data.get("promotions") is not None,
            "warm_up_periods": data["warm_up"],
            "restock": restock, "restock_without_feedback": without_feedback,
            "restock_cycle_without_calibration": uncalibrated,
            "restock_cycle_learnt_spread": spread,
            "restock_promotions_as_extra_units": _at_baselines(extra, min_max, sba),
            "sba_normal_targets": _sba_at_targets(sba),
            "comparison": _compare(restock, min_max, sba),
            "comparison_without_feedback": _compare(without_feedback, min_max, sba,
                                                    measures=MEASURES),
            "curves_at_equal_service": _curves({
                "restock_cycle": curve + restock["cycle"], "restock_cycle_learnt_spread": spread,
                "min_max": min_max, "sba_normal": sba}),
            "baseline_sweeps": {"min_max": min_max, "sba_normal": sba}}


def _with_extra_units(data: dict, panel, options: dict, run) -> dict:
    """restock with a promotion adding extra units rather than multiplying (a second cache)."""
    from restock.simulate import ForecastCache, promotion_flags, restock_policy

    cache = ForecastCache(panel, season_length=data["season_length"], window=data["window"],
                          promotions=promotion_flags(data["promotions"], panel),
                          promotion_effect="extra")
    shared, options["forecasts"] = options["forecasts"], cache
    rows = {measure: [{"target": t, **run(restock_policy(t, fill_rate=measure == "fill_rate"))}
                      for t in TARGETS] for measure in MEASURES}
    options["forecasts"] = shared
    return rows


def _at_baselines(rows: dict | None, min_max: list[dict], sba: list[dict]) -> dict | None:
    """Each baseline's stock value at each row's achieved service (its measure's)."""
    for measure, column in MEASURES.items():
        for row in (rows or {}).get(measure, []):
            for name, sweep in (("min_max", min_max), ("sba_normal", sba)):
                row[f"{name}_inventory_value_at_same_service"] = _at_service(
                    sweep, column, row[column], "avg_inventory_value")
    return rows


def _noting(policy, starts: list[int]):
    """``policy``, noting the periods it decides at: the first periods of the review cycles."""
    def decide(state):
        starts.append(state.t)
        return policy(state)
    return decide


def _per_item(rows: pd.DataFrame, panel, starts: list[int]) -> dict:
    """Per-item attainment of one run (see the module docstring), from simulate's per-item
    rows and the measured review cycles' first periods ``starts``."""
    if not (rows["cycles"] == len(starts)).all():
        raise RuntimeError(f"policy_backtest: {len(starts)} measured review cycles noted, "
                           "simulate counted otherwise; the per-item cycle reading is stale")
    values = panel.values[pd.Index(panel.ids).get_indexer(rows["item_id"])]
    with_demand = _demand_cycles(values, starts, rows["reachable_cycles"].to_numpy(int))
    kept = rows[with_demand >= MIN_DEMAND_CYCLES]
    cycle = 1 - kept["reachable_stockout_cycles"] / kept["reachable_cycles"]
    fill = kept["reachable_met"] / kept["reachable_demand"]
    return {**_attainment(cycle.to_numpy(float), PER_ITEM[MEASURES["cycle"]]),
            **_attainment(fill.to_numpy(float), PER_ITEM[MEASURES["fill_rate"]])}


def _demand_cycles(values: np.ndarray, starts: list[int], reachable: np.ndarray) -> np.ndarray:
    """Per item, its reachable measured review cycles with demand. An item stays reachable once
    it is, so its ``reachable`` cycles are the last ones of ``starts``."""
    if not starts:
        return np.zeros(len(values), dtype=int)
    ends = [*starts[1:], values.shape[1]]
    sold = np.stack([np.nan_to_num(values[:, a:b]).sum(axis=1) > 0
                     for a, b in zip(starts, ends)], axis=1)
    from_last = np.concatenate([np.zeros((len(values), 1), dtype=int),
                                np.cumsum(sold[:, ::-1], axis=1)], axis=1)
    return from_last[np.arange(len(values)), np.minimum(reachable, len(starts))]


def _attainment(service: np.ndarray, prefix: str) -> dict:
    """How evenly the items are served: share within NEAR of each target or above, the 10th
    percentile and median of their own service, share below 0.5 (None without items)."""
    some = len(service) > 0
    row = {f"{prefix}_items": len(service),
           f"{prefix}_p10": float(np.quantile(service, 0.1)) if some else None,
           f"{prefix}_median": float(np.median(service)) if some else None,
           f"{prefix}_share_below_half": float(np.mean(service < 0.5)) if some else None}
    for target in TARGETS:
        # The tolerance keeps an item at exactly target - NEAR in despite float rounding.
        near = np.mean(service >= target - NEAR - 1e-9) if some else None
        row[_near(prefix, target)] = None if near is None else float(near)
    return row


def _near(prefix: str, target: float) -> str:
    return f"{prefix}_share_within_5pp_of_{target}"


def _sba_at_targets(sba: list[dict]) -> list[dict]:
    """SBA + normal run at restock's targets: its own achieved service vs target."""
    return [row for row in sba if row["z_level"] in TARGETS]


def _at_service(sweep: list[dict], column: str, service: float, value: str) -> float | None:
    points = sorted((row[column], row[value]) for row in sweep
                    if row[column] is not None and row[value] is not None)
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    if not len(xs) or service < xs.min() or service > xs.max():
        return None
    # A sweep's service need not be strictly monotone on real data: the cheapest point of the
    # upper envelope at or above the service wanted is what a buyer would pick.
    above = xs >= service
    below = xs <= service
    if not above.any() or not below.any():
        return None
    hi = int(np.argmin(np.where(above, xs, np.inf)))
    lo = int(np.argmax(np.where(below, xs, -np.inf)))
    if xs[hi] == xs[lo]:
        return float(ys[hi])
    share = (service - xs[lo]) / (xs[hi] - xs[lo])
    return float(ys[lo] + share * (ys[hi] - ys[lo]))


def _curves(rules: dict[str, list[dict]]) -> list[dict]:
    """Every rule's stock value at the same achieved cycle service, read off its own
    value-vs-service curve (linear between the runs around it; null outside its range)."""
    rows = []
    for service in TARGETS:
        row = {MEASURES["cycle"]: service}
        for name, sweep in rules.items():
            row[f"{name}_inventory_value"] = _at_service(sweep, MEASURES["cycle"], service,
                                                         "avg_inventory_value")
        mine = row["restock_cycle_inventory_value"]
        for name in rules:
            other = row[f"{name}_inventory_value"]
            if name != "restock_cycle" and mine is not None and other is not None:
                row[f"restock_saving_vs_{name}"] = 1 - mine / other
        rows.append(row)
    return rows


def _compare(restock: dict, min_max: list[dict], sba: list[dict],
             measures: dict = COMPARED) -> list[dict]:
    """Per restock row: achieved service (headline: reachable periods; also over all periods
    and for established items) and each baseline's value and cost at the same achieved
    service."""
    rows = []
    for measure, column in measures.items():
        for row in restock[measure]:
            achieved = row[column]
            settled = row[f"established_{RAW[column]}"]
            entry = {"measure": measure, "target": row["target"], "achieved": achieved,
                     "within_2pp": abs(achieved - row["target"]) <= 0.02,
                     "achieved_all_periods": row[RAW[column]],
                     "achieved_established_items": settled,
                     "established_within_2pp": abs(settled - row["target"]) <= 0.02,
                     "restock_inventory_value": row["avg_inventory_value"],
                     "restock_total_cost": row["total_cost"],
                     "items_measured": row[f"{PER_ITEM[column]}_items"],
                     **{f"restock_{key}": row[field]
                        for key, field in _item_fields(column, row["target"]).items()}}
            for name, sweep in (("min_max", min_max), ("sba_normal", sba)):
                value = _at_service(sweep, column, achieved, "avg_inventory_value")
                cost = _at_service(sweep, column, achieved, "total_cost")
                entry[f"{name}_inventory_value"] = value
                entry[f"{name}_total_cost"] = cost
                entry[f"restock_lower_value_than_{name}"] = \
                    None if value is None else row["avg_inventory_value"] < value
                entry.update(_baseline_items(name, sweep, column, row))
            rows.append(entry)
    return rows


def _item_fields(column: str, target: float) -> dict[str, str]:
    """The per-item attainment figures compared for a measure, "within 5 points" of ``target``."""
    prefix = PER_ITEM[column]
    return {"items_within_5pp": _near(prefix, target), "items_p10": f"{prefix}_p10",
            "items_median": f"{prefix}_median",
            "items_below_half": f"{prefix}_share_below_half"}


def _baseline_items(name: str, sweep: list[dict], column: str, row: dict) -> dict:
    """The baseline's per-item attainment at the restock row's aggregate service, and the stock
    value it needs to match restock's share of items within 5 points of the target, and its
    10th percentile (null where its sweep never gets there)."""
    fields = _item_fields(column, row["target"])
    entry = {f"{name}_{key}": _at_service(sweep, column, row[column], field)
             for key, field in fields.items()}
    for key in ("items_within_5pp", "items_p10"):
        field = fields[key]
        entry[f"{name}_inventory_value_at_same_{key}"] = None if row[field] is None \
            else _at_service(sweep, field, row[field], "avg_inventory_value")
    return entry


def main(names: list[str] | None = None) -> None:
    if not DATA.is_dir():
        print(f"bench policy_backtest: skipped, no data sets at {DATA}", file=sys.stderr)
        return
    sets = {"man": man, "pasta": pasta}
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in names or list(sets):
        previous[name] = evaluate(sets[name]())
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
        print(json.dumps({name: previous[name]["comparison"]}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
