"""Downstream systems for connector tests: ASGI apps that behave like well-kept receivers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class OrderReceiver:
    """An order endpoint that stores one order per Idempotency-Key, like a careful ERP.

    ``fail_next`` lists statuses to answer (in order) before behaving; ``token`` requires a bearer.
    ``fail_after_store`` answers 502 *after* storing, as a proxy timing out would.
    """

    token: str | None = None
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    fail_after_store: int = 0
    plain_answer: bool = False          # answer a stored order with text, not JSON

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/orders", self._post, methods=["POST"]),
                                 Route("/orders/{key}", self._get, methods=["GET"]),
                                 Route("/summaries", self._post_summary, methods=["POST"])])

    def _denied(self, request: Request) -> Response | None:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"detail": "invalid token"}, status_code=401)
        if self.fail_next:
            return Response("unavailable", status_code=self.fail_next.pop(0),
                            headers={"Retry-After": "0"})
        return None

    async def _post(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append({"headers": dict(request.headers), "body": body})
        denied = self._denied(request)
        if denied:
            return denied
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"detail": "Idempotency-Key required"}, status_code=400)
        if key in self.orders:
            return JSONResponse({"id": self.orders[key]["id"]}, status_code=409)
        self.orders[key] = {"id": f"ERP-{len(self.orders) + 1}", "body": body}
        if self.fail_after_store:
            self.fail_after_store -= 1
            return Response("gateway timeout", status_code=502)
        if self.plain_answer:
            return Response("<html>Thanks!</html>", status_code=200, media_type="text/html")
        return JSONResponse({"id": self.orders[key]["id"]}, status_code=201)

    async def _get(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        order = self.orders.get(request.path_params["key"])
        if order is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse({"id": order["id"], "status": "received"})

    async def _post_summary(self, request: Request) -> Response:
        self.requests.append({"headers": dict(request.headers),
                              "body": json.loads(await request.body())})
        denied = self._denied(request)
        return denied or JSONResponse({"ok": True})
