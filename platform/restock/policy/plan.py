"""A first, honest order-up-to planner (one SKU at a time)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from scipy.stats import norm

from restock.config import Policy
from restock.domain import OrderLine, Reason, SkippedLine


@dataclass
class Plan:
    lines: list[OrderLine] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)


def plan(items: pd.DataFrame, offers: pd.DataFrame, policy: Policy) -> Plan:
    """Order up to (forecast over lead time + review) + safety stock, rounded to packs and MOQ."""
    result = Plan()
    by_sku = {sku: group for sku, group in offers.groupby("sku")}
    for item in items.itertuples(index=False):
        settings = policy.for_item(item.sku, getattr(item, "category", None))
        group = by_sku.get(item.sku)
        if group is None or group.empty:
            continue
        offer = group.sort_values("unit_price").iloc[0]
        lead = float(offer.get("lead_time_days") or settings.lead_time_days)
        horizon = lead + settings.review_period_days
        mean = item.demand_rate * horizon
        sd = item.demand_sd * math.sqrt(horizon)
        safety = _safety_stock(settings, sd, item.demand_rate)
        position = item.on_hand + item.on_order - item.backorders - item.allocated
        target = mean + safety
        if position >= target:
            continue
        pack = float(offer.get("pack_size") or 1.0)
        quantity = max(math.ceil((target - position) / pack) * pack, float(offer.get("moq") or 0))
        price = float(offer["unit_price"])
        reasons = [
            Reason(code="forecast", message=f"forecast {mean:.0f} over {lead:g} days lead time "
                   f"+ {settings.review_period_days:g} days review", data={"units": mean}),
            Reason(code="safety_stock", message=f"safety stock {safety:.0f}",
                   data={"units": safety}),
            Reason(code="position", message=f"inventory position {position:.0f}",
                   data={"units": position}),
        ]
        max_bid = policy.max_bid.for_item(item.sku, getattr(item, "category", None))
        if max_bid is not None and price > max_bid:
            result.skipped.append(SkippedLine(
                sku=item.sku, supplier=str(offer["supplier"]), wanted_quantity=quantity,
                reasons=[*reasons, Reason(code="max_bid", message=f"price {price:g} above max "
                                          f"bid {max_bid:g}")]))
            continue
        result.lines.append(OrderLine(
            sku=item.sku, supplier=str(offer["supplier"]), quantity=quantity, unit_price=price,
            pack_size=pack, lead_time_days=lead, reasons=reasons, forecast_lead_review=mean,
            safety_stock=safety, inventory_position=position, order_up_to=target,
            on_hand=item.on_hand, on_order=item.on_order,
            description=str(getattr(item, "description", "") or "")))
    return result


def _safety_stock(settings, sd: float, rate: float) -> float:
    buffer = settings.buffer
    if buffer is not None and buffer.units is not None:
        return buffer.units
    if buffer is not None and buffer.days_of_cover is not None:
        return buffer.days_of_cover * rate
    level = buffer.service_level if buffer is not None else settings.service_level
    return max(float(norm.ppf(level)) * sd, 0.0)
