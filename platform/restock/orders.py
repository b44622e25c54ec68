"""The cycle's view of the order ledger: what restock already has open, what this run adds, and
what goes out.

Orders are made per supplier and planning slot (the org's planning date), so their idempotency
keys are the same on every re-run of that slot: a re-run finds its orders already in the ledger
and adds none. Until the inventory source shows one of restock's orders as on order (matched by
reference) or its arrival date has passed, the order's quantities count as on order, so the next
run does not order the same need again.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from restock import submit as sending
from restock.config import OrgConfig
from restock.connectors import OrderSink
from restock.domain import OrderLine, PurchaseOrder, Reason, SkippedLine, idempotency_key
from restock.policy import Plan
from restock.store import ACTIVE_STATUSES, Ledger, LedgerEntry, OrderStatus

S = OrderStatus
REVIEW_PART = "#review"   # the part of a supplier's order a guard holds for a person


class OrderBook:
    """Ledger reads and writes of one org's run; in a dry run it writes nothing."""

    def __init__(self, config: OrgConfig, ledger: Ledger, sink: OrderSink, now: datetime, *,
                 run_id: str, live: bool) -> None:
        self.config, self.ledger, self.sink, self.now, self.live = config, ledger, sink, now, live
        self.run_id = run_id
        self.org = config.org
        self.skipped: list[SkippedLine] = []
        self._placed: list[str] = []                  # order ids recorded by this run
        self._dry: list[PurchaseOrder] = []
        self._report = sending.SubmitReport()
        self._prepared = sending.SubmitReport()

    # -- before planning

    def prepare(self) -> list[str]:
        """Resolve orders whose sending was interrupted, and expire stale ones."""
        if not self.live:
            return []
        self._prepared = sending.reconcile(self.ledger, self.sink, self.org)
        self._prepared.expired = sending.expire(self.ledger, self.org, self.now)
        return self._prepared.errors

    def add_own_orders(self, items: pd.DataFrame, open_orders: pd.DataFrame,
                       as_of: date) -> pd.DataFrame:
        """Add restock's open orders the source does not show yet to ``on_order``."""
        references = set(open_orders["reference"].astype(str)) if len(open_orders) else set()
        own: dict[str, float] = defaultdict(float)
        which: dict[str, list[str]] = defaultdict(list)
        # the supplier of an order open for the SKU: the source's, then restock's own (newer)
        supplier = dict(zip(open_orders["sku"].astype(str), open_orders["supplier"],
                            strict=True)) if len(open_orders) else {}
        for entry in self.ledger.list(self.org, ACTIVE_STATUSES):
            if not self._still_unseen(entry, references):
                continue
            for line in entry.order.lines:
                own[line.sku] += line.quantity
                which[line.sku].append(entry.order_id)
                supplier[line.sku] = line.supplier
        items = items.copy()
        items["own_on_order"] = items["sku"].map(own).fillna(0.0)
        items["own_orders"] = items["sku"].map(lambda sku: ", ".join(which.get(sku, [])))
        items["on_order"] = items["on_order"] + items["own_on_order"]
        items["open_supplier"] = items["sku"].map(supplier)
        return items

    def _still_unseen(self, entry: LedgerEntry, references: set[str]) -> bool:
        if entry.status != S.SUBMITTED:
            return True            # planned, held, approved or being sent: only restock knows
        if {entry.key, entry.order_id, entry.external_id or entry.key} & references:
            if self.live:
                self.ledger.mark_seen(entry.order_id, self.now)
            return False           # the source counts it in its own on-order now
        arrived = entry.seen_at is not None or \
            self.now >= sending.expected_arrival(entry) + timedelta(
                days=float(self.config.policy.review_period_days))
        if arrived:
            if self.live:
                why = ("no longer on order at the source" if entry.seen_at else
                       "its arrival date has passed; the source's stock holds it now")
                self.ledger.transition(entry.order_id, S.RECEIVED, expect=S.SUBMITTED,
                                       comment=f"received: {why}")
            return False
        return True

    def committed_in_slot(self, as_of: date) -> float:
        """Value of the orders restock already has for this planning date (still standing)."""
        slot = as_of.isoformat()
        return sum(e.order.total for e in self.ledger.list(self.org, ACTIVE_STATUSES)
                   if e.slot == slot)

    def past_line_quantities(self) -> dict[str, list[float]]:
        """Quantities of the org's past sent orders per SKU, oldest first."""
        past: dict[str, list[float]] = defaultdict(list)
        for entry in self.ledger.list(self.org, [S.SUBMITTED, S.RECEIVED]):
            for line in entry.order.lines:
                past[line.sku].append(line.quantity)
        return past

    # -- this run's orders

    def place(self, plan: Plan, items: pd.DataFrame, as_of: date) -> sending.SubmitReport:
        """One order per supplier from the plan's lines, held or approved by mode and guards."""
        slot = as_of.isoformat()
        by_supplier: dict[str, list[OrderLine]] = defaultdict(list)
        own = items.set_index("sku")["own_orders"] if "own_orders" in items else pd.Series()
        ordered = self._ordered_in_slot(slot)
        for line in plan.lines:
            earlier = ordered.get(line.sku)
            if earlier is not None and earlier.supplier != line.supplier:
                self.skipped.append(_sku_taken(line, earlier))
                continue
            by_supplier[line.supplier].append(_with_own_orders(line, own.get(line.sku, "")))
        holds = plan.holds
        report = sending.SubmitReport()
        for supplier, lines in sorted(by_supplier.items()):
            for part, part_lines in self._split(lines, holds):
                self._place_one(supplier, part_lines, f"{slot}{part}", as_of, holds, report)
        return report

    def _split(self, lines: list[OrderLine], holds: dict[str, list[Reason]]
               ) -> list[tuple[str, list[OrderLine]]]:
        """The supplier's lines as one order, or, in auto mode, the lines a guard holds apart in
        a second order for review, so one odd line never keeps the rest from going out."""
        held = [line for line in lines if holds.get(line.sku)]
        if self.config.mode.value == "approval" or not held or len(held) == len(lines):
            return [("", lines)]
        return [("", [line for line in lines if not holds.get(line.sku)]),
                (REVIEW_PART, held)]

    def _ordered_in_slot(self, slot: str) -> dict[str, LedgerEntry]:
        """SKUs already in a standing order of this planning date, with that order.

        A run that died after placing some of its orders leaves them counted as on order; the
        re-run may then prefer another supplier (a longer lead time, a higher order-up-to level)
        and top the SKU up. Ordering each SKU at most once per planning date keeps a re-run to
        what one uninterrupted run would have ordered.
        """
        return {line.sku: entry for entry in self.ledger.list(self.org, ACTIVE_STATUSES)
                if entry.slot == slot for line in entry.order.lines}

    def _place_one(self, supplier: str, lines: list[OrderLine], slot: str, as_of: date,
                   holds: dict[str, list[Reason]], report: sending.SubmitReport) -> None:
        key = idempotency_key(self.org, supplier, slot)
        existing = self.ledger.by_key(key)
        if existing is not None:
            self.skipped.extend(_slot_taken(line, existing) for line in lines)
            return
        slot = slot.removesuffix(REVIEW_PART)
        order = PurchaseOrder(order_id=f"{self.org}-{as_of:%Y%m%d}-{key[-8:]}", org=self.org,
                              supplier=supplier, currency=self.config.currency,
                              idempotency_key=key, lines=lines)
        reasons = self._hold_reasons(order, holds)
        order = order.model_copy(update={"held_reasons": reasons})
        if not self.live:
            status = "held" if reasons else "planned"
            self._dry.append(order.model_copy(update={"status": status}))
            return
        expires = self.now + timedelta(hours=float(self.config.guard.approval_expires_hours))
        target = S.HELD if reasons else S.APPROVED
        comment = "; ".join(r.message for r in reasons) if reasons else "auto mode, no guard held it"
        entry = self.ledger.record(order, slot=slot, run_id=self.run_id, status=target,
                                   expires_at=expires, comment=comment)
        self._placed.append(entry.order_id)

    def _hold_reasons(self, order: PurchaseOrder, holds: dict[str, list[Reason]]) -> list[Reason]:
        reasons = []
        if self.config.mode.value == "approval":
            reasons.append(Reason(code="approval_mode", message="the org's mode is approval: "
                                  "every order waits for a person"))
        for line in order.lines:
            reasons += [Reason(code=r.code, message=f"{line.sku}: {r.message}",
                               data={**r.data, "sku": line.sku}) for r in holds.get(line.sku, [])]
        limit = self.config.policy.max_order_value
        if limit is not None and order.total > limit:
            reasons.append(Reason(code="max_order_value",
                                  message=f"order value {order.total:,.2f} {order.currency} is "
                                          f"above the limit of {limit:,.2f}",
                                  data={"total": order.total, "limit": limit}))
        return reasons

    def send(self, stopping: Any) -> list[str]:
        """Send every approved order (this run's and earlier approved ones)."""
        if not self.live:
            return []
        self._report = sending.submit_approved(self.ledger, self.sink, self.org, self.now,
                                               stop=stopping)
        return self._report.errors

    # -- for the summary

    def sent_orders(self) -> list[PurchaseOrder]:
        sent = [*self._prepared.submitted, *self._report.submitted]
        return [_as_order(entry) for entry in sent]

    def held_orders(self) -> list[PurchaseOrder]:
        if not self.live:
            return [o for o in self._dry if o.status == "held"] + \
                [o for o in self._dry if o.status != "held"]
        entries = [self.ledger.get(order_id) for order_id in self._placed]
        return [_as_order(e) for e in entries if e.status == S.HELD]

    def counts(self) -> dict[str, int]:
        return {"submitted": len(self._prepared.submitted) + len(self._report.submitted),
                "failed": len(self._report.failed),
                "outcome_unknown": len(self._report.unresolved) + len(self._prepared.unresolved),
                "expired": len(self._prepared.expired) + len(self._report.expired),
                "waiting_approval": len(self.ledger.list(self.org, [S.HELD])) if self.live else 0}


def _as_order(entry: LedgerEntry) -> PurchaseOrder:
    return entry.order.model_copy(update={"status": str(entry.status)})


def _with_own_orders(line: OrderLine, own_orders: str) -> OrderLine:
    if not own_orders:
        return line
    note = Reason(code="own_open_orders", message=f"on order counts restock's own open orders "
                  f"{own_orders}, not yet shown by the source", data={"orders": own_orders})
    return line.model_copy(update={"reasons": [*line.reasons, note]})


def _slot_taken(line: OrderLine, existing: LedgerEntry) -> SkippedLine:
    return SkippedLine(sku=line.sku, supplier=line.supplier, wanted_quantity=line.quantity,
                       reasons=[Reason(code="slot_taken", message=(
                           f"restock already has order {existing.order_id} ({existing.status}) to "
                           f"{existing.supplier} for this planning date; it orders from a supplier "
                           "once per planning date"), data={"order_id": existing.order_id})])


def _sku_taken(line: OrderLine, existing: LedgerEntry) -> SkippedLine:
    return SkippedLine(sku=line.sku, supplier=line.supplier, wanted_quantity=line.quantity,
                       reasons=[Reason(code="sku_taken", message=(
                           f"restock already ordered {line.sku} for this planning date in order "
                           f"{existing.order_id} ({existing.status}) to {existing.supplier}; it "
                           "orders a SKU once per planning date"),
                           data={"order_id": existing.order_id})])
