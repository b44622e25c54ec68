"""Small, realistic orders and summaries for connector tests."""

from __future__ import annotations

from datetime import date, datetime, timezone

from restock.domain import (Mode, OrderLine, PurchaseOrder, QuarantinedRecord, Reason, RunStatus,
                            RunSummary, SkippedLine, idempotency_key)


def purchase_order(org: str = "acme", supplier: str = "Acme Components",
                   slot: str = "2026-11-25") -> PurchaseOrder:
    lines = [
        OrderLine(sku="M3-SCREW", supplier=supplier, quantity=250, unit_price=0.05, pack_size=100,
                  supplier_sku="ACME-M3-8", description="M3x8 pan head screw",
                  lead_time_days=7,
                  reasons=[Reason(code="rounded_to_pack", message="rounded up to 3 packs of 100")]),
        OrderLine(sku="CABLE-TIE", supplier=supplier, quantity=500, unit_price=0.02, pack_size=1,
                  supplier_sku="ACME-CT-150", description="Cable tie 150 mm"),
    ]
    return PurchaseOrder(order_id=f"po-{org}-{slot}", org=org, supplier=supplier, currency="USD",
                         idempotency_key=idempotency_key(org, supplier, slot), lines=lines,
                         created_at=datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc))


def run_summary(org: str = "acme") -> RunSummary:
    order = purchase_order(org)
    held = purchase_order(org, supplier="Bolt Co", slot="held").model_copy(update={
        "status": "held",
        "held_reasons": [Reason(code="over_max_order_value", message="order above 500 USD")]})
    return RunSummary(
        org=org, run_id="run-0001", status=RunStatus.PARTIAL, mode=Mode.AUTO,
        started_at=datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc),
        finished_at=datetime(2026, 11, 25, 6, 1, tzinfo=timezone.utc),
        as_of=date(2026, 11, 25), currency="USD", orders=[order], held=[held],
        skipped=[SkippedLine(sku="LABEL-ROLL", supplier="Acme Components", wanted_quantity=10,
                             reasons=[Reason(code="max_bid", message="12.50 USD is above the "
                                             "max bid of 10.00")], shortfall_risk=0.4)],
        quarantined=[QuarantinedRecord(dataset="history", record="history.csv:118",
                                       reason="negative quantity")],
        risks=[Reason(code="stockout_risk", message="LABEL-ROLL may run out in 5 days")],
        spend=order.total, budget=1000.0)
