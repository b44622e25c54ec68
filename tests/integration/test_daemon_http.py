"""The daemon's HTTP face on a real loopback server: trigger with a bearer token, its refusals,
liveness and readiness while running and while shutting down."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from restock.daemon import Daemon, SlotLedger
from restock.daemon.http import create_daemon_app
from restock.settings import load_settings
from tests.support.daemon_kit import RecordingCycle, wait_until, write_org
from tests.support.loopback import serve_asgi

TOKEN = "s3cret-trigger"


@pytest.fixture
def daemon(tmp_path: Path):
    orgs = tmp_path / "config" / "orgs"
    orgs.mkdir(parents=True)
    write_org(orgs, "acme", "0 3 1 1 *")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    settings = load_settings(config_dir=tmp_path / "config", state_url=url, replica_id="h1",
                             trigger_token=f"file:{token_file}")
    ledger = SlotLedger(url, replica="h1")
    made = Daemon(settings, runner=RecordingCycle(), store=object(), ledger=ledger)
    made.start()
    yield made
    for gate in made.runner.gates.values():
        gate.set()
    made.stop(timeout=5)
    ledger.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_trigger_needs_the_token_and_reports_the_outcome(daemon: Daemon):
    with serve_asgi(create_daemon_app(daemon)) as base:
        assert httpx.post(f"{base}/trigger/acme").status_code == 401
        assert httpx.post(f"{base}/trigger/acme", headers=_auth("wrong")).status_code == 401
        assert httpx.post(f"{base}/trigger/nobody", headers=_auth(TOKEN)).status_code == 404
        done = httpx.post(f"{base}/trigger/acme", params={"wait": "1"}, headers=_auth(TOKEN),
                          timeout=30)
    assert done.status_code == 200
    body = done.json()
    assert (body["org"], body["outcome"], body["status"], body["kind"]) == (
        "acme", "ran", "ok", "manual")
    assert [org for org, _ in daemon.runner.calls] == ["acme"]


def test_a_running_org_is_refused_and_shutdown_turns_readiness_off(daemon: Daemon):
    daemon.runner.gates["acme"] = threading.Event()
    with serve_asgi(create_daemon_app(daemon)) as base:
        accepted = httpx.post(f"{base}/trigger/acme", headers=_auth(TOKEN))
        assert accepted.status_code == 202
        wait_until(lambda: daemon.runner.running == {"acme"}, what="the run to start")
        busy = httpx.post(f"{base}/trigger/acme", headers=_auth(TOKEN))
        assert busy.status_code == 409 and "running now" in busy.json()["error"]
        assert httpx.get(f"{base}/readyz").status_code == 200
        status = httpx.get(f"{base}/status").json()
        assert status["orgs"][0]["running"] is True and status["replica"] == "h1"

        stopper = threading.Thread(target=daemon.stop, kwargs={"timeout": 10})
        stopper.start()
        wait_until(daemon.stopping.is_set, what="stop to begin")
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503 and "shutting down" in ready.json()["problems"]
        assert httpx.get(f"{base}/healthz").status_code == 200      # alive while draining
        refused = httpx.post(f"{base}/trigger/acme", headers=_auth(TOKEN))
        assert refused.status_code == 503
        daemon.runner.gates["acme"].set()
        stopper.join(10)
    assert not stopper.is_alive()
    assert [c["status"] for c in daemon.ledger.claims("acme")] == ["ok"]
