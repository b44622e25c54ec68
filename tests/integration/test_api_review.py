"""The review page and API over real HTTP (uvicorn on loopback), a real state store (SQLite and
PostgreSQL, one test body) and a real downstream order receiver: who may see and decide what,
sessions and CSRF, decisions through restock.approval, and the daemon's mount."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from structlog.testing import capture_logs

from restock.api import create_app
from restock.errors import ConfigError, SecretError
from restock.store import CatalogEntry, OrderStatus, Store, open_store
from restock.web.access import GuessLimit, load_access, new_session, session_user
from tests.e2e.review_kit import TOKENS, SeededRun, seed_run, write_access, write_org
from tests.support.loopback import serve_asgi
from tests.support.receivers import OrderReceiver
from tests.support.summaries import make_summary


@dataclass
class Site:
    url: str
    store: Store
    run: SeededRun
    receiver: OrderReceiver
    folder: Path

    def client(self, user: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=30)
        if user is not None:
            answer = client.post("/login", data={"token": TOKENS[user], "next": "/"})
            assert answer.status_code == 303, answer.text
        return client

    def api(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {TOKENS[user]}"})


@pytest.fixture
def site(tmp_path, store_url):
    receiver = OrderReceiver()
    with serve_asgi(receiver.app()) as receiver_url, open_store(store_url) as store:
        write_org(tmp_path, receiver_url, tmp_path / "warehouse", mode="auto")
        write_access(tmp_path)
        run = seed_run(store, make_summary(24, held_orders=2))
        with serve_asgi(create_app(store=store, config_dir=tmp_path)) as url:
            yield Site(url, store, run, receiver, tmp_path)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def _approve_form(client: httpx.Client, run_id: str, order_id: str, **fields: Any
                  ) -> httpx.Response:
    page = client.get(f"/runs/{run_id}")
    data = {"csrf": _csrf(page.text), "back": f"/runs/{run_id}", **fields}
    return client.post(f"/orders/{order_id}/approve", data=data)


# ---------------------------------------------------------------- who gets in

def test_pages_need_a_login_and_the_api_a_token(site):
    anonymous = site.client()
    answer = anonymous.get(f"/runs/{site.run.summary.run_id}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next=%2Fruns%2F{site.run.summary.run_id}"
    assert anonymous.get("/api/runs").status_code == 401
    assert httpx.get(f"{site.url}/api/runs", headers={"Authorization": "Bearer nope"}
                     ).status_code == 401
    assert anonymous.get("/login").status_code == 200


def test_login_sets_a_strict_http_only_cookie_and_never_logs_the_token(site):
    client = site.client()
    with capture_logs() as logs:
        refused = client.post("/login", data={"token": "wrong-token", "next": "/"})
        accepted = client.post("/login", data={"token": TOKENS["alice"], "next": "/orgs/acme"})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    assert accepted.status_code == 303 and accepted.headers["location"] == "/orgs/acme"
    cookie = accepted.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert TOKENS["alice"] not in accepted.headers["set-cookie"]
    assert [e["event"] for e in logs] == ["review.login_refused", "review.login"]
    assert not any(TOKENS["alice"] in str(e) or "wrong-token" in str(e) for e in logs)
    assert client.get("/orgs/acme").status_code == 200
    assert client.post("/logout").headers["location"] == "/login"
    assert client.get("/orgs/acme").status_code == 303


def test_wrong_tokens_from_one_address_are_slowed_down_on_the_page_and_the_api(site):
    guesses = site.client()
    for attempt in range(10):
        assert guesses.post("/login", data={"token": f"guess-{attempt}"}).status_code == 401
    with capture_logs() as logs:
        stopped = guesses.post("/login", data={"token": TOKENS["alice"], "next": "/"})
    assert stopped.status_code == 429 and "set-cookie" not in stopped.headers
    assert 0 < int(stopped.headers["retry-after"]) <= 300 and "Too many wrong tokens" in stopped.text
    assert [e["event"] for e in logs] == ["review.login_throttled"]
    api = httpx.get(f"{site.url}/api/runs", headers={"Authorization": f"Bearer {TOKENS['vic']}"})
    assert api.status_code == 429 and api.headers["retry-after"]


def test_a_right_token_clears_the_wrong_ones_before_it(site):
    client = site.client()
    for round_ in range(3):
        for attempt in range(9):
            assert client.post("/login", data={"token": f"g{round_}{attempt}"}).status_code == 401
        assert client.post("/login", data={"token": TOKENS["alice"]}).status_code == 303
    assert site.api("vic").get("/api/runs").status_code == 200


def test_guess_limit_forgets_wrong_tokens_older_than_its_window():
    now = [0.0]
    limit = GuessLimit(allowed=3, window=60.0, clients=2, clock=lambda: now[0])
    for _ in range(3):
        limit.missed("a")
        now[0] += 10.0
    assert limit.wait("a") == 30.0 and limit.wait("b") == 0.0   # the first miss ages out at 60
    now[0] = 61.0
    assert limit.wait("a") == 0.0
    limit.missed("b")
    limit.missed("c")        # only two addresses are kept: the longest quiet one ("a") goes
    assert set(limit._misses) == {"b", "c"}
    with pytest.raises(ValueError):
        GuessLimit(allowed=0)


def test_login_only_redirects_within_the_site(site):
    client = site.client()
    for target in ("//evil.example/x", "https://evil.example/", "\\\\evil.example"):
        answer = client.post("/login", data={"token": TOKENS["vic"], "next": target})
        assert answer.headers["location"] == "/"


def test_each_user_sees_only_the_orgs_they_have_a_role_in(site):
    run_id = site.run.summary.run_id
    assert site.api("vic").get("/api/orgs").json() == {"orgs": [{"org": "acme",
                                                                 "role": "viewer"}]}
    olga = site.api("olga")
    assert [o["org"] for o in olga.get("/api/orgs").json()["orgs"]] == []
    assert olga.get("/api/runs").json() == {"runs": []}
    assert olga.get(f"/api/runs/{run_id}").status_code == 403
    assert olga.get("/api/runs", params={"org": "acme"}).status_code == 403
    assert olga.get(f"/api/orders/{site.run.held_ids[0]}").status_code == 403
    page = site.client("olga").get(f"/runs/{run_id}")
    assert page.status_code == 403 and "may not see org" in page.text


def test_a_viewer_reads_but_cannot_decide(site):
    order_id = site.run.held_ids[0]
    viewer = site.client("vic")
    page = viewer.get(f"/runs/{site.run.summary.run_id}")
    assert page.status_code == 200 and "data-approve" not in page.text
    answer = viewer.post(f"/orders/{order_id}/approve",
                         data={"csrf": _csrf_for(viewer, site), "back": "/"})
    assert answer.status_code == 403
    assert site.api("vic").post(f"/api/orders/{order_id}/approve").status_code == 403
    assert site.store.ledger.get(order_id).status == OrderStatus.HELD
    assert site.receiver.orders == {}


def _csrf_for(client: httpx.Client, site: Site) -> str:
    """The CSRF token of the client's session (for pages that show no form to take it from)."""
    from restock.web.access import csrf_token
    session = client.cookies.get("restock_session")
    user = session.split(":")[0]
    return csrf_token(load_access(site.folder).by_name(user), session)


def test_forms_without_the_sessions_csrf_token_are_refused(site):
    order_id = site.run.held_ids[0]
    alice = site.client("alice")
    for data in ({}, {"csrf": "forged"}, {"csrf": _csrf_for(site.client("vic"), site)}):
        answer = alice.post(f"/orders/{order_id}/approve", data=data)
        assert answer.status_code == 403 and "Form expired" in answer.text
    assert site.store.ledger.get(order_id).status == OrderStatus.HELD
    assert site.receiver.orders == {}


def test_sessions_are_signed_expire_and_end_when_the_token_rotates(site):
    access = load_access(site.folder)
    alice = access.by_name("alice")
    now = time.time()
    cookie = new_session(alice, now)
    assert session_user(access, cookie, now) == alice
    assert session_user(access, cookie.replace("alice", "olga"), now) is None
    assert session_user(access, cookie[:-1] + ("0" if cookie[-1] != "0" else "1"), now) is None
    assert session_user(access, cookie, now + 13 * 3600) is None
    (site.folder / "secrets" / "alice").write_text("a-brand-new-token-for-alice\n")
    assert session_user(load_access(site.folder), cookie, now) is None


# ---------------------------------------------------------------- deciding

def test_approving_on_the_page_sends_the_order_once_and_shows_its_new_status(site):
    run_id, order_id = site.run.summary.run_id, site.run.held_ids[0]
    alice = site.client("alice")
    answer = _approve_form(alice, run_id, order_id, comment="ok for this week")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/runs/{run_id}?order={order_id}#order-{order_id}"
    entry = site.store.ledger.get(order_id)
    assert entry.status == OrderStatus.SUBMITTED
    assert list(site.receiver.orders) == [entry.key]
    page = alice.get(answer.headers["location"]).text
    assert f"is now submitted — the downstream system has it as {entry.external_id}" in page
    assert f'data-order-status="{order_id}">submitted<' in page
    assert f'data-approve="{order_id}"' not in page
    events = site.store.ledger.events(order_id)
    approved = next(e for e in events if e.to_status == "approved")
    assert (approved.actor, approved.comment) == ("alice (review page)", "ok for this week")
    again = _approve_form(alice, run_id, site.run.held_ids[1])
    assert again.status_code == 303
    stale = alice.post(f"/orders/{order_id}/approve", data={"csrf": _csrf_for(alice, site)})
    assert stale.status_code == 409 and "not held" in stale.text
    assert len(site.receiver.orders) == 2


def test_edited_quantities_are_what_goes_downstream_and_into_the_audit_trail(site):
    run_id, order_id = site.run.summary.run_id, site.run.held_ids[0]
    order = site.store.ledger.get(order_id).order
    first, second = order.lines[0], order.lines[1]
    alice = site.client("alice")
    answer = _approve_form(alice, run_id, order_id, **{f"qty:{first.sku}": "7",
                                                       f"qty:{second.sku}": "0"})
    assert answer.status_code == 303
    entry = site.store.ledger.get(order_id)
    quantities = {line.sku: line.quantity for line in entry.order.lines}
    assert quantities[first.sku] == 7 and second.sku not in quantities
    body = site.receiver.orders[entry.key]["body"]
    assert {ln["sku"]: ln["quantity"] for ln in body["lines"]} == quantities
    changes = next(e for e in site.store.ledger.events(order_id) if e.to_status == "approved"
                   ).changes
    assert changes == {first.sku: [first.quantity, 7.0], second.sku: [second.quantity, 0.0]}


def test_a_bad_quantity_or_a_reject_without_reason_is_a_clear_message(site):
    run_id, order_id = site.run.summary.run_id, site.run.held_ids[0]
    sku = site.store.ledger.get(order_id).order.lines[0].sku
    alice = site.client("alice")
    bad = _approve_form(alice, run_id, order_id, **{f"qty:{sku}": "12x"})
    assert bad.status_code == 400
    assert f"{order_id}: {sku}: quantity must be a number (got &#39;12x&#39;)" in bad.text
    page = alice.get(f"/runs/{run_id}").text
    reject = alice.post(f"/orders/{order_id}/reject", data={"csrf": _csrf(page), "reason": " "})
    assert reject.status_code == 400 and "a rejection needs a reason" in reject.text
    api = site.api("alice")
    answer = api.post(f"/api/orders/{order_id}/approve", json={"quantities": {sku: "many"}})
    assert answer.status_code == 400 and "quantities must be an object" in answer.json()["error"]
    answer = api.post(f"/api/orders/{order_id}/approve", json={"quantities": {"NOPE": 3}})
    assert answer.status_code == 400 and "has no line for NOPE" in answer.json()["error"]
    assert api.post(f"/api/orders/{order_id}/approve", content=b"{").status_code == 400
    assert site.store.ledger.get(order_id).status == OrderStatus.HELD


def test_the_api_approves_rejects_and_reports_the_audit_trail(site):
    api = site.api("alice")
    first, second = site.run.held_ids
    held = api.get("/api/orgs/acme/orders", params={"status": "held"}).json()["orders"]
    assert [o["order_id"] for o in held] == [first, second]
    answer = api.post(f"/api/orders/{first}/approve", json={"comment": "fine"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "submitted" and answer.json()["sent"] is True
    answer = api.post(f"/api/orders/{second}/reject", json={"reason": "too early"})
    assert answer.json()["status"] == "rejected"
    assert api.post(f"/api/orders/{second}/approve").status_code == 409
    trail = api.get(f"/api/orders/{second}").json()["events"]
    assert trail[-1] == {**trail[-1], "actor": "alice (API)", "to": "rejected",
                         "comment": "too early"}
    assert len(site.receiver.orders) == 1
    summary = api.get(f"/api/runs/{site.run.summary.run_id}").json()
    assert summary["held"] == []
    assert {o["order_id"]: o["status"] for o in summary["orders"]}[first] == "submitted"


# ---------------------------------------------------------------- reading

def test_run_page_shows_the_headline_and_every_order_with_its_ledger_status(site):
    summary = site.run.summary
    page = site.client("vic").get(f"/runs/{summary.run_id}").text
    held_lines = sum(len(o.lines) for o in summary.held)
    assert f'data-metric="lines_held" data-value="{held_lines}"' in page
    for order_id in site.run.sent_ids:
        assert f'data-order-status="{order_id}">submitted<' in page
    for order_id in site.run.held_ids:
        assert f'data-order-status="{order_id}">held<' in page
    assert "<script src=\"/static/review.js\"" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)      # nothing from the internet


def test_reports_json_markdown_and_the_standalone_file(site):
    run_id = site.run.summary.run_id
    api = site.api("vic")
    summary = api.get(f"/api/runs/{run_id}").json()
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "summary-schema.json")
                        .read_text())
    jsonschema.validate(summary, schema)
    assert summary["run_id"] == run_id and summary["schema_version"] == schema["x-schema-version"]
    markdown = api.get(f"/api/runs/{run_id}/report.md")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith(f"# restock run {run_id}")
    assert api.get(f"/api/runs/{run_id}/report.html").text.startswith("<!doctype html>")
    assert api.get(f"/api/runs/{run_id}/report.pdf").status_code == 404
    assert api.get("/api/runs/run-nope").status_code == 404
    standalone = site.client("vic").get(f"/runs/{run_id}/report")
    assert standalone.status_code == 200 and "<svg" in standalone.text
    assert site.client("vic").get("/runs/run-nope").status_code == 404


def test_a_run_whose_summary_is_no_longer_kept_says_so_to_whom_may_see_it(site):
    run_id = site.run.summary.run_id
    finished = site.store.runs.record(run_id).finished_at
    assert site.store.runs.prune_summaries("acme", finished + timedelta(seconds=1), keep=0) == 1
    answer = site.api("vic").get(f"/api/runs/{run_id}")
    assert answer.status_code == 404 and "no longer kept" in answer.text
    assert site.api("olga").get(f"/api/runs/{run_id}").status_code == 403
    page = site.client("vic").get(f"/runs/{run_id}")
    assert page.status_code == 404 and "summary_days" in page.text


def test_model_catalog_per_item_and_over_runs(site):
    entries = [CatalogEntry(org="acme", run_id=run, sku=sku, model=model, demand_class="smooth",
                            mase=mase, observations=200, chosen_by=by)
               for run, sku, model, mase, by in (("run-0000", "SKU-1", "SES", 0.9, "steady"),
                                                 ("run-0001", "SKU-1", "Holt", 0.8, "backtest"),
                                                 ("run-0001", "SKU-2", "TSB", 1.1, "previous"))]
    for entry in entries:
        site.store.models.record([entry])
    api = site.api("vic")
    latest = api.get("/api/orgs/acme/models").json()["models"]
    assert [(m["sku"], m["model"]) for m in latest] == [("SKU-1", "Holt"), ("SKU-2", "TSB")]
    history = api.get("/api/orgs/acme/models", params={"sku": "SKU-1"}).json()["models"]
    assert [(m["model"], m["chosen_by"]) for m in history] == [("Holt", "backtest"),
                                                               ("SES", "steady")]
    page = site.client("vic").get("/orgs/acme/models").text
    assert "Holt" in page and "TSB" in page and "0.80" in page
    assert '<span title="last run&#39;s model kept: within the margin of a better score">' \
        'previous</span>' in page
    legend = page.split('id="chosen-by">')[1].split("</p>")[0]
    assert legend.startswith("<b>backtest</b>: the best backtest score.") and \
        "<b>previous</b>" in legend and "steady" not in legend     # only the latest run's


def test_org_page_lists_runs_and_what_waits(site):
    page = site.client("vic").get("/orgs/acme").text
    assert site.run.summary.run_id in page
    assert "Waiting for approval (2)" in page
    home = site.client("vic").get("/").text
    assert '<a href="/orgs/acme">acme</a>' in home and "2 orders" in home


# ---------------------------------------------------------------- access file

def test_access_file_mistakes_name_file_line_and_field(tmp_path):
    path = tmp_path / "access.yaml"
    path.write_text("users:\n  amy:\n    token: ${NOPE_NOT_SET_1}\n    orgs: {acme: viewer}\n")
    with pytest.raises(SecretError) as err:
        load_access(tmp_path)
    assert str(err.value) == (f"{path}:3: users.amy.token: environment variable "
                              "NOPE_NOT_SET_1 is not set")
    path.write_text("users:\n  amy:\n    token: hunter2-literal\n    orgs: {acme: viewer}\n")
    with pytest.raises(SecretError, match="literal secrets are refused") as err:
        load_access(tmp_path)
    assert "hunter2" not in str(err.value)
    path.write_text("users:\n  amy:\n    token: ${HOME}\n    orgs:\n      acme: boss\n")
    with pytest.raises(ConfigError) as err:
        load_access(tmp_path)
    assert str(err.value) == f"{path}:5: users.amy.orgs.acme: a role is viewer or approver"
    path.write_text("users:\n  amy:\n    tokn: ${HOME}\n    orgs: {}\n")
    with pytest.raises(ConfigError, match=r"access.yaml:3: users.amy.tokn: unknown key \(a user has token and orgs\)$"):
        load_access(tmp_path)


def test_no_access_file_lets_nobody_in_and_a_broken_edit_keeps_the_old_users(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 's.sqlite'}") as store, \
            serve_asgi(create_app(store=store, config_dir=tmp_path)) as url:
        page = httpx.get(f"{url}/login")
        assert "no users are configured" in page.text
        write_access(tmp_path)
        headers = {"Authorization": f"Bearer {TOKENS['vic']}"}
        assert httpx.get(f"{url}/api/orgs", headers=headers).status_code == 200
        (tmp_path / "access.yaml").write_text("users: [oops\n")
        with capture_logs() as logs:
            assert httpx.get(f"{url}/api/orgs", headers=headers).status_code == 200
        assert logs[0]["event"] == "review.access_invalid"
        assert "access.yaml:" in logs[0]["error"]


def test_the_daemon_serves_the_review_page_beside_healthz(site):
    from restock.daemon.http import create_daemon_app

    app = create_daemon_app(None, extra_app=create_app(store=site.store, config_dir=site.folder))
    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/healthz").text == "ok\n"
        assert httpx.get(f"{url}/login").status_code == 200
        answer = httpx.get(f"{url}/api/runs", headers={"Authorization":
                                                       f"Bearer {TOKENS['vic']}"})
        assert [r["run_id"] for r in answer.json()["runs"]] == [site.run.summary.run_id]


def test_restock_serve_runs_the_review_page_on_its_own(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    with open_store(url) as store:
        seed_run(store, make_summary(6))
    write_access(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")},
           "RESTOCK_STATE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "restock.cli", "serve", "--config",
                             str(tmp_path), "--addr", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        answer = _wait_for(f"http://127.0.0.1:{port}/api/runs", TOKENS["vic"], proc)
        assert [r["run_id"] for r in answer.json()["runs"]] == ["run-0001"]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert f"review page on http://127.0.0.1:{port}/" in output
    assert TOKENS["vic"] not in output


def _wait_for(url: str, token: str, proc) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            return httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"restock serve did not answer at {url}")


def test_restock_serve_refuses_a_bad_address_in_one_line(tmp_path):
    from tests.support.daemon_kit import restock_cli

    result = restock_cli("serve", "--config", str(tmp_path), "--addr", "localhost", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "restock: --addr: must be HOST:PORT, like 127.0.0.1:8787 " \
                            "(got 'localhost')\n"


def test_an_approval_too_late_is_refused_and_never_sent(site):
    from datetime import UTC, datetime, timedelta

    from restock.domain import PurchaseOrder

    order = site.store.ledger.get(site.run.held_ids[0]).order
    late = PurchaseOrder.model_validate({**order.model_dump(), "order_id": "late-1",
                                         "idempotency_key": "restock-acme-late-1"})
    site.store.ledger.record(late, slot="late", run_id=site.run.summary.run_id,
                             status=OrderStatus.HELD,
                             expires_at=datetime.now(UTC) - timedelta(minutes=1))
    answer = site.api("alice").post("/api/orders/late-1/approve")
    assert answer.status_code == 409 and "expired" in answer.json()["error"]
    assert site.store.ledger.get("late-1").status == OrderStatus.EXPIRED
    assert site.receiver.orders == {}


def test_when_the_order_sink_is_down_the_page_says_approved_not_sent_yet(site):
    run_id, order_id = site.run.summary.run_id, site.run.held_ids[0]
    site.receiver.fail_next = [503] * 50
    answer = _approve_form(site.client("alice"), run_id, order_id)
    assert answer.status_code == 200
    entry = site.store.ledger.get(order_id)
    assert entry.status == OrderStatus.SUBMITTING and site.receiver.orders == {}
    assert (f"Order {order_id} (supplier-1) is now submitting: the order sink did not confirm "
            "it; the next run asks the downstream system and sends it only if it is not "
            "there.") in answer.text
    assert "order webhook unavailable: POST /orders: HTTP 503" in answer.text
    assert f'data-order-status="{order_id}">submitting<' in answer.text


def test_an_orgs_own_role_wins_over_the_star(tmp_path):
    from restock.web.access import Role

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "t").write_text("a-long-enough-token\n")
    (tmp_path / "access.yaml").write_text(
        "users:\n  amy:\n    token: file:secrets/t\n"
        "    orgs: {'*': approver, beta: viewer}\n")
    amy = load_access(tmp_path).by_token("a-long-enough-token")
    assert amy is not None and amy.sees_every_org()
    assert amy.may("acme", Role.APPROVER) and amy.role("beta") == Role.VIEWER
    assert not amy.may("beta", Role.APPROVER)
    assert load_access(tmp_path).by_token("a-long-enough-tokeN") is None


@pytest.mark.slow
def test_a_real_daemon_process_serves_the_review_page(tmp_path):
    from tests.support.daemon_kit import DaemonProcess

    folder = tmp_path / "config"
    write_org(folder, "http://127.0.0.1:9", tmp_path / "warehouse")
    write_access(folder)
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    with open_store(url) as store:
        seed_run(store, make_summary(6))
    daemon = DaemonProcess(folder, url, tmp_path / "daemon.log")
    try:
        base = daemon.wait_ready()
        client = httpx.Client(base_url=base, timeout=10)
        assert client.get("/healthz").text == "ok\n"
        login = client.post("/login", data={"token": TOKENS["vic"], "next": "/runs/run-0001"})
        assert login.status_code == 303 and login.headers["location"] == "/runs/run-0001"
        page = client.get("/runs/run-0001")
        assert page.status_code == 200 and 'id="glance"' in page.text
    finally:
        assert daemon.signal() == 0
    assert TOKENS["vic"] not in daemon.output()
