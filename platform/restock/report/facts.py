"""The numbers and sentences every renderer shows, computed once from a RunSummary.

Markdown, Slack, email and HTML all read a :class:`Headline` and :func:`explain_line`, so the same
run says the same thing everywhere, and one cross-check test covers every format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from restock.domain import (
    OrderLine,
    PurchaseOrder,
    RunSummary,
    ServiceDelivered,
    SkippedLine,
    StockoutRisk,
)

# Reasons explain_line already says with its own numbers (forecast, safety stock, stock, packs),
# or that do not explain the quantity (which offer won: the order's supplier and price say it).
# Everything else (MOQ, price break, cap, late arrival, budget cut...) is added in words.
_NUMBER_CODES = frozenset({"forecast", "safety_stock", "position", "inventory_position",
                           "order_up_to", "rounded_to_pack", "offer"})


def fmt_qty(value: float | None) -> str:
    """Units as people write them: 1,240 or 12.5 (never 1240.0000001)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value - round(value)) < 1e-6:
        return f"{round(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def count(n: int, word: str) -> str:
    """``1 line``, ``3 lines``, ``1 held order``."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def fmt_money(value: float | None, currency: str = "") -> str:
    """An amount with two decimals and the currency code: ``EUR 1,234.50``."""
    if value is None:
        return "–"
    return f"{currency} {value:,.2f}".strip()


def fmt_pct(value: float | None) -> str:
    """0.95 → 95%, 0.975 → 97.5%."""
    if value is None:
        return "–"
    return f"{value * 100:.4g}%"


@dataclass(frozen=True)
class Headline:
    """What a planner needs first: what was ordered, what waits for them, what is at risk."""

    currency: str
    ordered_orders: list[PurchaseOrder]
    held_orders: list[PurchaseOrder]
    skipped: list[SkippedLine]
    stockouts: list[StockoutRisk]
    lines_ordered: int
    lines_held: int
    spend: float
    held_value: float
    budget: float | None
    quarantined: int
    risk_messages: list[str] = field(default_factory=list)

    @property
    def budget_used(self) -> float | None:
        return self.spend / self.budget if self.budget else None

    @property
    def at_risk(self) -> int:
        """Items at risk: projected stockouts plus skipped lines that leave a shortfall risk."""
        risky = {s.sku for s in self.stockouts}
        risky |= {s.sku for s in self.skipped if (s.shortfall_risk or 0) > 0}
        return len(risky)


def headline(summary: RunSummary) -> Headline:
    """The headline numbers. An order listed in both ``orders`` and ``held`` counts as held."""
    held_ids = {order.order_id for order in summary.held}
    ordered = [o for o in summary.orders if o.order_id not in held_ids]
    return Headline(
        currency=summary.currency or _first_currency(summary),
        ordered_orders=ordered, held_orders=list(summary.held),
        skipped=sorted(summary.skipped, key=lambda s: -(s.shortfall_risk or 0)),
        stockouts=sorted(summary.stockouts, key=lambda s: -(s.probability or 0)),
        lines_ordered=sum(len(o.lines) for o in ordered),
        lines_held=sum(len(o.lines) for o in summary.held),
        spend=summary.spend, held_value=sum(o.total for o in summary.held),
        budget=summary.budget, quarantined=len(summary.quarantined),
        risk_messages=[r.message for r in summary.risks])


def _first_currency(summary: RunSummary) -> str:
    for order in (*summary.orders, *summary.held):
        return order.currency
    return ""


def explain_line(line: OrderLine, *, short: bool = False, horizon: bool = True) -> str:
    """One line's quantity in plain words, from its plan numbers and reasons.

    ``ordered 240 = 2 packs of 120: forecast 180 by TSB over 21 days lead time + 7 days review,
    safety stock 95 for 95% service, on hand 30, on order 0`` (the model where the forecast
    reason names one). ``short`` leaves out the leading
    "ordered N" (for tables whose quantity column says it already); ``horizon=False`` leaves out
    the days and the service level (for tables that say them once, see :func:`common_horizon`).
    """
    forecast = _forecast_words(line) if horizon else \
        f"forecast {fmt_qty(round(line.forecast_lead_review))}{_model_words(line)}"
    safety = _safety_words(line) if horizon else \
        f"safety stock {fmt_qty(round(line.safety_stock))}"
    learnt = _reason_number(line, "forecast", "spread_windows")
    if learnt:   # the spread came from how this SKU's own past forecasts missed
        safety += f" (spread learnt from {count(int(learnt), 'past window')})"
    parts = [forecast, safety, f"on hand {fmt_qty(line.on_hand)}",
             f"on order {fmt_qty(line.on_order)}"]
    expected = line.on_hand + line.on_order
    if abs(line.inventory_position - expected) > 1e-6:
        parts.append(f"inventory position {fmt_qty(line.inventory_position)}")
    text = ", ".join(parts)
    extras = [r.message for r in line.reasons if r.code not in _NUMBER_CODES and r.message]
    if extras:
        text += "; " + "; ".join(extras)
    packs = _pack_words(line)
    if short:
        return f"{packs}: {text}" if packs else text
    head = f"ordered {fmt_qty(line.quantity)}" + (f" = {packs}" if packs else "")
    return f"{head}: {text}"


def common_horizon(lines: list[OrderLine]) -> str | None:
    """The words every line shares ("forecasts over 21 days lead time + 7 days review, safety
    stock for 95% service"), or None when the lines differ in lead time, review or service."""
    if len(lines) < 2:
        return None
    keys = {(ln.lead_time_days, _review(ln), _service(ln)) for ln in lines}
    if len(keys) != 1:
        return None
    lead, review, service = keys.pop()
    text = f"forecasts over {fmt_qty(lead)} days lead time" + \
        (f" + {fmt_qty(review)} days review" if review else "")
    return text + (f", safety stock for {fmt_pct(service)} service" if service else "")


def _review(line: OrderLine) -> float | None:
    if line.review_period_days is not None:
        return line.review_period_days
    return _reason_number(line, "forecast", "review_period_days")


def _service(line: OrderLine) -> float | None:
    if line.service_level is not None:
        return line.service_level
    return _reason_number(line, "safety_stock", "service_level")


def _pack_words(line: OrderLine) -> str:
    if line.pack_size <= 1 or line.quantity <= 0:
        return ""
    packs = line.quantity / line.pack_size
    if abs(packs - round(packs)) > 1e-6:
        return ""
    count = round(packs)
    return f"{count} pack{'s' if count != 1 else ''} of {fmt_qty(line.pack_size)}"


def _forecast_words(line: OrderLine) -> str:
    review = _review(line)
    text = f"forecast {fmt_qty(round(line.forecast_lead_review))}{_model_words(line)} over " \
           f"{fmt_qty(line.lead_time_days)} days lead time"
    return text + (f" + {fmt_qty(review)} days review" if review else "")


def _model_words(line: OrderLine) -> str:
    """" by TSB" (and why it was kept) where the forecast reason names its model."""
    from restock.policy.explain import model_words

    for reason in line.reasons:
        if reason.code == "forecast":
            return model_words(reason.data.get("model"), reason.data.get("chosen_by"))
    return ""


def _safety_words(line: OrderLine) -> str:
    level = _service(line)
    text = f"safety stock {fmt_qty(round(line.safety_stock))}"
    return text + (f" for {fmt_pct(level)} service" if level else "")


def _reason_number(line: OrderLine, code: str, key: str) -> float | None:
    for reason in line.reasons:
        if reason.code == code and isinstance(reason.data.get(key), (int, float)):
            return float(reason.data[key])
    return None


def explain_skipped(skipped: SkippedLine) -> str:
    """Why a needed line was not ordered, and the risk that leaves."""
    why = "; ".join(r.message for r in skipped.reasons if r.code not in _NUMBER_CODES) or \
        "; ".join(r.message for r in skipped.reasons)
    text = f"wanted {fmt_qty(skipped.wanted_quantity)}" + (f": {why}" if why else "")
    if skipped.shortfall_risk is not None:
        text += f" (stockout risk {fmt_pct(skipped.shortfall_risk)})"
    return text


def explain_stockout(risk: StockoutRisk) -> str:
    """When an item runs out and why the next delivery is too late."""
    parts = []
    if risk.stockout_date:
        parts.append(f"runs out around {risk.stockout_date.isoformat()}")
    if risk.next_delivery:
        parts.append(f"next delivery {risk.next_delivery.isoformat()}")
    if risk.probability is not None:
        parts.append(f"probability {fmt_pct(risk.probability)}")
    if risk.shortfall_units is not None:
        parts.append(f"about {fmt_qty(risk.shortfall_units)} units short")
    if risk.reason:
        parts.append(risk.reason)
    return ", ".join(parts) or "projected to run out before the next delivery"


def held_reason_text(order: PurchaseOrder) -> str:
    """Why an order waits for a person."""
    return "; ".join(r.message for r in order.held_reasons) or "waits for approval"


def accuracy_text(summary: RunSummary) -> str | None:
    """The latest accuracy in one phrase, or None when the run did not measure it."""
    if summary.accuracy:
        point = summary.accuracy[-1]
        return _accuracy_words(point.mase, point.bias)
    acc = summary.forecast_accuracy
    if "mase" in acc or "bias" in acc:
        return _accuracy_words(acc.get("mase"), acc.get("bias"))
    return None


def _accuracy_words(mase: float | None, bias: float | None) -> str:
    words = []
    if mase is not None:
        words.append(f"MASE {mase:.2f}")
    if bias is not None:
        words.append(f"bias {bias * 100:+.1f}%")
    return ", ".join(words) or "not measured"


_MEASURES = {"cycle": "cycle service", "fill_rate": "fill rate"}

SERVICE_NOTE = ("cycle service counts item-cycles without a stockout, fill rate the units asked "
                "that were met; the shift is what this run added to the target's safety factor (z)")


def service_text(service: ServiceDelivered) -> str:
    """A service group's delivered service and the shift it asked of this run's plan:
    ``cycle service, target 95%: 91.2% delivered over 412 item-cycles in 12 closed cycles of
    the last year → safety factor +0.31``."""
    head = f"{_MEASURES.get(service.measure, service.measure)}, target {fmt_pct(service.target)}"
    if service.cycles == 0:
        return f"{head}: no closed cycle yet"
    shift = _shift_words(service.shift)
    if not service.applied:
        return f"{head}: {_measured_words(service)}; not applied (service_feedback is off): "\
               f"{shift.replace('safety factor', 'the safety factor would be', 1)}"
    return f"{head}: {_measured_words(service)} → {shift}"


def _measured_words(service: ServiceDelivered) -> str:
    cycles = f"{count(service.cycles, 'closed cycle')} of the last year"
    if service.item_cycles == 0:
        return f"no item-cycle counted in {cycles}"
    basis = f"{count(service.item_cycles, 'item-cycle')} in {cycles}"
    if service.delivered is None:   # a fill rate whose items were asked for nothing
        return f"no unit asked over {basis}"
    return f"{fmt_pct(service.delivered)} delivered over {basis}"


def _shift_words(shift: float) -> str:
    if shift == 0:
        return "safety factor unchanged"
    return f"safety factor {shift:+.2f}" if abs(shift) >= 0.005 else f"safety factor {shift:+.1g}"


@dataclass(frozen=True)
class Change:
    """One headline number now and in the previous run."""

    label: str
    now: float
    before: float
    money: bool = False

    @property
    def delta(self) -> float:
        return self.now - self.before


def compare(summary: RunSummary, previous: RunSummary | None) -> list[Change]:
    """Headline numbers of this run beside the previous run's (empty without one)."""
    if previous is None:
        return []
    now, before = headline(summary), headline(previous)
    return [
        Change("lines ordered", now.lines_ordered, before.lines_ordered),
        Change("spend", now.spend, before.spend, money=True),
        Change("lines held", now.lines_held, before.lines_held),
        Change("items at risk", now.at_risk, before.at_risk),
        Change("records quarantined", now.quarantined, before.quarantined),
    ]


def sku_changes(summary: RunSummary, previous: RunSummary | None) -> tuple[list[str], list[str]]:
    """SKUs ordered now but not before, and ordered before but not now."""
    if previous is None:
        return [], []
    def skus(s: RunSummary) -> set[str]:
        return {line.sku for order in (*s.orders, *s.held) for line in order.lines}
    now, before = skus(summary), skus(previous)
    return sorted(now - before), sorted(before - now)
