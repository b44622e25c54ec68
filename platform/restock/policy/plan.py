"""The planner: from positions, forecasts and supplier offers to order lines, under real constraints.

``plan(items, offers, policy)`` decides, for every SKU at once (numpy over the whole catalogue):

1. the order-up-to level ``S`` = expected demand over lead time + review period + safety stock,
   with the safety stock from the item's buffer (units, days of cover, or a cycle service level /
   fill rate over the forecast's uncertainty), see :mod:`restock.policy.levels`;
   with a pooled service level (``service_scope: pooled``), each item's share of its pool's
   target, priced at the offer chosen for it (see :mod:`restock.policy.pooled`);
2. for every usable offer (price breaks included) the quantity it would take: ``S`` minus the
   inventory position, rounded up to whole packs, raised to the MOQ (itself rounded up to whole
   packs), capped by the maximum order quantity;
3. the offer: never above the max bid; the cheapest one that arrives before the stock runs out,
   or, when none can, the fastest;
4. the run budget: when the lines cost more, keep those that avoid the most expected units short
   per currency unit, and report the rest as skipped with their stockout risk;
5. guardrails: lines far above the item's usual order, or resting on a low-confidence forecast,
   are put in ``holds`` for a person.

Every line, skipped need and hold carries reasons with stable codes (docs/policy.md lists them).
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from restock.config import Guard, Policy
from restock.domain import OrderLine, Reason, SkippedLine
from restock.policy import explain
from restock.policy.budget import apply_budget
from restock.policy.empirical import ErrorPool
from restock.policy.explain import records
from restock.policy.exposure import (
    NARROW_EXCESS,
    cycles_per_order,
    excess_width,
    exposed_level,
)
from restock.policy.feedback import GroupShift
from restock.policy.guard import holds_for
from restock.policy.inputs import item_settings, prepare_items, prepare_offers, with_columns
from restock.policy.levels import Levels, stock_levels
from restock.policy.loss import normal_loss
from restock.policy.pooled import pooled_settings, with_pool_shares
from restock.policy.quantity import order_minimums, order_quantities
from restock.policy.safety import protection_demand

_ITEM_FIELDS = ("sku", "category", "description", "on_hand", "allocated", "on_order",
                "backorders", "demand_rate", "demand_sd", "usual_order_qty",
                "forecast_confidence", "lead_time_sd_days", "open_supplier", "spread_windows",
                "past_rate", "quiet_days", "model", "chosen_by", "demand_quantiles", "position",
                "valid")


@dataclass
class Plan:
    """What one planning pass decided.

    ``lines`` are to be ordered (the cycle groups them per supplier); ``skipped`` are needs that
    will not be ordered, each with its reasons and stockout risk; ``holds`` maps a SKU among
    ``lines`` to why a person must approve it first; ``problems`` are input rows set aside.
    """

    lines: list[OrderLine] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)
    holds: dict[str, list[Reason]] = field(default_factory=dict)
    problems: list[Reason] = field(default_factory=list)
    budget: float | None = None

    @property
    def spend(self) -> float:
        """Value of the lines kept (held ones included: approving them spends it)."""
        return float(sum(line.value for line in self.lines))


def plan(items: pd.DataFrame, offers: pd.DataFrame, policy: Policy, *,
         guard: Guard | None = None, as_of: date | None = None,
         currency: str | None = None,
         service_shift: Mapping[str, GroupShift | float] | None = None,
         horizon_errors: np.ndarray | None = None) -> Plan:
    """Order lines for every SKU of ``items`` that needs stock, from the best usable offer.

    ``currency`` is the org's: offers in another currency are not used (an offer without one is
    taken to be in it). ``as_of`` dates the expected arrivals in the reasons. ``service_shift``
    moves each service group's level by the service it delivered (:mod:`restock.policy.feedback`).
    ``horizon_errors`` are the org's past forecast errors over lead time + review, standardised
    by the square root of the forecast (:func:`restock.forecast_windows.learn_from_windows`):
    given, a per-item cycle target reads its level off them (docs/policy.md §2).
    """
    items, problems = prepare_items(items)
    offers, offer_problems = prepare_offers(offers, currency)
    if items.empty:
        return Plan(problems=problems + offer_problems, budget=policy.budget)
    items["position"] = (items["on_hand"] + items["on_order"] - items["backorders"]
                         - items["allocated"])
    settings = item_settings(items, policy, service_shift)
    errors = _usable_errors(horizon_errors)
    rows = _candidate_rows(items, settings, offers, errors)
    chosen = _choose(rows, rows["usable"].to_numpy())
    if settings["pool"].notna().any():
        # A pooled item's share of the target depends on the offer it is bought from (price,
        # lead time, MOQ): choose at its own level first, then plan again at its share.
        settings = pooled_settings(settings, items["sku"], chosen)
        rows = _sized(with_pool_shares(rows, settings, items["sku"]), errors)
        chosen = _choose(rows, rows["usable"].to_numpy())
    ordering = chosen[chosen["need"] > 0]
    result = Plan(problems=problems + offer_problems, budget=policy.budget)
    after = _expected_short(ordering, ordering["position"] + ordering["quantity"], errors)
    kept, cut = apply_budget(ordering, policy.budget, after)
    with _collector_paused():
        skipped = _unusable_needs(items, settings, offers, rows, chosen, errors)
        skipped += _skipped_lines(cut, [[explain.budget_cut(row, policy.budget)]
                                        for row in records(cut)])
        result.skipped += _SKIPPED.validate_python(skipped)
        result.holds = holds_for(kept, guard or Guard())
        result.lines = _LINES.validate_python(_order_lines(kept, as_of))
    return result


# Lines and skipped needs are built as plain dicts and validated in one call each: per-object
# construction cost about twice as much in a plan where every one of 100,000 SKUs orders.
_LINES = TypeAdapter(list[OrderLine])
_SKIPPED = TypeAdapter(list[SkippedLine])


@contextmanager
def _collector_paused():
    # Building 100,000 lines allocates millions of small objects, none cyclic. The cyclic
    # collector would rescan the growing heap again and again while they are built (half the
    # time), and once back on it would scan them all in one young collection (0.7 s). So it is
    # paused, and the new objects then go straight to the oldest generation (freeze + unfreeze:
    # two list splices), where the next full collection sees them like any long-lived object.
    # Not when something else froze objects (a pre-fork server): unfreezing would undo it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _candidate_rows(items: pd.DataFrame, settings: pd.DataFrame, offers: pd.DataFrame,
                    errors: ErrorPool | None) -> pd.DataFrame:
    """One row per (item, valid offer in the org's currency), with its level and quantity."""
    usable = offers[offers["valid"] & offers["currency_ok"]]
    base = pd.concat([items[list(_ITEM_FIELDS)], settings], axis=1)
    rows = base[base["valid"]].merge(usable.drop(columns=["valid"]), on="sku", how="inner")
    rows["lead_defaulted"] = rows["lead_time_days"].isna()
    rows["lead"] = rows["lead_time_days"].fillna(rows["default_lead_days"])
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(rows["demand_rate"] > 0,
                         np.maximum(rows["position"], 0) / rows["demand_rate"], np.inf)
    rows["days_of_cover"] = cover
    rows["in_time"] = rows["lead"] <= cover
    # An order already open for the SKU counts in its position, so a slower, cheaper offer may
    # now look in time; switching to it would stack a second, bigger order on the first (its
    # longer lead time asks for more stock). Such an SKU stays with that order's supplier
    # while its offer is in time.
    rows["kept"] = rows["in_time"] & (rows["supplier"] == rows["open_supplier"])
    rows["short_before_arrival"] = normal_loss(rows["position"],
                                               rows["demand_rate"] * rows["lead"],
                                               rows["demand_sd"] * np.sqrt(rows["lead"]))
    return _sized(rows, errors)


def _sized(rows: pd.DataFrame, errors: ErrorPool | None) -> pd.DataFrame:
    """Candidate rows with the level, quantity and usability their items' settings give."""
    minimums = order_minimums(rows)
    rows = _with_levels(rows, rows["lead"].to_numpy(), np.maximum(*minimums), errors)
    rows = order_quantities(rows, minimums)
    rows["under_bid"] = rows["unit_price"] <= rows["max_bid"]
    rows["usable"] = rows["under_bid"] & rows["feasible"]
    return rows


def _with_levels(frame: pd.DataFrame, lead_days: np.ndarray,
                 least_order: np.ndarray | None = None,
                 errors: ErrorPool | None = None) -> pd.DataFrame:
    per_item = _per_item_cycle(frame)
    asked, cycles = _exposure(frame, lead_days, least_order, per_item)
    levels = stock_levels(frame["demand_rate"], frame["demand_sd"], lead_days,
                          frame["review_days"], service_level=asked,
                          fill_rate=frame["fill_rate"], buffer_units=frame["buffer_units"],
                          cover_periods=frame["cover_days"],
                          lead_time_sd=frame["lead_time_sd_days"],
                          safety_factor=frame.get("safety_factor", np.nan))
    if errors is not None:
        # The recorded windows ran over fixed lead times: an offer with a lead-time spread
        # keeps the normal level, which counts it.
        fixed_lead = np.nan_to_num(frame["lead_time_sd_days"].to_numpy(dtype=float)) == 0
        levels = _error_quantile_rows(levels, per_item & fixed_lead, asked, errors)
    frame = with_columns(frame, mean=levels.mean, sd=levels.sd, safety_stock=levels.safety_stock,
                         order_up_to=levels.order_up_to, method=levels.method,
                         exposed_level=asked, cycles_per_order=cycles)
    frame["need"] = frame["order_up_to"] - frame["position"]
    frame["shortfall_risk"] = _stockout_probability(frame, errors)
    frame["expected_short"] = _expected_short(frame, frame["position"], errors)
    return frame


def _exposure(frame: pd.DataFrame, lead_days: np.ndarray, least_order: np.ndarray | None,
              per_item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The level each row asks of the formula and the review cycles one order of its offer
    lasts (``least_order``: the least an order from each row's offer can be, its MOQ or a lowest
    price break that acts as one; None for rows without an offer; ``per_item``: the rows of a
    per-item cycle target, :func:`_per_item_cycle`).

    A per-item cycle target is asked as the replay asks it (:mod:`restock.policy.exposure`):
    an offer whose MOQ or packs make an order outlast a review cycle needs less of each
    protection interval. Fill rates, pooled targets (their factors count the order's excess
    themselves, :func:`restock.policy.levels.pooled_cycle_z`) and fixed buffers keep their
    level; so does a row without an offer.
    """
    level = frame["service_level"].to_numpy(dtype=float)
    cycles = np.ones(len(frame))
    if least_order is None:
        return level, cycles
    rate, review = (frame[c].to_numpy(dtype=float) for c in ("demand_rate", "review_days"))
    pack, moq = frame["pack_size"].to_numpy(dtype=float), least_order
    cycle_demand = rate * review
    cycles = cycles_per_order(cycle_demand, pack, moq)
    # The replay's sd: demand over lead time + review, lead-time spread included (stock_levels).
    _, sd = protection_demand(rate, frame["demand_sd"].to_numpy(dtype=float), lead_days, review,
                              frame["lead_time_sd_days"].to_numpy(dtype=float))
    # Rows whose order does not outlast a cycle ask the level itself, exactly.
    outlast = per_item & (excess_width(cycle_demand, sd, pack, moq) > NARROW_EXCESS)
    asked = level.copy()
    asked[outlast] = exposed_level(level[outlast], cycle_demand[outlast], sd[outlast],
                                   pack[outlast], moq[outlast])
    return asked, cycles


def _per_item_cycle(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose item meets its own cycle service level (not a fill rate, a pool or a fixed
    buffer)."""
    per_item = ~frame["fill_rate"].to_numpy(dtype=bool) & frame["pool"].isna().to_numpy()
    for fixed in ("buffer_units", "cover_days", "safety_factor"):
        if fixed in frame:
            per_item &= np.isnan(frame[fixed].to_numpy(dtype=float))
    return per_item


def _usable_errors(errors: np.ndarray | None) -> ErrorPool | None:
    pool = None if errors is None else ErrorPool(errors)   # sorted once for every levels call
    return pool if pool else None


def _error_quantile_rows(levels: Levels, rows: np.ndarray, asked: np.ndarray,
                        errors: ErrorPool) -> Levels:
    """``levels`` with the ``rows`` (a per-item cycle target each) read off the org's past
    errors: order up to ``mean + k sqrt(mean)``, ``k`` the ``asked`` quantile of ``errors``
    (:func:`restock.policy.empirical.pooled_error_levels`), method ``error_quantile``."""
    rows = rows & (levels.mean > 0)
    if not rows.any():
        return levels
    mean = levels.mean[rows]
    up_to = np.maximum(errors.levels(mean, np.sqrt(mean), asked[rows]), 0.0)
    order_up_to, safety = levels.order_up_to.copy(), levels.safety_stock.copy()
    method = levels.method.copy()
    order_up_to[rows], safety[rows], method[rows] = up_to, up_to - mean, "error_quantile"
    return replace(levels, order_up_to=order_up_to, safety_stock=safety, method=method)


def _stockout_probability(frame: pd.DataFrame, errors: ErrorPool | None) -> np.ndarray:
    """P(demand over lead time + review > position): the risk if nothing is ordered now."""
    from scipy.stats import norm

    mean, sd, position = (frame[c].to_numpy(dtype=float) for c in ("mean", "sd", "position"))
    with np.errstate(divide="ignore", invalid="ignore"):
        risk = norm.sf((position - mean) / sd)
    risk = np.where(sd > 0, risk, (mean > position).astype(float))
    rows, k, _ = _read_off_pool(frame, position, errors)
    if rows.any():
        risk[rows] = errors.exceeds(k)
    return risk


def _expected_short(frame: pd.DataFrame, position, errors: ErrorPool | None) -> np.ndarray:
    """Units short expected over lead time + review with ``position`` in stock: off the normal
    of the row's spread, or off the pooled errors for a level read from them."""
    position = np.asarray(position, dtype=float)
    short = np.asarray(normal_loss(position, frame["mean"], frame["sd"]), dtype=float).copy()
    rows, k, scale = _read_off_pool(frame, position, errors)
    if rows.any():
        short[rows] = scale * errors.loss(k)
    return short


def _read_off_pool(frame: pd.DataFrame, position: np.ndarray, errors: ErrorPool | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows whose level was read off the pooled errors, and their ``position`` in pooled
    error units (``k``) with the scale of those units (the square root of the mean)."""
    rows = (frame["method"].to_numpy() == "error_quantile") if errors is not None else \
        np.zeros(len(frame), dtype=bool)
    scale = np.sqrt(frame["mean"].to_numpy(dtype=float)[rows])
    return rows, (position[rows] - frame["mean"].to_numpy(dtype=float)[rows]) / scale, scale


def _choose(rows: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """Per SKU, among ``mask`` rows: the cheapest offer arriving in time (the supplier of an
    order already open for the SKU first, when its offer is in time), else the fastest."""
    pool = rows[mask]
    if pool.empty:
        return with_columns(pool, any_in_time=pd.Series(dtype=bool), offers_considered=0)
    any_in = pool.groupby("sku")["in_time"].transform("any").to_numpy()
    late = ~pool["in_time"].to_numpy()
    price, lead = pool["unit_price"].to_numpy(), pool["lead"].to_numpy()
    # Text keys as their rank among the distinct values: sorting integers, not strings.
    order = np.lexsort((_ranks(pool["supplier"]), pool["quantity"].to_numpy(),
                        np.where(any_in, lead, price), np.where(any_in, price, lead),
                        ~pool["kept"].to_numpy(), np.where(any_in, late, False),
                        _ranks(pool["sku"])))
    ranked = pool.iloc[order]
    first = ~ranked["sku"].duplicated().to_numpy()
    counts = pool.groupby("sku")["supplier"].size()
    chosen = with_columns(ranked[first], any_in_time=any_in[order][first])
    chosen["offers_considered"] = chosen["sku"].map(counts).to_numpy()
    return chosen


def _ranks(values: pd.Series) -> np.ndarray:
    """Each value's rank among the distinct values (their sorted order)."""
    return pd.factorize(values, sort=True)[0]


def _unusable_needs(items, settings, offers, rows, chosen, errors) -> list[dict]:
    """Needs no usable offer can fill: max bid, max quantity below the MOQ, no offer at all."""
    skipped = [_invalid_item(row) for row in items[~items["valid"]].to_dict("records")]
    missing = rows[~_member(rows["sku"], chosen["sku"])]
    fallback = _choose(missing, np.ones(len(missing), dtype=bool))
    fallback = fallback[fallback["need"] > 0].merge(_offer_summary(missing), on="sku")
    skipped += _skipped_lines(fallback, [[explain.unusable(row)] for row in records(fallback)])
    bare = items["valid"] & ~_member(items["sku"], rows["sku"])
    if bare.any():
        frame = pd.concat([items[list(_ITEM_FIELDS)], settings], axis=1)[bare]
        frame = _with_levels(frame, frame["default_lead_days"].to_numpy(), errors=errors)
        needs = frame[frame["need"] > 0]
        found = offers[_member(offers["sku"], needs["sku"])]
        valid = found[found["valid"]]
        counts = found.groupby("sku").size().to_dict()
        currencies = valid.groupby("sku")["currency"].agg(lambda c: sorted(set(c))).to_dict()
        why = [[explain.no_offer({"offers": counts.get(sku, 0), "currencies": currencies.get(sku)})]
               for sku in needs["sku"].tolist()]
        skipped += _skipped_lines(with_columns(needs, lead=needs["default_lead_days"]), why)
    return skipped


def _offer_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per SKU: whether any offer is under the max bid, the cheapest price, the smallest order."""
    smallest = rows[["moq_effective", "pack_size"]].max(axis=1).where(rows["under_bid"])
    return pd.DataFrame({"sku": rows["sku"], "any_under_bid": rows["under_bid"],
                         "cheapest_price": rows["unit_price"], "smallest_order": smallest}
                        ).groupby("sku", as_index=False).agg(
        any_under_bid=("any_under_bid", "any"), cheapest_price=("cheapest_price", "min"),
        smallest_order=("smallest_order", "min"))


def _member(values: pd.Series, pool: pd.Series) -> np.ndarray:
    # A hash set beats pandas' isin on Arrow-backed strings by an order of magnitude here.
    known = set(pool.tolist())
    return np.fromiter((v in known for v in values.tolist()), dtype=bool, count=len(values))


def _invalid_item(row: dict) -> dict:
    return {"sku": row["sku"], "wanted_quantity": 0.0, "reasons": [explain.invalid_item(row)]}


def _skipped_lines(frame: pd.DataFrame, why: list[list[dict]]) -> list[dict]:
    """:class:`SkippedLine` fields per row of ``frame``: its basis, then its ``why``."""
    c = explain.Columns(frame)
    return [{"sku": sku, "supplier": supplier, "wanted_quantity": float(max(wanted or need, 0.0)),
             "reasons": [*basis, *reasons], "shortfall_risk": float(risk)}
            for sku, supplier, wanted, need, risk, basis, reasons in zip(
                c["sku"], c.get("supplier"), c.get("quantity"), c["need"], c["shortfall_risk"],
                explain.basis(c), why, strict=True)]


def _order_lines(frame: pd.DataFrame, as_of: date | None) -> list[dict]:
    """:class:`OrderLine` fields per row of ``frame`` (validated together by the plan)."""
    c = explain.Columns(frame)
    fields = {
        "sku": c["sku"], "supplier": c["supplier"], "quantity": c.floats("quantity"),
        "unit_price": c.floats("unit_price"), "pack_size": c.floats("pack_size"),
        "lead_time_days": c.floats("lead"),
        "supplier_sku": [None if v is None or pd.isna(v) else str(v)
                         for v in c.get("supplier_sku")],
        "description": [str(v or "") for v in c.get("description")],
        "reasons": [b + q for b, q in zip(explain.basis(c), explain.quantity(c, as_of),
                                          strict=True)],
        "forecast_lead_review": c.floats("mean"), "safety_stock": c.floats("safety_stock"),
        "inventory_position": c.floats("position"), "order_up_to": c.floats("order_up_to"),
        "on_hand": c.floats("on_hand"), "on_order": c.floats("on_order"),
        "review_period_days": c.floats("review_days"),
        # a fixed buffer (units, days of cover) has no service level
        "service_level": [None if method in ("units", "days_of_cover") else float(level)
                          for method, level in zip(c["method"], c["service_level"], strict=True)],
        "moq": c.floats("moq_effective")}
    names = list(fields)
    return [dict(zip(names, values, strict=True))
            for values in zip(*fields.values(), strict=True)]
