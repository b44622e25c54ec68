"""The daemon's Prometheus metrics, in a registry of its own (one per daemon, so tests never clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

from restock.domain import RunSummary

CONTENT_TYPE = CONTENT_TYPE_LATEST
_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """Counters and gauges an operator alerts on; updated by the daemon after every slot."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("restock_runs", "Org runs by final status", ["org", "status"], registry=r)
        self.slots = Counter("restock_slots", "Scheduled or manual slots by what became of them "
                             "(ran, claimed_elsewhere, busy, missed, stopping)",
                             ["org", "outcome"], registry=r)
        self.duration = Histogram("restock_run_duration_seconds", "Wall time of one org run",
                                  ["org"], buckets=_DURATION_BUCKETS, registry=r)
        self.orders = Counter("restock_orders", "Purchase orders submitted", ["org"], registry=r)
        self.spend = Counter("restock_spend", "Value of submitted orders, in the org's currency",
                             ["org", "currency"], registry=r)
        self.held = Counter("restock_held_lines", "Order lines held for a person", ["org"],
                            registry=r)
        self.connector_errors = Counter("restock_connector_errors",
                                        "Runs stopped or degraded by a connector", ["org", "kind"],
                                        registry=r)
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
        if summary.status.value in ("ok", "partial"):
            self.last_success.labels(org).set(finished_at)

    def record_error(self, org: str, error: BaseException, seconds: float) -> None:
        from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected

        self.runs.labels(org, "error").inc()
        self.duration.labels(org).observe(seconds)
        if isinstance(error, (ConnectorUnavailable, ConnectorError, CredentialsRejected)):
            self.connector_errors.labels(org, type(error).__name__).inc()

    def forget(self, org: str) -> None:
        """Drop an org's gauge (its file was deleted): a stale last-success would mislead alerts."""
        try:
            self.last_success.remove(org)
        except KeyError:
            pass

    def render(self) -> bytes:
        return generate_latest(self.registry)
