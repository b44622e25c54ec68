"""Set-up shared by the review page's integration and browser tests: a config folder with an
org whose orders go to a real webhook receiver, an access file, and runs in the state store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from restock.domain import RunSummary
from restock.store import OrderStatus, Store

TOKENS = {"alice": "alice-approver-token-1234", "vic": "vic-viewer-token-5678",
          "olga": "olga-other-org-token-9012"}


def write_access(folder: Path, roles: dict[str, dict[str, str]] | None = None) -> None:
    """access.yaml with one token file per user (alice approves acme, vic views it, olga has
    another org only)."""
    roles = roles or {"alice": {"acme": "approver"}, "vic": {"acme": "viewer"},
                      "olga": {"other": "approver"}}
    secrets = folder / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    lines = ["users:"]
    for name, orgs in roles.items():
        (secrets / name).write_text(TOKENS[name] + "\n", encoding="utf-8")
        lines += [f"  {name}:", f"    token: file:secrets/{name}", "    orgs:"]
        lines += [f"      {org!r}: {role}" for org, role in orgs.items()]
    (folder / "access.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_org(folder: Path, receiver_url: str, warehouse: Path, *, org: str = "acme",
              mode: str = "approval") -> Path:
    """An org reading a files warehouse and sending orders to the receiver's webhook."""
    (folder / "orgs").mkdir(parents=True, exist_ok=True)
    path = folder / "orgs" / f"{org}.yaml"
    path.write_text(f"""org: {org}
currency: EUR
schedule: "0 6 * * *"
mode: {mode}
source: {{connector: files, path: {warehouse}, as_of: history_end}}
order_sink:
  connector: webhook
  url: "{receiver_url}/orders"
  lookup_url: "{receiver_url}/orders/{{key}}"
policy: {{service_level: 0.95, review_period_days: 7, lead_time_days: 14}}
guard: {{approval_expires_hours: 72}}
forecast: {{statsmodels_seconds: 0}}
""", encoding="utf-8")
    return path


@dataclass
class SeededRun:
    summary: RunSummary
    held_ids: list[str]
    sent_ids: list[str]


def seed_run(store: Store, summary: RunSummary) -> SeededRun:
    """Store ``summary`` as a finished run, its held orders held and the rest submitted."""
    store.runs.start(summary.org, summary.run_id, summary.mode, summary.started_at)
    held = {o.order_id for o in summary.held}
    for order in summary.held:
        store.ledger.record(order, slot=f"{summary.run_id}-{order.supplier}",
                            run_id=summary.run_id, status=OrderStatus.HELD)
    for order in summary.orders:
        if order.order_id not in held:
            store.ledger.record(order, slot=f"{summary.run_id}-{order.supplier}",
                                run_id=summary.run_id, status=OrderStatus.APPROVED)
            store.ledger.transition(order.order_id, OrderStatus.SUBMITTING)
            store.ledger.transition(order.order_id, OrderStatus.SUBMITTED,
                                    external_id=f"ERP-{order.order_id}")
    store.runs.finish(summary)
    return SeededRun(summary, [o.order_id for o in summary.held],
                     [o.order_id for o in summary.orders if o.order_id not in held])
