"""Seeded, realistic RunSummaries (and the history/forecast frames behind them) for report tests
and the report benchmark. Quantities follow the order-up-to arithmetic, so they can be
cross-checked."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from restock.domain import (
    AccuracyPoint,
    Mode,
    ModelChange,
    OrderLine,
    PurchaseOrder,
    QuarantinedRecord,
    Reason,
    RunStatus,
    RunSummary,
    SkippedLine,
    StockoutRisk,
)

AS_OF = date(2026, 11, 23)


def make_line(rng: np.random.Generator, sku: str, supplier: str, lead: float) -> OrderLine:
    """One line whose quantity is the order-up-to gap rounded up to packs (and the MOQ)."""
    review = 7.0
    rate = float(rng.gamma(2.0, 4.0))
    forecast = rate * (lead + review)
    safety = float(1.645 * rate * 0.6 * math.sqrt(lead + review))
    on_hand, on_order = float(rng.integers(0, 40)), float(rng.choice([0, 0, 24]))
    position = on_hand + on_order
    pack = float(rng.choice([1, 6, 12, 24, 120]))
    moq = float(rng.choice([0, 0, 48]))
    gap = max(forecast + safety - position, 1.0)
    quantity = max(math.ceil(gap / pack) * pack, moq)
    reasons = [Reason(code="forecast", message=f"forecast {forecast:.0f}",
                      data={"units": forecast, "review_period_days": review}),
               Reason(code="safety_stock", message=f"safety stock {safety:.0f}",
                      data={"units": safety, "service_level": 0.95}),
               Reason(code="position", message=f"inventory position {position:.0f}")]
    if moq and quantity == moq and math.ceil(gap / pack) * pack < moq:
        reasons.append(Reason(code="moq", message=f"raised to the minimum order of {moq:g}"))
    return OrderLine(sku=sku, supplier=supplier, quantity=quantity,
                     unit_price=round(float(rng.uniform(0.5, 80)), 2), pack_size=pack,
                     lead_time_days=lead, description=f"Item {sku}", reasons=reasons,
                     forecast_lead_review=forecast, safety_stock=safety,
                     inventory_position=position, order_up_to=forecast + safety,
                     on_hand=on_hand, on_order=on_order)


def make_summary(lines: int = 40, *, seed: int = 7, org: str = "acme", held_orders: int = 1,
                 suppliers: int = 4, run_id: str = "run-0001") -> RunSummary:
    """A run with ``lines`` order lines over ``suppliers`` orders, some held, some risks."""
    rng = np.random.default_rng(seed)
    orders: list[PurchaseOrder] = []
    for s in range(suppliers):
        supplier = f"supplier-{s + 1}"
        lead = float(rng.choice([7, 14, 21]))
        # The first supplier quotes two lead times (its lines explain their own days), the
        # others one (their tables say the days once).
        chunk = [make_line(rng, f"SKU-{i:05d}", supplier, lead + 7 * (s == 0 and i % 2))
                 for i in range(s, lines, suppliers)]
        status = "held" if s < held_orders else "submitted"
        held = [Reason(code="over_value", message="order value above the approval threshold")] \
            if status == "held" else []
        orders.append(PurchaseOrder(order_id=f"{run_id}-{supplier}", org=org, supplier=supplier,
                                    currency="EUR", idempotency_key=f"restock-{org}-{s:024d}",
                                    lines=chunk, status=status, held_reasons=held))
    held = [o for o in orders if o.status == "held"]
    placed = [o for o in orders if o.status != "held"]
    spend = round(sum(o.total for o in placed), 2)
    return RunSummary(
        org=org, run_id=run_id, status=RunStatus.OK, mode=Mode.AUTO,
        started_at=datetime(2026, 11, 23, 6, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 23, 6, 1, tzinfo=UTC), as_of=AS_OF,
        currency="EUR", orders=placed, held=held, spend=spend, budget=round(spend * 1.25, 2),
        skipped=[SkippedLine(sku="SKU-90001", supplier="supplier-9", wanted_quantity=120,
                             reasons=[Reason(code="max_bid",
                                             message="price 12.4 above max bid 10")],
                             shortfall_risk=0.42)],
        stockouts=[StockoutRisk(sku="SKU-90001", description="Gasket 40 mm",
                                stockout_date=AS_OF + timedelta(days=5),
                                next_delivery=AS_OF + timedelta(days=14), probability=0.42,
                                shortfall_units=36, reason="no offer under the max bid")],
        quarantined=[QuarantinedRecord(dataset="history", record="history.csv:118",
                                       reason="negative quantity -5")],
        accuracy=[AccuracyPoint(run_id="run-0000", as_of=AS_OF - timedelta(days=7), mase=0.91,
                                bias=0.04, items=lines),
                  AccuracyPoint(run_id=run_id, as_of=AS_OF, mase=0.87, bias=-0.02,
                                items=lines)],
        model_changes=[ModelChange(sku="SKU-00003", previous="SES", current="SBA",
                                   reason="demand became intermittent")],
        previous_run_id="run-0000")


def make_history(summary: RunSummary, days: int = 240, seed: int = 3) -> pd.DataFrame:
    """Daily consumption behind the summary's lines (rate ≈ forecast / cover)."""
    rng = np.random.default_rng(seed)
    frames = []
    dates = pd.date_range(end=pd.Timestamp(summary.as_of) - pd.Timedelta(days=1), periods=days)
    for order in (*summary.orders, *summary.held):
        for line in order.lines:
            rate = line.forecast_lead_review / (line.lead_time_days + 7)
            frames.append(pd.DataFrame({"sku": line.sku, "location": "main", "date": dates,
                                        "quantity": rng.poisson(rate, days).astype(float)}))
    return pd.concat(frames, ignore_index=True)
