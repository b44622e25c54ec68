"""A person's decision on a held order: approve (optionally with edited quantities) or reject.

The CLI and the review page both come here, so every decision follows one set of rules and is
audited in the ledger (who, when, what changed, why). An approved order is sent at once through
the org's order sink; if that fails it stays approved and the next run sends it, unless it has
expired by then — an order is never sent stale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from restock.config import OrgConfig
from restock.connectors import open_connector
from restock.errors import LedgerConflict, RestockError
from restock.store import LedgerEntry, OrderStatus, Store
from restock.submit import submit_one

S = OrderStatus


@dataclass(frozen=True)
class Decision:
    """The order after the decision, and what sending it did (if it was approved)."""

    entry: LedgerEntry
    sent: bool = False
    problem: str | None = None


def approve(store: Store, config: OrgConfig, order_id: str, *, actor: str,
            quantities: dict[str, float] | None = None, comment: str | None = None,
            send: bool = True) -> Decision:
    """Approve a held order of ``config``'s org, with optional new quantities per SKU."""
    entry = _held(store, config, order_id)
    if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
        store.ledger.transition(order_id, S.EXPIRED, expect=S.HELD,
                                comment="expired before it was approved; planned afresh next run")
        raise LedgerConflict(f"order {order_id} expired at {entry.expires_at:%Y-%m-%d %H:%M} UTC "
                             "before it was approved; the next run plans the need afresh")
    order, changes = _edited(entry, quantities or {})
    approved = store.ledger.transition(order_id, S.APPROVED, actor=actor, comment=comment,
                                       changes=changes or None, order=order, expect=S.HELD)
    if not send:
        return Decision(approved)
    return _send(store, config, approved)


def reject(store: Store, config: OrgConfig, order_id: str, *, actor: str,
           reason: str) -> Decision:
    """Reject a held order; it is never sent and its need is planned afresh next run."""
    if not reason.strip():
        raise RestockError("a rejection needs a reason (--reason)")
    _held(store, config, order_id)
    return Decision(store.ledger.transition(order_id, S.REJECTED, actor=actor, comment=reason,
                                            expect=S.HELD))


def _held(store: Store, config: OrgConfig, order_id: str) -> LedgerEntry:
    entry = store.ledger.find(order_id)
    if entry is None or entry.org != config.org:
        raise RestockError(f"no order {order_id!r} for org {config.org!r}")
    if entry.status != S.HELD:
        raise LedgerConflict(f"order {order_id} is {entry.status}, not held: "
                             "only held orders can be approved or rejected")
    return entry


def _edited(entry: LedgerEntry, quantities: dict[str, float]):
    lines_by_sku = {line.sku: line for line in entry.order.lines}
    unknown = sorted(set(quantities) - set(lines_by_sku))
    if unknown:
        raise RestockError(f"order {entry.order_id} has no line for {', '.join(unknown)}")
    changes: dict[str, list[float]] = {}
    lines = []
    for line in entry.order.lines:
        new = quantities.get(line.sku, line.quantity)
        if not math.isfinite(new) or new < 0:
            raise RestockError(f"{line.sku}: quantity must be a number of 0 or more (got {new})")
        if new != line.quantity:
            changes[line.sku] = [line.quantity, new]
        if new > 0:
            lines.append(line.model_copy(update={"quantity": float(new)}))
    if not lines:
        raise RestockError(f"order {entry.order_id}: every quantity is 0; reject it instead")
    return entry.order.model_copy(update={"lines": lines}), changes


def _send(store: Store, config: OrgConfig, entry: LedgerEntry) -> Decision:
    with open_connector(config, "order_sink") as sink:
        after = submit_one(store.ledger, sink, entry)  # type: ignore[arg-type]
    if after.status == S.SUBMITTED:
        return Decision(after, sent=True)
    return Decision(after, problem=f"approved, not sent yet ({after.status}: {after.detail}); "
                                   "the next run sends it")
