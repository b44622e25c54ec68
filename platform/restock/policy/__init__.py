"""Replenishment policy: from positions and forecasts to order lines, under real constraints.

The contract the cycle relies on: ``plan(items, offers, policy) -> Plan``.

``items`` has one row per SKU: sku, category, description, on_hand, allocated, on_order,
backorders, demand_rate (expected units per day), demand_sd (sd of daily demand forecast error;
totals over a horizon scale with its square root), and optionally usual_order_qty and
forecast_confidence (0..1). ``offers`` is the Snapshot's offers frame. Every line and every skipped
need carries its reasons.
"""

from __future__ import annotations

from restock.policy.plan import Plan, plan

__all__ = ["Plan", "plan"]
