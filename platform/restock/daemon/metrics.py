"""The daemon's Prometheus metrics, in a registry of its own (one per daemon, so tests never clash).

The cycle reports connector failures it survives (an order sink down, a summary not delivered) as
lines of ``RunSummary.errors``, and ends a run it cannot finish as ``failed`` with the error's
text. Those texts are counted by the shapes :mod:`restock.errors` gives them
(``<system> unavailable: ...``, ``credentials rejected by <system>``) and the order ledger's
``order <id> to <supplier> refused: ...``; a connector exception escaping the cycle counts by
its class.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from restock.domain import RunSummary

CONTENT_TYPE = CONTENT_TYPE_LATEST
_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_CONNECTOR_PROBLEMS = (("unavailable", re.compile(r"\S unavailable: ")),
                       ("credentials_rejected", re.compile(r"credentials rejected by \S")),
                       ("refused", re.compile(r"^order \S+ to .+ refused: ")))


def connector_problems(errors: Iterable[str]) -> Tally[str]:
    """How many of a run's error lines are connector failures, by kind."""
    kinds: Tally[str] = Tally()
    for error in errors:
        kind = next((k for k, pattern in _CONNECTOR_PROBLEMS if pattern.search(error)), None)
        if kind is not None:
            kinds[kind] += 1
    return kinds


class Metrics:
    """Counters and gauges an operator alerts on; updated by the daemon after every slot."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("restock_runs", "Org runs by final status", ["org", "status"], registry=r)
        self.slots = Counter("restock_slots", "Scheduled or manual slots by what became of them "
                             "(ran, claimed_elsewhere, busy, missed, stopping, "
                             "store_unavailable)",
                             ["org", "outcome"], registry=r)
        self.duration = Histogram("restock_run_duration_seconds", "Wall time of one org run",
                                  ["org"], buckets=_DURATION_BUCKETS, registry=r)
        self.orders = Counter("restock_orders", "Purchase orders submitted", ["org"], registry=r)
        self.spend = Counter("restock_spend", "Value of submitted orders, in the org's currency",
                             ["org", "currency"], registry=r)
        self.held = Counter("restock_held_lines", "Order lines held for a person", ["org"],
                            registry=r)
        self.connector_errors = Counter("restock_connector_errors",
                                        "Connector failures reported by runs, by kind "
                                        "(unavailable, credentials_rejected, refused, or the "
                                        "error: an answer restock cannot use)", ["org", "kind"], registry=r)
        self.quarantined = Counter("restock_quarantined_records",
                                   "Input records set aside as unusable", ["org"], registry=r)
        self.last_success = Gauge("restock_last_success_timestamp_seconds",
                                  "Unix time of the last run that ended ok or partial", ["org"],
                                  registry=r)
        self.orgs = Gauge("restock_orgs", "Orgs scheduled by this daemon", registry=r)
        self.config_errors = Gauge("restock_config_errors",
                                   "Org files whose latest version is rejected", registry=r)
        self.in_flight = Gauge("restock_runs_in_flight", "Org runs executing now", registry=r)

    def record_summary(self, summary: RunSummary, seconds: float, finished_at: float) -> None:
        org = summary.org
        self.runs.labels(org, summary.status.value).inc()
        self.duration.labels(org).observe(seconds)
        self.orders.labels(org).inc(len(summary.orders))
        self.spend.labels(org, summary.currency or "").inc(max(summary.spend, 0.0))
        self.held.labels(org).inc(sum(len(order.lines) for order in summary.held))
        self.quarantined.labels(org).inc(len(summary.quarantined))
        for kind, count in connector_problems(summary.errors).items():
            self.connector_errors.labels(org, kind).inc(count)
        if summary.status.value in ("ok", "partial"):
            self.last_success.labels(org).set(finished_at)

    def record_error(self, org: str, error: BaseException, seconds: float) -> None:
        self.runs.labels(org, "error").inc()
        self.duration.labels(org).observe(seconds)
        kind = _exception_kind(error)
        problems = Tally({kind: 1}) if kind else connector_problems([str(error)])
        for name, count in problems.items():
            self.connector_errors.labels(org, name).inc(count)

    def forget(self, org: str) -> None:
        """Drop an org's gauge (its file was deleted): a stale last-success would mislead alerts."""
        try:
            self.last_success.remove(org)
        except KeyError:
            pass

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _exception_kind(error: BaseException) -> str | None:
    from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected

    if isinstance(error, ConnectorUnavailable):
        return "unavailable"
    if isinstance(error, CredentialsRejected):
        return "credentials_rejected"
    return "error" if isinstance(error, ConnectorError) else None
