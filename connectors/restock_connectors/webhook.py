"""Webhook connector: POST each purchase order, or each run summary, as JSON to a URL.

Order sink YAML::

    order_sink:
      connector: webhook
      url: https://erp.example.com/restock/orders
      lookup_url: https://erp.example.com/restock/orders/{key}
      auth: {kind: bearer, token: ${ERP_TOKEN}}

Each order is one POST (body: docs/order-webhook.schema.json) with an ``Idempotency-Key`` header;
2xx means accepted, 409 means the receiver already has that key. ``lookup`` GETs ``lookup_url``
with ``{key}`` filled in: 200 means it has the order, 404 means it has not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from restock.connectors import ConnectorContext, OrderSink, SubmitResult, SummarySink
from restock.domain import PurchaseOrder, RunSummary
from restock.errors import ConnectorError
from restock.http import HttpClient, HttpOptions, HttpUrl, client, dig

from restock_connectors._orders import order_payload


class WebhookOrderSettings(HttpOptions):
    url: HttpUrl
    lookup_url: HttpUrl | None = None       # GET; ``{key}`` is replaced by the idempotency key
    id_field: str = "id"                    # dotted path of the receiver's id in its answer


class WebhookOrderSink(OrderSink):
    """POSTs one JSON purchase order per supplier, exactly once per idempotency key."""

    Settings = WebhookOrderSettings
    name = "webhook"
    settings: WebhookOrderSettings

    def __init__(self, settings: WebhookOrderSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http: HttpClient = client(settings.http_settings(settings.url), "order webhook")

    def submit(self, order: PurchaseOrder, idempotency_key: str) -> SubmitResult:
        response = self.http.request("POST", self.settings.url, ok=(409,),
                                     json=order_payload(order, idempotency_key),
                                     headers={"Idempotency-Key": idempotency_key})
        body = response.json() if response.content.strip() else None
        return SubmitResult(accepted=True, external_id=self._external_id(body),
                            duplicate=response.status_code == 409,
                            detail=f"HTTP {response.status_code}")

    def lookup(self, idempotency_key: str) -> SubmitResult | None:
        if not self.settings.lookup_url:
            raise ConnectorError(self.http.system, "cannot look orders up: set lookup_url")
        url = self.settings.lookup_url.replace("{key}", quote(idempotency_key, safe=""))
        response = self.http.request("GET", url, ok=(404,))
        if response.status_code == 404:
            return None
        body = response.json() if response.content.strip() else None
        return SubmitResult(accepted=True, external_id=self._external_id(body), duplicate=True,
                            detail="found by lookup")

    def _external_id(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return None
        try:
            value = dig(body, self.settings.id_field)
        except ConnectorError:
            return None
        return None if value is None else str(value)

    def close(self) -> None:
        self.http.close()


class WebhookSummarySettings(HttpOptions):
    url: HttpUrl


class WebhookSummarySink(SummarySink):
    """POSTs the RunSummary as JSON (docs/summary-schema.json); the run id is the idempotency key."""

    Settings = WebhookSummarySettings
    name = "webhook"
    settings: WebhookSummarySettings

    def __init__(self, settings: WebhookSummarySettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http: HttpClient = client(settings.http_settings(settings.url), "summary webhook")

    def post(self, summary: RunSummary) -> None:
        self.http.request("POST", self.settings.url, json=summary.model_dump(mode="json"),
                          headers={"Idempotency-Key": f"summary-{summary.run_id}"}, ok=(409,))

    def close(self) -> None:
        self.http.close()


order_sink = WebhookOrderSink
summary_sink = WebhookSummarySink
