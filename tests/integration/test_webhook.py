"""Webhook order and summary sinks against a real receiver on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from restock.connectors import ConnectorContext
from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock_connectors.webhook import WebhookOrderSink, WebhookSummarySink
from tests.support.loopback import serve_asgi
from tests.support.receivers import OrderReceiver
from tests.support.samples import purchase_order, run_summary

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "erp-token-7d1c0f55"
FAST = {"backoff": 0.01, "max_backoff": 0.02, "max_wait": 2}


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv("ERP_TOKEN", TOKEN)
    recv = OrderReceiver(token=TOKEN)
    with serve_asgi(recv.app()) as url:
        yield recv, url


def order_sink(url: str, **extra) -> WebhookOrderSink:
    settings = WebhookOrderSink.Settings.model_validate({
        "url": f"{url}/orders", "lookup_url": f"{url}/orders/{{key}}", "retries": FAST,
        "auth": {"kind": "bearer", "token": "${ERP_TOKEN}"}, **extra})
    return WebhookOrderSink(settings, ConnectorContext(org="acme"))


def test_submit_posts_one_order_with_its_key(receiver):
    recv, url = receiver
    order = purchase_order()
    with order_sink(url) as sink:
        result = sink.submit(order, order.idempotency_key)
    assert result.accepted and not result.duplicate and result.external_id == "ERP-1"
    sent = recv.requests[0]
    assert sent["headers"]["idempotency-key"] == order.idempotency_key
    assert sent["body"]["lines"][0]["packs"] == 3            # 250 units in packs of 100
    assert sent["body"]["total"] == pytest.approx(22.5)


def test_payload_matches_the_documented_schema(receiver):
    jsonschema = pytest.importorskip("jsonschema")
    recv, url = receiver
    order = purchase_order()
    with order_sink(url) as sink:
        sink.submit(order, order.idempotency_key)
    schema = json.loads((ROOT / "docs" / "order-webhook.schema.json").read_text())
    jsonschema.validate(recv.requests[0]["body"], schema)
    bad = dict(recv.requests[0]["body"], extra_field=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_submit_twice_makes_one_order_and_lookup_finds_it(receiver):
    recv, url = receiver
    order = purchase_order()
    with order_sink(url) as sink:
        first = sink.submit(order, order.idempotency_key)
        second = sink.submit(order, order.idempotency_key)
        found = sink.lookup(order.idempotency_key)
        missing = sink.lookup("restock-acme-unknown")
    assert len(recv.orders) == 1
    assert second.duplicate and second.external_id == first.external_id
    assert found is not None and found.external_id == first.external_id
    assert missing is None


def test_5xx_is_retried_with_the_same_key(receiver):
    recv, url = receiver
    recv.fail_next[:] = [503, 500]
    recv.fail_after_store = 1
    order = purchase_order()
    with order_sink(url) as sink:
        result = sink.submit(order, order.idempotency_key)
    assert result.accepted and result.duplicate         # stored on the try that answered 502
    assert len(recv.orders) == 1
    assert {r["headers"]["idempotency-key"] for r in recv.requests} == {order.idempotency_key}
    assert len(recv.requests) == 4


def test_down_receiver_is_unavailable(receiver):
    recv, url = receiver
    recv.fail_next[:] = [503] * 10
    with order_sink(url, retries={**FAST, "attempts": 3}) as sink, \
            pytest.raises(ConnectorUnavailable, match="order webhook unavailable"):
        sink.submit(purchase_order(), "k1")
    assert recv.orders == {}


def test_wrong_token_is_rejected_without_showing_it(receiver, monkeypatch):
    recv, url = receiver
    monkeypatch.setenv("ERP_TOKEN", "wrong-token-xyz")
    with structlog.testing.capture_logs() as logs, order_sink(url) as sink, \
            pytest.raises(CredentialsRejected, match="credentials rejected by order webhook") as e:
        sink.submit(purchase_order(), "k1")
    assert "wrong-token-xyz" not in str(e.value) + repr(logs)
    assert recv.orders == {}


def test_lookup_without_url_says_so(receiver):
    _, url = receiver
    settings = WebhookOrderSink.Settings.model_validate({"url": f"{url}/orders"})
    with WebhookOrderSink(settings, ConnectorContext(org="acme")) as sink, \
            pytest.raises(ConnectorError, match="set lookup_url"):
        sink.lookup("k")


def test_summary_webhook_posts_the_run_summary(receiver):
    recv, url = receiver
    settings = WebhookSummarySink.Settings.model_validate({
        "url": f"{url}/summaries", "auth": {"kind": "bearer", "token": "${ERP_TOKEN}"}})
    summary = run_summary()
    with WebhookSummarySink(settings, ConnectorContext(org="acme")) as sink:
        sink.post(summary)
    body = recv.requests[0]["body"]
    assert body["run_id"] == "run-0001" and body["orders"][0]["supplier"] == "Acme Components"
    assert recv.requests[0]["headers"]["idempotency-key"] == "summary-run-0001"


def test_summary_webhook_body_matches_the_documented_schema(receiver):
    jsonschema = pytest.importorskip("jsonschema")
    recv, url = receiver
    settings = WebhookSummarySink.Settings.model_validate({"url": f"{url}/summaries",
                                                           "token": "${ERP_TOKEN}"})
    with WebhookSummarySink(settings, ConnectorContext(org="acme")) as sink:
        sink.post(run_summary())
    schema = json.loads((ROOT / "docs" / "summary-schema.json").read_text())
    jsonschema.validate(recv.requests[0]["body"], schema)


def test_summary_webhook_down_is_retriable(receiver):
    recv, url = receiver
    recv.fail_next[:] = [500] * 10
    settings = WebhookSummarySink.Settings.model_validate({
        "url": f"{url}/summaries", "retries": {**FAST, "attempts": 2},
        "auth": {"kind": "bearer", "token": "${ERP_TOKEN}"}})
    with WebhookSummarySink(settings, ConnectorContext(org="acme")) as sink, \
            pytest.raises(ConnectorUnavailable):
        sink.post(run_summary())


def test_token_shortcut_is_bearer_auth(receiver):
    recv, url = receiver
    settings = WebhookOrderSink.Settings.model_validate({"url": f"{url}/orders",
                                                         "token": "${ERP_TOKEN}"})
    order = purchase_order()
    with WebhookOrderSink(settings, ConnectorContext(org="acme")) as sink:
        assert sink.submit(order, order.idempotency_key).accepted
    assert recv.requests[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_token_and_auth_together_are_refused():
    with pytest.raises(ValueError, match="give token or auth, not both"):
        WebhookOrderSink.Settings.model_validate({
            "url": "http://x/orders", "token": "${HOME}",
            "auth": {"kind": "bearer", "token": "${HOME}"}})


def test_an_accepting_answer_that_is_not_json_still_accepts(receiver):
    recv, url = receiver
    recv.plain_answer = True
    order = purchase_order()
    with structlog.testing.capture_logs() as logs, order_sink(url) as sink:
        result = sink.submit(order, order.idempotency_key)
    assert result.accepted and result.external_id is None and len(recv.orders) == 1
    assert [e["event"] for e in logs] == ["webhook_answer_not_json"]


def test_lookup_answered_200_with_broken_json_still_finds_the_order():
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def broken(request):
        return Response('{"id": "ERP-1", ', media_type="application/json")

    with serve_asgi(Starlette(routes=[Route("/orders/{key}", broken)])) as url:
        settings = WebhookOrderSink.Settings.model_validate({
            "url": f"{url}/orders", "lookup_url": f"{url}/orders/{{key}}"})
        with WebhookOrderSink(settings, ConnectorContext(org="acme")) as sink:
            found = sink.lookup("k1")
    assert found is not None and found.external_id is None      # 200 means it has the order


def test_a_lookup_url_without_the_key_is_refused():
    with pytest.raises(ValueError, match="lookup_url must contain {key}"):
        WebhookOrderSink.Settings.model_validate({"url": "http://x/orders",
                                                  "lookup_url": "http://x/orders/search"})


def test_lookup_through_a_search_endpoint_that_answers_lists():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def search(request: Request):
        key = request.query_params["idempotency_key"]
        return JSONResponse([{"id": 77, "key": key}] if key == "k-known" else [])

    with serve_asgi(Starlette(routes=[Route("/orders", search)])) as url:
        settings = WebhookOrderSink.Settings.model_validate({
            "url": f"{url}/orders", "lookup_url": f"{url}/orders?idempotency_key={{key}}"})
        with WebhookOrderSink(settings, ConnectorContext(org="acme")) as sink:
            assert sink.lookup("k-unknown") is None
            found = sink.lookup("k-known")
    assert found is not None and found.external_id == "77"
