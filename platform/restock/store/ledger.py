"""The order ledger (outbox): every purchase order restock plans, before anything is sent.

Each order is recorded with its idempotency key and a status; every change of status is a
compare-and-set on the current one plus an audit event (who, when, from, to, what changed), so two
processes can never both move an order to ``submitting`` and no step is lost::

    planned ─┬─► held ─┬─► approved ─► submitting ─┬─► submitted ─► received
             │         ├─► rejected          ▲     ├─► failed
             │         └─► expired           │     └─► approved   (reconciled: not downstream)
             └─► approved ───────────────────┘
    any open status ─► cancelled
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from restock.domain import PurchaseOrder
from restock.errors import LedgerConflict
from restock.store.schema import ledger_events, ledger_orders


class OrderStatus(StrEnum):
    PLANNED = "planned"
    HELD = "held"              # waits for a person
    APPROVED = "approved"      # may be sent
    SUBMITTING = "submitting"  # being sent: outcome unknown until the sink answers or lookup tells
    SUBMITTED = "submitted"    # the downstream system has it
    FAILED = "failed"          # the downstream system refused it
    RECEIVED = "received"      # delivered (seen upstream, or its arrival date passed)
    REJECTED = "rejected"      # a person said no
    EXPIRED = "expired"        # nobody approved it in time; the need is planned afresh
    CANCELLED = "cancelled"


S = OrderStatus
_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PLANNED: frozenset({S.HELD, S.APPROVED, S.CANCELLED}),
    S.HELD: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SUBMITTING, S.EXPIRED, S.CANCELLED}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.FAILED, S.APPROVED}),
    S.SUBMITTED: frozenset({S.RECEIVED, S.CANCELLED}),
    S.FAILED: frozenset({S.APPROVED, S.CANCELLED}),
}
# Orders that still stand: they count against a new plan so a need is never ordered twice.
ACTIVE_STATUSES = frozenset({S.PLANNED, S.HELD, S.APPROVED, S.SUBMITTING, S.SUBMITTED})


@dataclass(frozen=True)
class LedgerEntry:
    """One order as the ledger holds it."""

    order_id: str
    key: str
    org: str
    supplier: str
    slot: str
    run_id: str
    status: OrderStatus
    order: PurchaseOrder
    created_at: datetime
    updated_at: datetime
    external_id: str | None = None
    detail: str | None = None
    expires_at: datetime | None = None
    submitted_at: datetime | None = None
    seen_at: datetime | None = None


@dataclass(frozen=True)
class LedgerEvent:
    """One audited change of an order."""

    order_id: str
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    comment: str | None
    changes: dict[str, Any] | None


class Ledger:
    """Reads and writes the order ledger; every write is one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, order: PurchaseOrder, *, slot: str, run_id: str, status: OrderStatus,
               expires_at: datetime | None = None, actor: str = "restock",
               comment: str | None = None) -> LedgerEntry:
        """Write a new order (before it is sent). LedgerConflict if its key is already there.

        An order decided at once (``held`` or ``approved``) is written in one transaction with
        both steps audited, so a crash can never leave an undecided ``planned`` order behind.
        """
        now = _now()
        order = order.model_copy(update={"status": str(status), "created_at": now})
        row = {"order_id": order.order_id, "idempotency_key": order.idempotency_key,
               "org": order.org, "supplier": order.supplier, "slot": slot, "run_id": run_id,
               "status": str(status), "document": order.model_dump(mode="json"),
               "total": order.total, "created_at": now, "updated_at": now,
               "expires_at": expires_at}
        try:
            with self.engine.begin() as conn:
                conn.execute(ledger_orders.insert().values(**row))
                if status == S.PLANNED:
                    _audit(conn, order.order_id, actor, None, status, comment, None, now)
                elif status in _ALLOWED[S.PLANNED]:
                    _audit(conn, order.order_id, actor, None, S.PLANNED, None, None, now)
                    _audit(conn, order.order_id, actor, S.PLANNED, status, comment, None, now)
                else:
                    raise LedgerConflict(f"a new order cannot start as {status}")
        except IntegrityError:
            raise LedgerConflict(f"an order with key {order.idempotency_key} is already in "
                                 "the ledger") from None
        return self.get(order.order_id)

    def transition(self, order_id: str, to: OrderStatus, *, actor: str = "restock",
                   comment: str | None = None, changes: dict[str, Any] | None = None,
                   order: PurchaseOrder | None = None, expect: OrderStatus | None = None,
                   **fields: Any) -> LedgerEntry:
        """Move an order to ``to`` if allowed from its current status (compare-and-set).

        ``order`` replaces the stored document (an approver's quantity edit); ``fields`` sets
        columns such as ``external_id`` or ``detail``. LedgerConflict when the move is not allowed
        or another process changed the order first.
        """
        current = self.get(order_id)
        if expect is not None and current.status != expect:
            raise LedgerConflict(f"order {order_id} is {current.status}, not {expect}")
        if to not in _ALLOWED.get(current.status, frozenset()):
            raise LedgerConflict(f"order {order_id} is {current.status}; it cannot become {to}")
        now = _now()
        values = {"status": str(to), "updated_at": now, **fields}
        document = (order or current.order).model_copy(update={"status": str(to)})
        values["document"], values["total"] = document.model_dump(mode="json"), document.total
        if to == S.SUBMITTED and "submitted_at" not in fields:
            values["submitted_at"] = now
        with self.engine.begin() as conn:
            moved = conn.execute(ledger_orders.update().where(
                ledger_orders.c.order_id == order_id,
                ledger_orders.c.status == str(current.status)).values(**values)).rowcount
            if moved != 1:
                raise LedgerConflict(f"order {order_id} changed while it was being updated")
            _audit(conn, order_id, actor, current.status, to, comment, changes, now)
        return self.get(order_id)

    def mark_seen(self, order_id: str, when: datetime) -> None:
        """Note that the inventory source now shows this order as on order."""
        with self.engine.begin() as conn:
            conn.execute(ledger_orders.update().where(
                ledger_orders.c.order_id == order_id, ledger_orders.c.seen_at.is_(None))
                .values(seen_at=when))

    def get(self, order_id: str) -> LedgerEntry:
        entry = self._one(ledger_orders.c.order_id == order_id)
        if entry is None:
            raise LedgerConflict(f"no order {order_id!r} in the ledger")
        return entry

    def find(self, order_id: str) -> LedgerEntry | None:
        """The order with this id, or None."""
        return self._one(ledger_orders.c.order_id == order_id)

    def by_key(self, key: str) -> LedgerEntry | None:
        return self._one(ledger_orders.c.idempotency_key == key)

    def list(self, org: str | None = None, statuses: Iterable[OrderStatus] | None = None,
             *, run_id: str | None = None) -> list[LedgerEntry]:
        """Orders, oldest first, filtered by org, status and the run that planned them."""
        query = sa.select(ledger_orders).order_by(ledger_orders.c.created_at,
                                                  ledger_orders.c.order_id)
        if org is not None:
            query = query.where(ledger_orders.c.org == org)
        if statuses is not None:
            query = query.where(ledger_orders.c.status.in_([str(s) for s in statuses]))
        if run_id is not None:
            query = query.where(ledger_orders.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def events(self, order_id: str) -> list[LedgerEvent]:
        """The audit trail of one order, oldest first."""
        query = sa.select(ledger_events).where(ledger_events.c.order_id == order_id) \
            .order_by(ledger_events.c.id)
        with self.engine.connect() as conn:
            return [LedgerEvent(row.order_id, _aware(row.at), row.actor, row.from_status,
                                row.to_status, row.comment, row.changes)
                    for row in conn.execute(query)]

    def _one(self, condition: Any) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(ledger_orders).where(condition)).first()
        return _entry(row) if row is not None else None


def _audit(conn: sa.Connection, order_id: str, actor: str, before: OrderStatus | None,
           after: OrderStatus, comment: str | None, changes: dict[str, Any] | None,
           at: datetime) -> None:
    conn.execute(ledger_events.insert().values(
        order_id=order_id, at=at, actor=actor, from_status=str(before) if before else None,
        to_status=str(after), comment=comment, changes=changes))


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        order_id=row.order_id, key=row.idempotency_key, org=row.org, supplier=row.supplier,
        slot=row.slot, run_id=row.run_id, status=OrderStatus(row.status),
        order=PurchaseOrder.model_validate(row.document), created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at), external_id=row.external_id, detail=row.detail,
        expires_at=_aware(row.expires_at), submitted_at=_aware(row.submitted_at),
        seen_at=_aware(row.seen_at))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back naive; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
