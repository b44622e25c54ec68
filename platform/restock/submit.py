"""Sending orders exactly once: the ledger first, then the sink, then the outcome.

Every order is in the ledger before it is sent. Sending moves it to ``submitting`` (a
compare-and-set, so only one process can), hands the sink the order with its idempotency key and
records the answer. When nobody knows the answer — a timeout, a dropped connection, a crash of
restock itself — the order stays ``submitting`` until :func:`reconcile` asks the sink
(``lookup(key)``) whether it has it: found means submitted, not found means send it again. The
sink is never asked to create an order blindly twice, and even then the key makes a repeat
harmless downstream.

An order on its way is not one a crash left behind: its request may not have reached the sink
yet. So the move to ``submitting`` names its sender (host and process) in the audit trail, and
reconcile leaves the order alone while that sender may still be at it.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from restock.connectors import OrderSink
from restock.errors import CredentialsRejected, LedgerConflict, RestockError, Retriable
from restock.log import get_logger
from restock.store import Ledger, LedgerEntry, OrderStatus

log = get_logger("restock.submit")
S = OrderStatus


@dataclass
class SubmitReport:
    """What one pass of sending did."""

    submitted: list[LedgerEntry] = field(default_factory=list)
    failed: list[LedgerEntry] = field(default_factory=list)
    unresolved: list[LedgerEntry] = field(default_factory=list)   # still submitting
    expired: list[LedgerEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def reconcile(ledger: Ledger, sink: OrderSink, org: str) -> SubmitReport:
    """Resolve every ``submitting`` order of ``org`` left by a sender that is gone, by asking
    the sink whether it has it. An order whose sender is still at it is left alone: its request
    may not have reached the sink yet, and "not there" would send it twice."""
    report = SubmitReport()
    for entry in ledger.list(org, [S.SUBMITTING]):
        if _in_flight(ledger, entry):
            log.info("order.being_sent_elsewhere", order_id=entry.order_id)
            continue
        try:
            found = sink.lookup(entry.key)
        except Exception as err:  # noqa: BLE001 - whatever the sink's trouble, the answer is unknown
            _log_unexpected(err, entry, "lookup")
            report.unresolved.append(entry)
            report.errors.append(f"order {entry.order_id}: cannot ask {sink.name or 'the sink'} "
                                 f"whether it has it ({err}); it stays submitting")
            continue
        if found is not None and found.accepted:
            report.submitted.append(ledger.transition(
                entry.order_id, S.SUBMITTED, expect=S.SUBMITTING, external_id=found.external_id,
                comment="reconciled: the downstream system has it"))
        else:
            ledger.transition(entry.order_id, S.APPROVED, expect=S.SUBMITTING,
                              comment="reconciled: the downstream system does not have it")
    return report


def expire(ledger: Ledger, org: str, now: datetime) -> list[LedgerEntry]:
    """Held or approved-but-unsent orders past their expiry: never sent stale."""
    gone = []
    for entry in ledger.list(org, [S.HELD, S.APPROVED]):
        if entry.expires_at is not None and entry.expires_at <= now:
            gone.append(ledger.transition(entry.order_id, S.EXPIRED, expect=entry.status,
                                          comment="nobody approved it in time; "
                                                  "the need is planned afresh"))
    return gone


def submit_approved(ledger: Ledger, sink: OrderSink, org: str, now: datetime,
                    stop: Callable[[], bool] = lambda: False) -> SubmitReport:
    """Send every approved order of ``org`` (oldest first) unless it expired or we must stop."""
    report = SubmitReport()
    report.expired = expire(ledger, org, now)
    for entry in ledger.list(org, [S.APPROVED]):
        if stop():
            report.errors.append("stopping: approved orders left unsent, to go out next run")
            break
        outcome = submit_one(ledger, sink, entry)
        _file(report, outcome)
        if outcome.status == S.APPROVED:      # credentials refused: the rest would be too
            break
    return report


def submit_one(ledger: Ledger, sink: OrderSink, entry: LedgerEntry) -> LedgerEntry:
    """Send one approved order and record the outcome; returns the entry as it now stands."""
    with _sending(entry.order_id):
        try:
            sending = ledger.transition(entry.order_id, S.SUBMITTING, expect=S.APPROVED,
                                        comment=_sender())
        except LedgerConflict:
            return ledger.get(entry.order_id)    # another process is on it
        return _send(ledger, sink, sending)


def _send(ledger: Ledger, sink: OrderSink, entry: LedgerEntry) -> LedgerEntry:
    try:
        result = sink.submit(entry.order, entry.key)
    except CredentialsRejected as err:
        return ledger.transition(entry.order_id, S.APPROVED, detail=str(err),
                                 comment=f"not sent: {err}")
    except Retriable as err:
        log.warning("order.outcome_unknown", order_id=entry.order_id, error=str(err))
        return _with_detail(ledger.get(entry.order_id), str(err))
    except RestockError as err:
        return ledger.transition(entry.order_id, S.FAILED, detail=str(err),
                                 comment=f"refused: {err}")
    except Exception as err:  # noqa: BLE001 - e.g. a full disk: it may or may not have been sent
        _log_unexpected(err, entry, "submit")
        return _with_detail(ledger.get(entry.order_id), f"{type(err).__name__}: {err}")
    if not result.accepted:
        detail = result.detail or "refused by the downstream system"
        return ledger.transition(entry.order_id, S.FAILED, detail=detail, comment=detail)
    log.info("order.submitted", order_id=entry.order_id, key=entry.key,
             duplicate=result.duplicate, external_id=result.external_id)
    return ledger.transition(entry.order_id, S.SUBMITTED, external_id=result.external_id,
                             detail=result.detail or None)


# -- who is sending what: an order being sent is never taken for one a crash left behind

SENDER_GRACE = timedelta(minutes=15)   # longer than one submit may take, retries included
_SENDER = re.compile(r"^being sent by (?P<host>\S+) pid (?P<pid>\d+)$")
_in_progress: set[str] = set()
_in_progress_lock = threading.Lock()


def _sender() -> str:
    return f"being sent by {socket.gethostname()} pid {os.getpid()}"


@contextmanager
def _sending(order_id: str) -> Iterator[None]:
    with _in_progress_lock:
        _in_progress.add(order_id)
    try:
        yield
    finally:
        with _in_progress_lock:
            _in_progress.discard(order_id)


def _in_flight(ledger: Ledger, entry: LedgerEntry) -> bool:
    """Whether the sender named in the audit trail of a ``submitting`` order may still be
    sending it.

    This process: only if one of its threads is. Another process on this host: while it lives
    (and within the grace period, in case its pid was reused). Another host: within the grace
    period. An order without a sender (written by an older version) is resolved at once.
    """
    moves = [e for e in ledger.events(entry.order_id) if e.to_status == S.SUBMITTING]
    match = _SENDER.match(moves[-1].comment or "") if moves else None
    if match is None:
        return False
    recent = datetime.now(UTC) - moves[-1].at < SENDER_GRACE
    pid = int(match["pid"])
    if match["host"] != socket.gethostname():
        return recent
    if pid == os.getpid():
        with _in_progress_lock:
            return entry.order_id in _in_progress
    return recent and _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                      # someone else's process: it exists
    return True


def expected_arrival(entry: LedgerEntry) -> datetime:
    """When a submitted order should have arrived: submission plus its longest lead time."""
    lead = max((line.lead_time_days for line in entry.order.lines), default=0.0)
    return (entry.submitted_at or entry.created_at) + timedelta(days=lead)


def _log_unexpected(err: Exception, entry: LedgerEntry, step: str) -> None:
    # Not a RestockError: a sink's bug or an OS error. The order stays submitting, so the next
    # run asks the sink before anything is sent again, and the other orders still go out now.
    if isinstance(err, RestockError):
        return
    log.error("order.sink_error", order_id=entry.order_id, step=step,
              error=f"{type(err).__name__}: {err}")


def _with_detail(entry: LedgerEntry, detail: str) -> LedgerEntry:
    # The entry stays submitting; the detail travels in the report only.
    return LedgerEntry(**{**entry.__dict__, "detail": detail})


def _file(report: SubmitReport, entry: LedgerEntry) -> None:
    if entry.status == S.SUBMITTED:
        report.submitted.append(entry)
    elif entry.status == S.FAILED:
        report.failed.append(entry)
        report.errors.append(f"order {entry.order_id} to {entry.supplier} refused: "
                             f"{entry.detail}")
    elif entry.status == S.SUBMITTING:
        report.unresolved.append(entry)
        report.errors.append(f"order {entry.order_id} to {entry.supplier}: outcome unknown "
                             f"({entry.detail}); restock asks the system before sending again")
    elif entry.status == S.APPROVED:
        report.errors.append(f"order {entry.order_id} to {entry.supplier} not sent: "
                             f"{entry.detail}")
