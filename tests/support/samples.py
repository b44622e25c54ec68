"""Small, realistic orders and summaries for connector tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from restock.domain import (
    Mode,
    OrderLine,
    PurchaseOrder,
    QuarantinedRecord,
    Reason,
    RunStatus,
    RunSummary,
    SkippedLine,
    idempotency_key,
)


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
                         created_at=datetime(2026, 11, 25, 6, 0, tzinfo=UTC))


def run_summary(org: str = "acme") -> RunSummary:
    order = purchase_order(org)
    held = purchase_order(org, supplier="Bolt Co", slot="held").model_copy(update={
        "status": "held",
        "held_reasons": [Reason(code="over_max_order_value", message="order above 500 USD")]})
    return RunSummary(
        org=org, run_id="run-0001", status=RunStatus.PARTIAL, mode=Mode.AUTO,
        started_at=datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 25, 6, 1, tzinfo=UTC),
        as_of=date(2026, 11, 25), currency="USD", orders=[order], held=[held],
        skipped=[SkippedLine(sku="LABEL-ROLL", supplier="Acme Components", wanted_quantity=10,
                             reasons=[Reason(code="max_bid", message="12.50 USD is above the "
                                             "max bid of 10.00")], shortfall_risk=0.4)],
        quarantined=[QuarantinedRecord(dataset="history", record="history.csv:118",
                                       reason="negative quantity")],
        risks=[Reason(code="stockout_risk", message="LABEL-ROLL may run out in 5 days")],
        spend=order.total, budget=1000.0)


# The smallest valid org file: files source and sink under the org's folder.
MINIMAL_ORG = """\
org: acme
source:
  connector: files
  path: ./warehouse
order_sink:
  connector: files
  path: ./outbox
"""


def run_on_fresh_store(org_file, store_file):
    """One cycle of ``org_file`` on a SQLite store of its own; asserts it ran OK."""
    from restock.config import load_org
    from restock.cycle import run_org
    from restock.domain import RunStatus
    from restock.store import open_store

    store = open_store(f"sqlite:///{store_file}")
    try:
        summary = run_org(load_org(org_file), store=store)
    finally:
        store.close()
    assert summary.status == RunStatus.OK, summary.errors
    return summary
