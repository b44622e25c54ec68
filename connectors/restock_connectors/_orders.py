"""How restock's connectors spell a purchase order for other systems (JSON payload, pack maths)."""

from __future__ import annotations

import math
from typing import Any

from restock.domain import OrderLine, PurchaseOrder

PAYLOAD_SCHEMA_VERSION = 1


def packs(line: OrderLine) -> int:
    """Whole supplier packs that cover the line's units (never fewer units than planned)."""
    size = line.pack_size if line.pack_size and line.pack_size > 0 else 1.0
    return max(1, math.ceil(round(line.quantity / size, 9)))


def order_payload(order: PurchaseOrder, idempotency_key: str) -> dict[str, Any]:
    """The JSON document a webhook receives for one order (docs/order-webhook.schema.json)."""
    return {
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "idempotency_key": idempotency_key,
        "order_id": order.order_id,
        "org": order.org,
        "supplier": order.supplier,
        "currency": order.currency,
        "total": round(order.total, 6),
        "created_at": order.created_at.isoformat() if order.created_at else None,
        "lines": [_line(line) for line in order.lines],
    }


def _line(line: OrderLine) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "supplier_sku": line.supplier_sku,
        "description": line.description,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "pack_size": line.pack_size,
        "packs": packs(line),
        "line_total": round(line.value, 6),
        "lead_time_days": line.lead_time_days,
        "reasons": [{"code": r.code, "message": r.message} for r in line.reasons],
    }
