"""Reasons: the machine-readable code and the plain sentence behind every planning decision.

Codes are stable strings (docs/policy.md lists them); ``data`` carries the numbers in units, days
and the org's currency so a report can rebuild the sentence or cross-check it.

Each reason is built here as a plain dict (``code``, ``message``, ``data``) and becomes a
:class:`restock.domain.Reason` when ``plan()`` validates all its lines in one pydantic call:
a plan where every one of 100,000 SKUs orders carries about 700,000 reasons, and one call per
reason cost a second more. The reasons of many lines are built a kind at a time over the
frame's columns (:func:`basis`, :func:`quantity`, from one :class:`Columns` per frame so each
column is read once), each number column formatted once; built a
line at a time from row dicts they took twice as long. The few per-row ones (a budget cut, no
usable offer) take a row dict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd


def _reason(*, code: str, message: str, data: dict) -> dict:
    return {"code": code, "message": message, "data": data}


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values (several times faster than ``to_dict``)."""
    columns = list(frame.columns)
    return [dict(zip(columns, values, strict=True))
            for values in zip(*(frame[c].tolist() for c in columns), strict=True)]


def _number(value: float) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@lru_cache(maxsize=1 << 12)   # lead times, packs, MOQs and prices repeat across lines
def num(value: float) -> str:
    """A quantity for people: at most two decimals, no trailing zeros, thousands separated."""
    return _number(value)


class Columns:
    """A frame's columns as lists of plain Python values, each read once, and as text.

    The reasons of a plan are built column by column: reading a row's values out of a dict per
    line, and formatting numbers through a cache that most of them miss, cost more than the
    sentences themselves (a plan where 100,000 SKUs order builds some 650,000 reasons).
    """

    def __init__(self, frame: pd.DataFrame):
        self._frame, self._lists, self._texts = frame, {}, {}
        self.n = len(frame)

    def __getitem__(self, name: str) -> list:
        if name not in self._lists:
            self._lists[name] = self._frame[name].tolist()
        return self._lists[name]

    def get(self, name: str, default=None) -> list:
        """The column, or ``default`` in every row when the frame has none (read it once per
        kind of reason, not per row)."""
        return self[name] if name in self._frame.columns else [default] * self.n

    def floats(self, name: str) -> list[float]:
        values = self[name]
        return values if self._frame[name].dtype.kind == "f" else [float(v) for v in values]

    def text(self, name: str) -> list[str]:
        """The column as :func:`num` writes it."""
        if name not in self._texts:
            self._texts[name] = texts(self._frame[name].to_numpy())
        return self._texts[name]


def texts(values: np.ndarray) -> list[str]:
    """:func:`num` of every value, each distinct one formatted once (lead times, packs and
    prices repeat across lines; quantities mostly do not, and cost no more)."""
    if values.dtype.kind not in "fiu":
        table = {v: _number(v) for v in set(values.tolist())}
        return [table[v] for v in values.tolist()]
    distinct, where = np.unique(values, return_inverse=True)
    shown = np.array([_number(v) for v in distinct.tolist()], dtype=object)
    return shown[where.reshape(-1)].tolist()


def _joined(*parts: list) -> list[list[dict]]:
    """Per row, the reasons of ``parts`` in order (a part is None where it says nothing)."""
    return [[r for r in row if r is not None] for row in zip(*parts, strict=True)]


def _sparse(flags: list, make: Callable[[int], dict]) -> list[dict | None]:
    """``make(i)`` for the rows whose flag is set, None elsewhere (reasons few lines carry)."""
    out: list[dict | None] = [None] * len(flags)
    for i, flag in enumerate(flags):
        if flag:
            out[i] = make(i)
    return out


def basis(c: Columns) -> list[list[dict]]:
    """Per row: forecast, safety stock, position and target — why the SKU needs (or not) stock."""
    return _joined(_forecasts(c), _safeties(c), _fed_back(c), _positions(c), _targets(c))


def _forecasts(c: Columns) -> list[dict]:
    lead, review = c.floats("lead"), c.floats("review_days")
    out = [{"code": "forecast", "message": f"forecast {m}{by} over {num(ld)} days lead time + "
            f"{num(rv)} days review",
            "data": {"units": mean, "lead_time_days": ld, "review_period_days": rv,
                     "demand_rate": rate, "demand_sd": sd}}
           for m, by, ld, rv, mean, rate, sd in zip(c.text("mean"), _models(c), lead, review,
                                                      c["mean"], c["demand_rate"], c["sd"],
                                                      strict=True)]
    _say_model(out, c)
    _say_learnt_spread(out, c)
    _say_below_past(out, c)
    return out


# Where a model was kept rather than simply best, the forecast reason says so (the catalog's
# codes, forecast.select.CHOSEN_BY): a buyer looking at SES should know it won by default.
MODEL_KEPT = {"steady": "no other model clearly better", "previous": "last run's model"}


def _models(c: Columns) -> list[str]:
    """Per row, " by MODEL" (and why it was kept), or "" where no model is known."""
    return [model_words(model, why)
            for model, why in zip(c.get("model"), c.get("chosen_by"), strict=True)]


def model_words(model, chosen_by) -> str:
    """" by TSB", " by SES (no other model clearly better)", or "" where no model is known."""
    if not _known(model):
        return ""
    return f" by {model} ({MODEL_KEPT[chosen_by]})" if chosen_by in MODEL_KEPT else \
        f" by {model}"


def _say_model(forecasts: list[dict], c: Columns) -> None:
    """The model, why it was chosen and the forecast's quantiles over lead time + review
    (the org's ``forecast.quantiles``) go with the forecast reason's data."""
    for reason, model, why, levels in zip(forecasts, c.get("model"), c.get("chosen_by"),
                                          c.get("demand_quantiles"), strict=True):
        if _known(model):
            reason["data"]["model"] = model
            reason["data"]["chosen_by"] = why if isinstance(why, str) else None
        if isinstance(levels, dict) and levels:
            reason["data"]["quantiles"] = levels


def _known(model) -> bool:
    # "none": the SKU had no forecast row; NaN: a library caller's frame without the column
    return isinstance(model, str) and model not in ("", "none")


# A forecast under this share of the SKU's pace over the last year is set beside that pace: a
# model that expects little after a quiet spell (TSB, a fast SES) is right about some items and
# looks wrong about the others, and a buyer should see which it is betting on.
BELOW_PAST_SHARE = 0.25


def _say_below_past(forecasts: list[dict], c: Columns) -> None:
    """Adds to the forecast reasons far below the SKU's last year the units that year's pace
    gives over the same days, and how long the SKU has not sold."""
    pace, quiet = c.get("past_rate", math.nan), c.get("quiet_days", math.nan)
    for reason, past, idle in zip(forecasts, pace, quiet, strict=True):
        data = reason["data"]
        days = data["lead_time_days"] + data["review_period_days"]
        if not (past > 0 and data["demand_rate"] < BELOW_PAST_SHARE * past):
            continue
        reason["message"] += f" (the last year's pace would give {num(past * days)}"
        if math.isfinite(idle) and idle > 0:
            reason["message"] += f"; nothing sold for {num(idle)} days"
        reason["message"] += ")"
        data["past_units"] = past * days
        data["quiet_days"] = idle if math.isfinite(idle) else None


def _say_learnt_spread(forecasts: list[dict], c: Columns) -> None:
    """Adds to the forecast reasons whose spread came from how the SKU's own past forecasts
    missed (a live run's closed windows, ``spread_windows``) that it did, and from how many."""
    learnt = [math.isfinite(w) and w > 0 for w in c.get("spread_windows", 0)]
    if not any(learnt):
        return
    for reason, windows, sd, was_learnt in zip(forecasts, c["spread_windows"], c.text("sd"),
                                               learnt, strict=True):
        if was_learnt:
            reason["message"] += f", spread {sd} learnt from {int(windows)} closed " \
                f"window{'s' if windows != 1 else ''} of earlier runs"
            reason["data"]["spread_windows"] = int(windows)


def _positions(c: Columns) -> list[dict]:
    return [{"code": "inventory_position", "message": f"inventory position {p} = on hand {h} + "
             f"on order {o} - backorders {b} - allocated {a}",
             "data": {"units": position, "on_hand": on_hand, "on_order": on_order,
                      "backorders": backorders, "allocated": allocated}}
            for p, h, o, b, a, position, on_hand, on_order, backorders, allocated in zip(
                c.text("position"), c.text("on_hand"), c.text("on_order"), c.text("backorders"),
                c.text("allocated"), c["position"], c["on_hand"], c["on_order"],
                c["backorders"], c["allocated"], strict=True)]


def _targets(c: Columns) -> list[dict]:
    below = texts(np.maximum(np.asarray(c["need"], dtype=float), 0.0))
    return [{"code": "order_up_to", "message": f"order up to {s}, {b} below it",
             "data": {"units": level, "need": need}}
            for s, b, level, need in zip(c.text("order_up_to"), below, c["order_up_to"],
                                         c["need"], strict=True)]


def _safeties(c: Columns) -> list[dict]:
    out = []
    cover, factor = c.get("cover_days"), c.get("safety_factor")
    asked, cycles = c.get("exposed_level"), c.get("cycles_per_order")
    for i, (method, units, text, level, fill) in enumerate(zip(
            c["method"], c["safety_stock"], c.text("safety_stock"), c["service_level"],
            c["fill_rate"], strict=True)):
        data = {"units": units, "method": method}
        if method == "units":
            message = f"safety stock {text} (fixed buffer)"
        elif method == "days_of_cover":
            message = f"safety stock {text} = {num(cover[i])} days of cover"
        else:
            measure = "fill rate" if fill else "service"
            data.update(service_level=level, measure="fill_rate" if fill else "cycle",
                        scope="item")
            if factor[i] is not None and not math.isnan(factor[i]):
                message = _pooled_safety(c, i, data, text, level, measure)
            else:
                message = f"safety stock {text} for {level * 100:.4g}% {measure}" \
                    f"{_exposure(asked[i], cycles[i], level, data)} ({_read_from(method)})"
        out.append({"code": "safety_stock", "message": message, "data": data})
    return out


def _read_from(method: str) -> str:
    """Where a service level's safety stock was read from."""
    if method == "error_quantile":
        return "read off the org's past forecast errors over lead time + review"
    return f"{method.replace('_', ' ')} demand"


def _exposure(asked: float | None, cycles: float, level: float, data: dict) -> str:
    """What a per-item cycle target asked of the formula when an order outlasts a review cycle
    (adds it to ``data``), else nothing."""
    if asked is None or math.isnan(asked) or abs(asked - level) < 5e-5:
        return ""
    data.update(exposed_level=float(asked), cycles_per_order=float(cycles))
    return (f" ({asked * 100:.4g}% asked of the formula: one order of this offer, MOQ and packs "
            f"included, lasts {float(cycles):.2g} review cycles)")


def _pooled_safety(c: Columns, i: int, data: dict, units: str, level: float,
                   measure: str) -> str:
    """The sentence of a pooled target's safety stock (its pool added to ``data``)."""
    pool, count, share = c["pool"][i], int(c["pool_items"][i]), c["item_level"][i]
    data.update(scope="pooled", pool=pool, pool_items=count, item_level=share,
                safety_factor=c["safety_factor"][i])
    group = "the org's" if pool == "org" else f"category {pool.removeprefix('category:')}'s"
    return f"safety stock {units} for {level * 100:.4g}% {measure} on average over {group} " \
        f"{count} pooled item{'s' if count != 1 else ''}; this item's share is " \
        f"{share * 100:.4g}% (normal demand)"


def _fed_back(c: Columns) -> list[dict | None]:
    """The level asked of the formula when the service delivered moved it (else nothing)."""
    shifts = [(s or 0.0) and m not in ("units", "days_of_cover")
              for s, m in zip(c.get("service_shift"), c["method"], strict=True)]

    def reason(i: int) -> dict:
        asked, level, shift = c["asked_level"][i], c["service_level"][i], c["service_shift"][i]
        cycles, group = int(c["feedback_item_cycles"][i]), c["service_group"][i]
        return _reason(code="service_feedback", message=f"asked {level * 100:.4g}% of the "
                       f"formula for a target of {asked * 100:.4g}%: the service its group "
                       f"({group}) delivered over {cycles} item-cycles in the last year moved "
                       f"its safety factor by {shift:+.2f}",
                       data={"asked_level": asked, "corrected_level": level, "shift": shift,
                             "item_cycles": cycles, "cycles": int(c["feedback_cycles"][i]),
                             "service_group": group})
    return _sparse(shifts, reason)


def quantity(c: Columns, as_of: date | None) -> list[list[dict]]:
    """Per row: how the offer was chosen and how the quantity was shaped by packs, MOQ, caps."""
    return _joined(_offers(c, as_of), *_shaping(c), _rounded(c), _late(c))


def _shaping(c: Columns) -> list[list[dict | None]]:
    """The reasons only some lines carry: a defaulted lead time, MOQ and price-break raises,
    the maximum quantity, the budget."""
    lead, moq, pack, eff = c.text("lead"), c.text("moq"), c.text("pack_size"), \
        c.text("moq_effective")
    reduced = [r is not None and not math.isnan(r) for r in c.get("budget_reduced_from")]
    return [
        _sparse(c["lead_defaulted"], lambda i: _reason(
            code="default_lead_time", message=f"offer gives no lead time; used the configured "
            f"{lead[i]} days", data={"lead_time_days": c["lead"][i]})),
        _sparse(c["moq_adjusted"], lambda i: _reason(
            code="moq_rounded_to_pack", message=f"MOQ {moq[i]} is not whole packs of {pack[i]}; "
            f"taken as {eff[i]}", data={"moq": c["moq"][i], "pack_size": c["pack_size"][i],
                                       "effective_moq": c["moq_effective"][i]})),
        _sparse(c["raised_to_moq"], lambda i: _reason(
            code="raised_to_moq", message=f"raised to the MOQ of {eff[i]}",
            data={"moq": c["moq_effective"][i]})),
        _sparse(c["raised_to_break"], lambda i: _reason(
            code="raised_to_price_break", message=f"raised to the supplier's minimum of "
            f"{num(c['min_qty'][i])}", data={"min_qty": c["min_qty"][i]})),
        _sparse(c["capped"], lambda i: _reason(
            code="capped_max_quantity", message=f"capped at the maximum order quantity "
            f"{num(c['max_quantity'][i])}", data={"max_quantity": c["max_quantity"][i]})),
        _sparse(reduced, lambda i: _reason(   # the budget shrank this line
            code="reduced_by_budget", message=f"reduced from {num(c['budget_reduced_from'][i])} "
            f"to {num(c['quantity'][i])} to fit the run budget",
            data={"wanted": c["budget_reduced_from"][i], "quantity": c["quantity"][i]})),
    ]


def _rounded(c: Columns) -> list[dict]:
    return [{"code": "rounded_to_pack", "message": f"ordered {q} = {n} pack"
             f"{'s' if packs != 1 else ''} of {p}",
             "data": {"quantity": quantity, "packs": packs, "pack_size": pack}}
            for q, n, p, quantity, packs, pack in zip(
                c.text("quantity"), c.text("packs"), c.text("pack_size"), c["quantity"],
                c["packs"], c["pack_size"], strict=True)]


def _offers(c: Columns, as_of: date | None) -> list[dict]:
    out = []
    kept, in_time, least = c.get("kept", False), c["any_in_time"], c["min_qty"]
    for supplier, price, lead, considered, quantity, price_text, lead_text, kept_open, \
            any_in_time, min_qty in zip(c["supplier"], c["unit_price"], c["lead"],
                                        c["offers_considered"], c["quantity"],
                                        c.text("unit_price"), c.text("lead"), kept, in_time,
                                        least, strict=True):
        why = "cheapest offer arriving in time" if any_in_time else \
            "fastest offer (none arrives before stock runs out)"
        if kept_open:
            why = "the supplier of the order already open for this SKU, arriving in time"
        arrives = (as_of + timedelta(days=float(lead))).isoformat() if as_of else None
        data = {"supplier": supplier, "unit_price": price, "lead_time_days": lead,
                "min_qty": min_qty, "offers_considered": int(considered),
                "expected_arrival": arrives, "kept_open_order_supplier": bool(kept_open),
                "value": quantity * price}
        out.append({"code": "offer", "message": f"{supplier} at {price_text} per unit, "
                    f"{lead_text} days: {why} ({int(considered)} considered)", "data": data})
    return out


def _late(c: Columns) -> list[dict | None]:
    """Why a line's stock runs out before the order arrives (None where it arrives in time)."""
    return [None if in_time else
            {"code": "arrives_late", "message": f"arrives in {lead_text} days; stock covers about "
             f"{cover_text} days ({short_text} units short expected before it arrives)",
             "data": {"lead_time_days": lead, "days_of_cover": cover,
                      "expected_short_before_arrival": short}}
            for in_time, lead_text, cover_text, short_text, lead, cover, short in zip(
                c["in_time"], c.text("lead"), c.text("days_of_cover"),
                c.text("short_before_arrival"), c["lead"], c["days_of_cover"],
                c["short_before_arrival"], strict=True)]


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
