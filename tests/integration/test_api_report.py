"""Every number in the report matches the ledger: a real cycle over a generated warehouse, orders
submitted to a real receiver and some held by the order-value guard; the report's headline
numbers, order totals, statuses and every line are read back from the HTML and compared with the
ledger rows (and the receiver) — before and after a held order is approved on the page."""

from __future__ import annotations

import re
from datetime import date

import httpx
import pytest

from restock.api import create_app
from restock.config import load_org
from restock.cycle import run_org
from restock.demo import generate
from restock.report.facts import fmt_money
from restock.store import OrderStatus, open_store
from tests.e2e.review_kit import TOKENS, write_access, write_org
from tests.support.loopback import serve_asgi
from tests.support.receivers import OrderReceiver
from tests.unit.test_report import _Tables

pytestmark = pytest.mark.slow


@pytest.fixture
def cycle(tmp_path):
    receiver = OrderReceiver()
    # Not PINNED_END: on that warehouse the value guard holds this org's only order.
    generate(tmp_path / "warehouse", skus=40, seed=11, end=date(2026, 11, 24))
    with serve_asgi(receiver.app()) as receiver_url:
        path = write_org(tmp_path, receiver_url, tmp_path / "warehouse", mode="auto")
        path.write_text(path.read_text().replace(
            "policy: {", "policy: {max_order_value: 400, "), encoding="utf-8")
        write_access(tmp_path)
        with open_store(f"sqlite:///{tmp_path / 'state.sqlite'}") as store:
            summary = run_org(load_org(path), store=store)
            with serve_asgi(create_app(store=store, config_dir=tmp_path)) as url:
                yield url, store, summary, receiver


def _read(html: str) -> tuple[_Tables, dict[str, str], dict[str, str]]:
    tables = _Tables()
    tables.feed(html)
    statuses = dict(re.findall(r'data-order-status="([^"]+)">([a-z]+)<', html))
    totals = dict(re.findall(r'data-order-total="([^"]+)">([^<]+)<', html))
    return tables, statuses, totals


def _check_against_ledger(html: str, store, run_id: str, receiver: OrderReceiver) -> None:
    tables, statuses, totals = _read(html)
    entries = store.ledger.list(run_id=run_id)
    held = [e for e in entries if e.status == OrderStatus.HELD]
    sent = [e for e in entries if e.status == OrderStatus.SUBMITTED]
    assert held and sent, "the guard should hold some orders and let others go"
    assert int(tables.metrics["lines_held"]) == sum(len(e.order.lines) for e in held)
    assert float(tables.metrics["held_value"]) == pytest.approx(sum(e.order.total for e in held))
    assert int(tables.metrics["lines_ordered"]) == sum(len(e.order.lines) for e in sent)
    assert float(tables.metrics["spend"]) == pytest.approx(sum(e.order.total for e in sent),
                                                           abs=0.01)
    for entry in entries:
        order = entry.order
        assert statuses[entry.order_id] == str(entry.status)
        assert totals[entry.order_id] == fmt_money(order.total, order.currency)
        rows = tables.rows[entry.order_id]
        assert [r[0] for r in rows] == [line.sku for line in order.lines]
        for (_sku, _desc, qty, price, value, _why), line in zip(rows, order.lines, strict=True):
            assert float(qty.replace(",", "")) == line.quantity
            assert price == fmt_money(line.unit_price)
            assert value == fmt_money(line.value)
    assert set(receiver.orders) == {e.key for e in sent}


def test_every_number_in_the_report_matches_the_ledger(cycle):
    url, store, summary, receiver = cycle
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                       timeout=60)
    report = api.get(f"/api/runs/{summary.run_id}/report.html")
    assert report.status_code == 200
    _check_against_ledger(report.text, store, summary.run_id, receiver)

    approved = store.ledger.list(run_id=summary.run_id, statuses=[OrderStatus.HELD])[0]
    answer = api.post(f"/api/orders/{approved.order_id}/approve")
    assert answer.json()["status"] == "submitted"
    page = httpx.Client(base_url=url, timeout=60)
    page.post("/login", data={"token": TOKENS["alice"], "next": "/"})
    live = page.get(f"/runs/{summary.run_id}").text
    tables, statuses, _ = _read(live)
    assert statuses[approved.order_id] == "submitted"
    still_held = store.ledger.list(run_id=summary.run_id, statuses=[OrderStatus.HELD])
    assert int(tables.metrics["lines_held"]) == sum(len(e.order.lines) for e in still_held)
    assert set(receiver.orders) == {e.key for e in store.ledger.list(
        run_id=summary.run_id, statuses=[OrderStatus.SUBMITTED])}


def test_report_command_charts_history_and_forecast_read_from_the_source(cycle, monkeypatch,
                                                                          capsys, tmp_path):
    from restock.cli import main

    _url, store, _summary, _receiver = cycle
    folder = tmp_path     # the cycle fixture's config folder (orgs/acme.yaml, access.yaml)
    monkeypatch.setenv("RESTOCK_STATE_URL", str(store.engine.url))
    target = tmp_path / "report.html"
    assert main(["report", "--org", "acme", "--config", str(folder), "--out", str(target)]) == 0
    assert capsys.readouterr().err == ""
    html = target.read_text()
    assert html.count("<svg") >= 2
    assert ">history<" in html and ">forecast<" in html and "q0.05–q0.95" in html
    assert ">with this order<" in html
    assert main(["report", "--org", "acme", "--config", str(folder), "--out", str(target),
                 "--no-history"]) == 0
    bare = target.read_text()
    assert ">history<" not in bare and ">with this order<" in bare


def test_the_review_pages_report_charts_history_and_forecast_from_the_source(cycle):
    url, _store, summary, _receiver = cycle
    page = httpx.Client(base_url=url, timeout=60)
    page.post("/login", data={"token": TOKENS["alice"], "next": "/"})
    html = page.get(f"/runs/{summary.run_id}/report").text
    assert html.count("<svg") >= 2
    assert ">history<" in html and ">forecast<" in html and ">with this order<" in html
