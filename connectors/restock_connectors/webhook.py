"""Webhook connector: POST each purchase order, or each run summary, as JSON to a URL.

Order sink YAML::

    order_sink:
      connector: webhook
      url: https://erp.example.com/restock/orders
      lookup_url: https://erp.example.com/restock/orders/{key}
      token: ${ERP_TOKEN}          # bearer token; or any auth: block of restock.http

Summary sink YAML::

    summary_sinks:
      - connector: webhook
        url: https://planning.example.com/restock/summaries
        token: ${PLANNING_TOKEN}

Each order is one POST (body: docs/order-webhook.schema.json) with an ``Idempotency-Key`` header;
2xx means accepted, 409 means the receiver already has that key. ``lookup`` GETs ``lookup_url``
with ``{key}`` filled in: 200 means it has the order, 404 (or 200 with an empty JSON list, as
a search endpoint answers) means it has not.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any
from urllib.parse import quote

from pydantic import model_validator

from restock.config import SecretRef
from restock.connectors import ConnectorContext, OrderSink, SubmitResult, SummarySink
from restock.domain import PurchaseOrder, RunSummary
from restock.errors import ConnectorError
from restock.http import (
    BearerAuth,
    HttpClient,
    HttpOptions,
    HttpSettings,
    HttpUrl,
    Response,
    client,
    dig,
)
from restock.log import get_logger
from restock_connectors._orders import order_payload

log = get_logger("restock.webhook")


class _WebhookOptions(HttpOptions):
    """HTTP options plus ``token``, a shortcut for ``auth: {kind: bearer, token: ...}``."""

    url: HttpUrl
    token: SecretRef | None = None

    @model_validator(mode="after")
    def _token_or_auth(self) -> _WebhookOptions:
        if self.token is not None and self.auth is not None:
            raise ValueError("give token or auth, not both")
        return self

    def for_url(self) -> HttpSettings:
        """The client settings, with the token shortcut turned into bearer auth."""
        settings = self.http_settings(self.url)
        if self.token is None:
            return settings
        return settings.model_copy(update={"auth": BearerAuth(kind="bearer", token=self.token)})


class WebhookOrderSettings(_WebhookOptions):
    lookup_url: HttpUrl | None = None       # GET; ``{key}`` is replaced by the idempotency key
    id_field: str = "id"                    # dotted path of the receiver's id in its answer

    def advice(self) -> list[str]:
        if self.lookup_url is not None:
            return []
        return [("no lookup_url: an order whose outcome is unknown (the connection dropped after "
                "sending) cannot be checked with the receiver, so it stays `submitting` and is "
                "reported every run until a person looks (`restock orders --org ORG --status submitting`)")]

    @model_validator(mode="after")
    def _lookup_names_the_key(self) -> WebhookOrderSettings:
        # without {key} every lookup asks the same URL: any order would look already sent
        if self.lookup_url is not None and "{key}" not in self.lookup_url:
            raise ValueError("lookup_url must contain {key}, where the idempotency key goes")
        return self


class WebhookOrderSink(OrderSink):
    """POSTs one JSON purchase order per supplier, exactly once per idempotency key."""

    Settings = WebhookOrderSettings
    name = "webhook"
    settings: WebhookOrderSettings

    def __init__(self, settings: WebhookOrderSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http: HttpClient = client(settings.for_url(), "order webhook")

    def submit(self, order: PurchaseOrder, idempotency_key: str) -> SubmitResult:
        response = self.http.request("POST", self.settings.url, ok=(409,),
                                     json=order_payload(order, idempotency_key),
                                     headers={"Idempotency-Key": idempotency_key})
        return SubmitResult(accepted=True, external_id=self._id_in(self._body(response)),
                            duplicate=response.status_code == 409,
                            detail=f"HTTP {response.status_code}")

    def lookup(self, idempotency_key: str) -> SubmitResult | None:
        """404, or 200 with an empty list (a search that found nothing): not there."""
        if not self.settings.lookup_url:
            raise ConnectorError(self.http.system, "cannot look orders up: set lookup_url")
        url = self.settings.lookup_url.replace("{key}", quote(idempotency_key, safe=""))
        response = self.http.request("GET", url, ok=(404,))
        if response.status_code == 404:
            return None
        body = self._body(response)
        if isinstance(body, list):
            if not body:
                return None
            body = body[0]
        return SubmitResult(accepted=True, external_id=self._id_in(body), duplicate=True,
                            detail="found by lookup")

    def _body(self, response: Response) -> Any:
        """The answer as JSON, or None when it is empty or not JSON.

        The status code is what accepts an order; an answer without a readable body must not
        turn a stored order into a failure, so it is logged and passed over.
        """
        if not response.content.strip():
            return None
        try:
            return jsonlib.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            log.warning("webhook_answer_not_json", system=self.http.system,
                        status=response.status_code)
            return None

    def _id_in(self, body: Any) -> str | None:
        """The receiver's id for the order, if its answer names one."""
        if not isinstance(body, dict):
            return None
        try:
            value = dig(body, self.settings.id_field)
        except ConnectorError:
            return None
        return None if value is None else str(value)

    def close(self) -> None:
        self.http.close()


class WebhookSummarySettings(_WebhookOptions):
    pass


class WebhookSummarySink(SummarySink):
    """POSTs the RunSummary as JSON (docs/summary-schema.json); the run id is the idempotency key."""

    Settings = WebhookSummarySettings
    name = "webhook"
    settings: WebhookSummarySettings

    def __init__(self, settings: WebhookSummarySettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http: HttpClient = client(settings.for_url(), "summary webhook")

    def post(self, summary: RunSummary) -> None:
        self.http.request("POST", self.settings.url, json=summary.model_dump(mode="json"),
                          headers={"Idempotency-Key": f"summary-{summary.run_id}"}, ok=(409,))

    def close(self) -> None:
        self.http.close()


order_sink = WebhookOrderSink
summary_sink = WebhookSummarySink
