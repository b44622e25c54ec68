"""Reasons: the machine-readable code and the plain sentence behind every planning decision.

Codes are stable strings (docs/policy.md lists them); ``data`` carries the numbers in units, days
and the org's currency so a report can rebuild the sentence or cross-check it.

Each reason is built here as a plain dict (``code``, ``message``, ``data``) and becomes a
:class:`restock.domain.Reason` when ``plan()`` validates all its lines in one pydantic call:
a plan where every one of 100,000 SKUs orders carries about 700,000 reasons, and one call per
reason cost a second more.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from functools import lru_cache

import pandas as pd


def _reason(*, code: str, message: str, data: dict) -> dict:
    return {"code": code, "message": message, "data": data}


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values (several times faster than ``to_dict``)."""
    columns = list(frame.columns)
    return [dict(zip(columns, values, strict=True))
            for values in zip(*(frame[c].tolist() for c in columns), strict=True)]


@lru_cache(maxsize=1 << 16)   # lead times, packs, MOQs and prices repeat across lines
def num(value: float) -> str:
    """A quantity for people: at most two decimals, no trailing zeros, thousands separated."""
    text = f"{float(value):,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def basis(row: dict) -> list[dict]:
    """Forecast, safety stock, position and target: why the SKU needs (or not) stock."""
    lead, review = float(row["lead"]), float(row["review_days"])
    return [
        _reason(code="forecast", message=f"forecast {num(row['mean'])} over {num(lead)} days "
               f"lead time + {num(review)} days review",
               data={"units": row["mean"], "lead_time_days": lead, "review_period_days": review,
                     "demand_rate": row["demand_rate"], "demand_sd": row["sd"]}),
        _safety(row),
        *_fed_back(row),
        _reason(code="inventory_position",
               message=f"inventory position {num(row['position'])} = on hand "
               f"{num(row['on_hand'])} + on order {num(row['on_order'])} - backorders "
               f"{num(row['backorders'])} - allocated {num(row['allocated'])}",
               data={"units": row["position"], "on_hand": row["on_hand"],
                     "on_order": row["on_order"], "backorders": row["backorders"],
                     "allocated": row["allocated"]}),
        _reason(code="order_up_to", message=f"order up to {num(row['order_up_to'])}, "
               f"{num(max(row['need'], 0))} below it",
               data={"units": row["order_up_to"], "need": row["need"]}),
    ]


def _safety(row: dict) -> dict:
    method, units = row["method"], row["safety_stock"]
    data = {"units": units, "method": method}
    if method == "units":
        return _reason(code="safety_stock", message=f"safety stock {num(units)} (fixed buffer)",
                      data=data)
    if method == "days_of_cover":
        return _reason(code="safety_stock", message=f"safety stock {num(units)} = "
                      f"{num(row['cover_days'])} days of cover", data=data)
    measure = "fill rate" if row["fill_rate"] else "service"
    data.update(service_level=row["service_level"],
                measure="fill_rate" if row["fill_rate"] else "cycle", scope="item")
    level = f"{row['service_level'] * 100:.4g}%"
    if _pooled(row):
        return _pooled_safety(row, data, level, measure)
    return _reason(code="safety_stock", message=f"safety stock {num(units)} for {level} "
                  f"{measure}{_exposure(row, data)} ({method.replace('_', ' ')} demand)",
                  data=data)


def _exposure(row: dict, data: dict) -> str:
    """What a per-item cycle target asked of the formula when an order outlasts a review cycle
    (adds it to ``data``), else nothing."""
    asked = row.get("exposed_level")
    if asked is None or math.isnan(asked) or abs(asked - row["service_level"]) < 5e-5:
        return ""
    cycles = float(row["cycles_per_order"])
    data.update(exposed_level=float(asked), cycles_per_order=cycles)
    return (f" ({asked * 100:.4g}% asked of the formula: one order of this offer, MOQ and packs "
            f"included, lasts {cycles:.2g} review cycles)")


def _fed_back(row: dict) -> list[dict]:
    """The level asked of the formula when the service delivered moved it (else nothing)."""
    shift = row.get("service_shift") or 0.0
    if not shift or row["method"] in ("units", "days_of_cover"):
        return []
    asked, level = row["asked_level"], row["service_level"]
    cycles = int(row["feedback_item_cycles"])
    return [_reason(code="service_feedback", message=f"asked {level * 100:.4g}% of the formula "
                   f"for a target of {asked * 100:.4g}%: the service its group "
                   f"({row['service_group']}) delivered over {cycles} item-cycles in the last "
                   f"year moved its safety factor by {shift:+.2f}",
                   data={"asked_level": asked, "corrected_level": level, "shift": shift,
                         "item_cycles": cycles, "cycles": int(row["feedback_cycles"]),
                         "service_group": row["service_group"]})]


def _pooled(row: dict) -> bool:
    factor = row.get("safety_factor")
    return factor is not None and not math.isnan(factor)


def _pooled_safety(row: dict, data: dict, level: str, measure: str) -> dict:
    pool, count = row["pool"], int(row["pool_items"])
    data.update(scope="pooled", pool=pool, pool_items=count, item_level=row["item_level"],
                safety_factor=row["safety_factor"])
    group = "the org's" if pool == "org" else f"category {pool.removeprefix('category:')}'s"
    return _reason(code="safety_stock", message=f"safety stock {num(row['safety_stock'])} for "
                  f"{level} {measure} on average over {group} {count} pooled "
                  f"item{'s' if count != 1 else ''}; this item's share is "
                  f"{row['item_level'] * 100:.4g}% (normal demand)", data=data)


def quantity(row: dict, as_of: date | None) -> list[dict]:
    """How the offer was chosen and how the quantity was shaped by packs, MOQ and caps."""
    reasons = [_offer(row, as_of)]
    pack, packs = row["pack_size"], row["packs"]
    if row["lead_defaulted"]:
        reasons.append(_reason(code="default_lead_time", message=f"offer gives no lead time; "
                              f"used the configured {num(row['lead'])} days",
                              data={"lead_time_days": row["lead"]}))
    if row["moq_adjusted"]:
        reasons.append(_reason(code="moq_rounded_to_pack", message=f"MOQ {num(row['moq'])} is "
                              f"not whole packs of {num(pack)}; taken as "
                              f"{num(row['moq_effective'])}",
                              data={"moq": row["moq"], "pack_size": pack,
                                    "effective_moq": row["moq_effective"]}))
    if row["raised_to_moq"]:
        reasons.append(_reason(code="raised_to_moq", message=f"raised to the MOQ of "
                              f"{num(row['moq_effective'])}",
                              data={"moq": row["moq_effective"]}))
    if row["raised_to_break"]:
        reasons.append(_reason(code="raised_to_price_break", message=f"raised to the supplier's "
                              f"minimum of {num(row['min_qty'])}",
                              data={"min_qty": row["min_qty"]}))
    if row["capped"]:
        reasons.append(_reason(code="capped_max_quantity", message=f"capped at the maximum order "
                              f"quantity {num(row['max_quantity'])}",
                              data={"max_quantity": row["max_quantity"]}))
    reduced = row.get("budget_reduced_from")
    if reduced is not None and not math.isnan(reduced):   # the budget shrank this line
        reasons.append(_reason(code="reduced_by_budget", message=f"reduced from "
                              f"{num(reduced)} to {num(row['quantity'])} to fit the run "
                              f"budget", data={"wanted": reduced, "quantity": row["quantity"]}))
    reasons.append(_reason(code="rounded_to_pack", message=f"ordered {num(row['quantity'])} = "
                          f"{num(packs)} pack{'s' if packs != 1 else ''} of {num(pack)}",
                          data={"quantity": row["quantity"], "packs": packs,
                                "pack_size": pack}))
    if not row["in_time"]:
        reasons.append(_late(row))
    return reasons


def _offer(row: dict, as_of: date | None) -> dict:
    why = "cheapest offer arriving in time" if row["any_in_time"] else \
        "fastest offer (none arrives before stock runs out)"
    if row.get("kept"):
        why = "the supplier of the order already open for this SKU, arriving in time"
    arrives = (as_of + timedelta(days=float(row["lead"]))).isoformat() if as_of else None
    data = {"supplier": row["supplier"], "unit_price": row["unit_price"],
            "lead_time_days": row["lead"], "min_qty": row["min_qty"],
            "offers_considered": int(row["offers_considered"]), "expected_arrival": arrives,
            "kept_open_order_supplier": bool(row.get("kept", False)),
            "value": row["quantity"] * row["unit_price"]}
    return _reason(code="offer", message=f"{row['supplier']} at {num(row['unit_price'])} per "
                  f"unit, {num(row['lead'])} days: {why} "
                  f"({int(row['offers_considered'])} considered)", data=data)


def _late(row: dict) -> dict:
    short = row["short_before_arrival"]
    return _reason(code="arrives_late", message=f"arrives in {num(row['lead'])} days; stock "
                  f"covers about {num(row['days_of_cover'])} days ({num(short)} units short "
                  f"expected before it arrives)",
                  data={"lead_time_days": row["lead"], "days_of_cover": row["days_of_cover"],
                        "expected_short_before_arrival": short})


def budget_cut(row: dict, budget: float | None) -> dict:
    """A line the run's budget could not pay for, and what it would have bought."""
    return _reason(code="budget", message=f"cut by the run budget of {num(budget or 0)}: "
                  f"{num(row['quantity'])} at {num(row['unit_price'])} would cost "
                  f"{num(row['value'])}; {row['shortfall_risk']:.0%} risk of a stockout, "
                  f"{num(row['expected_short'])} units short expected",
                  data={"budget": budget, "value": row["value"],
                        "supplier": row["supplier"], "quantity": row["quantity"],
                        "shortage_avoided_per_currency": row["benefit_per_cost"],
                        "expected_short": row["expected_short"]})


def unusable(row: dict) -> dict:
    """Why no offer of this SKU could be used: max bid, or a max quantity below the MOQ."""
    if not row["any_under_bid"]:
        cheapest = row["cheapest_price"]
        return _reason(code="max_bid", message=f"every offer is above the max bid of "
                      f"{num(row['max_bid'])} (cheapest {num(cheapest)}); "
                      f"{row['shortfall_risk']:.0%} risk of a stockout",
                      data={"max_bid": row["max_bid"], "cheapest_price": cheapest,
                            "expected_short": row["expected_short"]})
    least = row["smallest_order"]
    return _reason(code="moq_above_max_quantity", message=f"the maximum order quantity "
                  f"{num(row['max_quantity'])} is below the smallest order an offer allows "
                  f"({num(least)})", data={"max_quantity": row["max_quantity"],
                                           "smallest_order": least})


def no_offer(row: dict) -> dict:
    """A need with no usable offer at all: none, all set aside as invalid, or another currency
    (``row`` carries the SKU's ``offers`` count and its valid offers' ``currencies``)."""
    if not row["offers"]:
        return _reason(code="no_offer", message="no supplier offer for this SKU", data={})
    if not row["currencies"]:
        return _reason(code="invalid_offer", message="every offer for this SKU was set aside as "
                      "invalid (see the plan's problems)", data={"offers": row["offers"]})
    codes = row["currencies"]
    return _reason(code="currency", message=f"offers only in {', '.join(codes)}, not the org's "
                  f"currency", data={"currencies": codes})


def invalid_item(row: dict) -> dict:
    """An item row with an unusable number (NaN demand, negative on order...)."""
    bad = [c for c in ("on_hand", "allocated", "on_order", "backorders", "demand_rate",
                       "demand_sd") if not math.isfinite(row[c]) or (c != "on_hand" and row[c] < 0)]
    return _reason(code="invalid_item", message=f"item sku={row['sku']} not planned: "
                  f"{', '.join(bad)} must be a finite number"
                  f"{'' if bad == ['on_hand'] else ' >= 0'}", data={"fields": bad})
