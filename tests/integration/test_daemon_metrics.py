"""/metrics, /readyz and /status of a daemon running the real cycle: orders, spend, held lines,
connector failures (an order webhook that nobody answers), a failed run, last success per org."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest

pytest.importorskip("restock.cycle", reason="the cycle (restock.cycle.run_org) is not installed")

from restock.cycle import run_org
from restock.daemon import Daemon, SlotLedger
from restock.daemon.http import create_daemon_app
from restock.settings import load_settings
from restock.store import open_store
from tests.support.daemon_kit import demo_warehouse, files_org
from tests.support.loopback import serve_asgi

NEVER = "0 3 1 1 *"


def _closed_port() -> int:
    with socket.socket() as sock:          # bound then released: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    demo_warehouse(tmp_path / "warehouse", 20)
    orgs = tmp_path / "config" / "orgs"
    orgs.mkdir(parents=True)
    files_org(orgs, "good", NEVER, tmp_path / "warehouse")
    hook = files_org(orgs, "hooky", NEVER, tmp_path / "warehouse")
    dead = f"http://127.0.0.1:{_closed_port()}"
    hook.write_text(hook.read_text().replace(
        f"order_sink: {{connector: files, path: {tmp_path / 'outbox' / 'hooky'}}}",
        f"order_sink: {{connector: webhook, url: \"{dead}/orders\", retries: {{attempts: 1}}}}"))
    files_org(orgs, "lost", NEVER, tmp_path / "nowhere")
    return tmp_path


@pytest.fixture
def daemon(site: Path):
    url = f"sqlite:///{site / 'state.db'}"
    settings = load_settings(config_dir=site / "config", state_url=url, replica_id="m1")
    store, ledger = open_store(url), SlotLedger(url, replica="m1")
    made = Daemon(settings, runner=run_org, store=store, ledger=ledger)
    made.start()
    yield made
    made.stop(timeout=30)
    ledger.close()
    store.close()


def _sample(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))   # as exposed: sorted
    match = re.search(rf"^{name}{{{re.escape(wanted)}}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_metrics_follow_real_runs(daemon: Daemon):
    outcomes = {org: daemon.trigger(org).result(120) for org in ("good", "hooky", "lost")}
    assert {org: o.status for org, o in outcomes.items()} == {
        "good": "ok", "hooky": "partial", "lost": "failed"}
    with serve_asgi(create_daemon_app(daemon)) as base:
        text = httpx.get(f"{base}/metrics").text
        ready = httpx.get(f"{base}/readyz")
        status = httpx.get(f"{base}/status").json()
    for org, run_status in (("good", "ok"), ("hooky", "partial"), ("lost", "failed")):
        assert _sample(text, "restock_runs_total", org=org, status=run_status) == 1.0
        assert _sample(text, "restock_run_duration_seconds_count", org=org) == 1.0
    good = daemon.store.runs.summary(outcomes["good"].run_id)
    assert good.orders and good.spend > 0
    assert _sample(text, "restock_orders_total", org="good") == len(good.orders)
    assert _sample(text, "restock_spend_total", org="good", currency="EUR") == good.spend
    assert _sample(text, "restock_held_lines_total", org="good") == sum(
        len(order.lines) for order in good.held)
    assert _sample(text, "restock_orders_total", org="hooky") == 0.0       # none went out
    assert _sample(text, "restock_connector_errors_total", org="hooky",
                   kind="unavailable") >= 1.0
    assert _sample(text, "restock_last_success_timestamp_seconds", org="good") > 0
    assert _sample(text, "restock_last_success_timestamp_seconds", org="lost") is None
    assert ready.status_code == 200 and ready.json() == {"ready": True, "orgs": 3}
    last = {row["org"]: row["last"]["status"] for row in status["orgs"]}
    assert last == {"good": "ok", "hooky": "partial", "lost": "failed"}


def test_readyz_says_when_the_store_is_unreachable(daemon: Daemon):
    daemon.ledger.engine.dispose()
    daemon.ledger.engine = __import__("sqlalchemy").create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none")
    with serve_asgi(create_daemon_app(daemon)) as base:
        ready = httpx.get(f"{base}/readyz")
        alive = httpx.get(f"{base}/healthz")
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["problems"] == ["state store unreachable: OperationalError"]
