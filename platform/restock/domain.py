"""The data that flows through a run: what connectors pull and what the cycle produces.

Bulk data (catalog, offers, stock positions, consumption history) stays in pandas DataFrames with
the columns named below, so forecasting and planning run vectorised over thousands of SKUs. What a
person reads or a system receives (order lines, purchase orders, the run summary) are pydantic
models that serialise to JSON.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, InstanceOf

# Column contracts of the Snapshot's frames. Required columns first; optional ones get defaults.
CATALOG_COLUMNS = ("sku", "description", "category", "unit")
OFFER_COLUMNS = ("sku", "supplier", "unit_price", "lead_time_days", "moq", "pack_size",
                 "min_qty", "supplier_sku", "currency")
POSITION_COLUMNS = ("sku", "location", "on_hand", "allocated", "on_order", "backorders")
HISTORY_COLUMNS = ("sku", "location", "date", "quantity")
OPEN_ORDER_COLUMNS = ("reference", "sku", "supplier", "quantity", "expected_date")
PROMOTION_COLUMNS = ("sku", "date", "promotion")


@dataclass
class Snapshot:
    """Everything an inventory source knows at one moment.

    - ``catalog``: one row per SKU (sku, description, category, unit).
    - ``offers``: one row per supplier offer or price break (sku, supplier, unit_price,
      lead_time_days, moq, pack_size, min_qty = quantity from which this price applies,
      supplier_sku, currency). Several rows per SKU are normal.
    - ``positions``: one row per sku × location (on_hand, allocated, on_order, backorders).
    - ``history``: tidy consumption (sku, location, date, quantity), one row per period with use;
      its text columns may be categorical (the files source reads them so: millions of rows
      repeat a few thousand SKUs), so group on them with ``observed=True``.
    - ``open_orders``: purchase orders the source knows are open (reference, sku, supplier,
      quantity, expected_date); lets restock match its own submitted orders.
    - ``as_of``: when the snapshot was taken (the planning date).
    - ``source``: a label for messages (e.g. ``files:/data/acme``).
    - ``promotions``: the promotion calendar, past and planned (sku, date, promotion = 1 on
      promotion that day, 0 not; a day not listed is not). Empty: no calendar, and the plan is
      made as without one (docs/forecasting.md, "Promotion calendars").
    """

    catalog: pd.DataFrame
    offers: pd.DataFrame
    positions: pd.DataFrame
    history: pd.DataFrame
    as_of: date
    open_orders: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(OPEN_ORDER_COLUMNS)))
    source: str = ""
    promotions: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(PROMOTION_COLUMNS)))


class Mode(StrEnum):
    AUTO = "auto"          # everything goes, except what guardrails hold
    APPROVAL = "approval"  # everything waits for a person
    DRY_RUN = "dry_run"    # nothing goes


class RunStatus(StrEnum):
    OK = "ok"              # ran to the end
    PARTIAL = "partial"    # ran, but something (a sink, some records) needs attention
    FAILED = "failed"      # stopped; no order left half-sent


class Reason(BaseModel):
    """One machine-readable reason behind a decision, with a sentence for people."""

    model_config = ConfigDict(frozen=True)
    code: str                      # e.g. "forecast", "safety_stock", "rounded_to_pack", "max_bid"
    message: str                   # plain words: "rounded up to 2 packs of 120"
    # Checked to be a dict and kept as given, not copied key by key: a plan where 100,000 SKUs
    # order builds some 650,000 reasons, and the copies were a tenth of its time and memory.
    data: InstanceOf[dict] = Field(default_factory=dict)


class OrderLine(BaseModel):
    """One SKU to order from one supplier, with everything that explains the quantity."""

    sku: str
    supplier: str
    quantity: float
    unit_price: float
    pack_size: float = 1.0
    lead_time_days: float = 0.0
    supplier_sku: str | None = None
    description: str = ""
    reasons: list[Reason] = Field(default_factory=list)
    # The plan's numbers, in units: kept so summaries and reports can explain and cross-check.
    forecast_lead_review: float = 0.0   # expected demand over lead time + review period
    safety_stock: float = 0.0
    inventory_position: float = 0.0
    order_up_to: float = 0.0
    on_hand: float = 0.0
    on_order: float = 0.0
    # Optional context that lets a report say the whole sentence ("+ 7 days review", "for 95%
    # service", "raised to the MOQ of 500"); None when the planner did not record it.
    review_period_days: float | None = None
    service_level: float | None = None
    moq: float | None = None

    @property
    def value(self) -> float:
        return self.quantity * self.unit_price


class SkippedLine(BaseModel):
    """A need restock saw but did not order (max bid, budget, no offer...), and the risk left."""

    sku: str
    supplier: str | None = None
    wanted_quantity: float
    reasons: list[Reason]
    shortfall_risk: float | None = None   # probability of a stockout before the next chance


class QuarantinedRecord(BaseModel):
    """An input record that was set aside and why; it never drives an order."""

    dataset: str          # "history", "positions", "catalog", "offers", "promotions"...
    record: str           # where it was: "history.csv:118" or "sku=A12 date=2024-01-03"
    reason: str


class PurchaseOrder(BaseModel):
    """One order to one supplier. ``idempotency_key`` is fixed before it is ever sent."""

    order_id: str
    org: str
    supplier: str
    currency: str
    idempotency_key: str
    lines: list[OrderLine]
    status: str = "planned"
    held_reasons: list[Reason] = Field(default_factory=list)
    created_at: datetime | None = None

    @property
    def total(self) -> float:
        return sum(line.value for line in self.lines)


def idempotency_key(org: str, supplier: str, slot: str) -> str:
    """The key that makes an order unique per (org, supplier, planning slot), on every re-run."""
    digest = hashlib.sha256(f"{org}\x1f{supplier}\x1f{slot}".encode()).hexdigest()[:24]
    return f"restock-{org}-{digest}"


class StockoutRisk(BaseModel):
    """An item projected to run out before restock's next order for it can arrive."""

    sku: str
    description: str = ""
    stockout_date: date | None = None       # when projected stock reaches zero
    next_delivery: date | None = None       # when the next order (this run's or a later one) lands
    probability: float | None = None        # chance of a stockout before that delivery, 0..1
    shortfall_units: float | None = None    # expected units short
    ordered: bool = False                   # whether this run ordered it (and it still arrives late)
    reason: str = ""                        # plain words: "no offer under the max bid"


class AccuracyPoint(BaseModel):
    """Forecast accuracy measured at one run (MASE < 1 beats the naive forecast; bias in %)."""

    run_id: str
    as_of: date | None = None
    mase: float | None = None
    bias: float | None = None               # mean error / mean demand; + means over-forecast
    items: int | None = None


class ModelChange(BaseModel):
    """An item whose chosen forecasting model changed since the previous run."""

    sku: str
    previous: str | None = None
    current: str
    reason: str = ""


class ServiceDelivered(BaseModel):
    """One service group's delivered service over the last year of closed review cycles, and
    the shift of the safety factor it asked of this run's plan."""

    group: str                              # "org", "category:spares", "item:cycle:0.95"...
    measure: str                            # "cycle" or "fill_rate"
    target: float
    delivered: float | None = None          # None: no item-cycle (or unit) counted yet
    item_cycles: int = 0
    cycles: int = 0                         # closed review cycles in the year
    shift: float = 0.0                      # z units asked of the formula
    applied: bool = True                    # False: service_feedback is off, and ``shift``
                                            # is only what it would have asked


class RunSummary(BaseModel):
    """What one run did, for people and planning systems. Secrets never enter it."""

    schema_version: int = 1
    org: str
    run_id: str
    status: RunStatus
    mode: Mode
    started_at: datetime
    finished_at: datetime | None = None
    as_of: date | None = None
    currency: str = ""
    orders: list[PurchaseOrder] = Field(default_factory=list)
    held: list[PurchaseOrder] = Field(default_factory=list)
    skipped: list[SkippedLine] = Field(default_factory=list)
    quarantined: list[QuarantinedRecord] = Field(default_factory=list)
    risks: list[Reason] = Field(default_factory=list)
    spend: float = 0.0
    budget: float | None = None
    forecast_accuracy: dict[str, Any] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    # Added for reports (all optional): projected stockouts, accuracy over the last runs, model
    # changes, and the run this one is compared with.
    stockouts: list[StockoutRisk] = Field(default_factory=list)
    accuracy: list[AccuracyPoint] = Field(default_factory=list)
    model_changes: list[ModelChange] = Field(default_factory=list)
    previous_run_id: str | None = None
    service: list[ServiceDelivered] = Field(default_factory=list)   # per service group
