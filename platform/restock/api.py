"""The review service: the review page (HTML) and its HTTP API (JSON), as one Starlette app.

``create_app(store=..., config_dir=...)`` is mounted by the daemon beside /healthz and served
alone by ``restock serve``. Access comes from ``<config_dir>/access.yaml`` (see docs/review.md):
a browser logs in with its token; programs send ``Authorization: Bearer <token>``.

JSON API (a viewer reads, an approver also decides):

- ``GET  /api/orgs`` · ``GET /api/runs?org=ORG&limit=N`` · ``GET /api/runs/{run_id}`` (the
  RunSummary, each order with its current status) · ``GET /api/runs/{run_id}/report.{md,html}``
- ``GET  /api/orgs/{org}/orders?status=held`` · ``GET /api/orders/{order_id}`` (with its audit trail)
- ``POST /api/orders/{order_id}/approve`` ``{"quantities": {"SKU": 12}, "comment": "..."}``
- ``POST /api/orders/{order_id}/reject`` ``{"reason": "..."}``
- ``GET  /api/orgs/{org}/models?sku=SKU``
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from restock import approval
from restock.errors import LedgerConflict, RestockError
from restock.store import OrderStatus, Store
from restock.web import pages
from restock.web.access import Role, User
from restock.web.service import (
    NotAllowed,
    NotFound,
    Review,
    current_user,
    entry_json,
    guess_wait,
    live_summary,
    log,
    requested_summary,
    require,
    review,
)

__all__ = ["create_app"]


def create_app(store: Store, config_dir: str | Path = "config") -> Starlette:
    """The review page and API over ``store``, with org files and access.yaml in ``config_dir``."""
    app = Starlette(routes=_page_routes() + _api_routes())
    app.state.review = Review(store=store, config_dir=Path(config_dir))
    app.state.review.access()       # a broken access file is reported at start, not at login
    return app


def _page_routes() -> list[Route]:
    return [
        Route("/", pages.home), Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/orgs/{org}", pages.org_page), Route("/orgs/{org}/models", pages.models_page),
        Route("/runs/{run_id}", pages.run_page), Route("/runs/{run_id}/report", pages.report_file),
        Route("/orders/{order_id}", pages.order_page),
        Route("/orders/{order_id}/{action:str}", pages.decide, methods=["POST"]),
        Route("/static/{name}", pages.static),
    ]


def _api_routes() -> list[Route]:
    return [
        Route("/api/orgs", _api(orgs)), Route("/api/runs", _api(runs)),
        Route("/api/runs/{run_id}", _api(run)),
        Route("/api/runs/{run_id}/report.{fmt}", _api(report)),
        Route("/api/orgs/{org}/orders", _api(org_orders)),
        Route("/api/orgs/{org}/models", _api(models)),
        Route("/api/orders/{order_id}", _api(order)),
        Route("/api/orders/{order_id}/{action}", _api(decide, json_body=True), methods=["POST"]),
    ]


def _api(handler, *, json_body: bool = False):
    """Bearer (or session) auth, then the handler in a thread; errors become JSON with a code."""
    async def endpoint(request: Request) -> Response:
        wait = guess_wait(request) if "authorization" in request.headers else 0.0
        if wait:
            return JSONResponse({"error": "too many wrong tokens from this address"},
                                status_code=429, headers={"Retry-After": str(math.ceil(wait))})
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "a valid bearer token is required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        body = await _body(request) if json_body else None
        if isinstance(body, Response):
            return body
        from starlette.concurrency import run_in_threadpool
        try:
            result = await run_in_threadpool(handler, request, user, *([body] if json_body else []))
        except NotAllowed as err:
            return JSONResponse({"error": str(err)}, status_code=403)
        except NotFound as err:
            return JSONResponse({"error": str(err)}, status_code=404)
        except LedgerConflict as err:
            return JSONResponse({"error": str(err)}, status_code=409)
        except RestockError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        return result if isinstance(result, Response) else JSONResponse(result)
    return endpoint


async def _body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"error": "the body must be JSON"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    return body


def orgs(request: Request, user: User) -> dict[str, Any]:
    return {"orgs": [{"org": org, "role": user.role(org).name.lower()}
                     for org in review(request).orgs_for(user)]}


def runs(request: Request, user: User) -> dict[str, Any]:
    org = request.query_params.get("org")
    limit = _int(request.query_params.get("limit", "50"), "limit")
    if org is not None:
        require(user, org)
    rows = [r for r in review(request).store.runs.list(org, limit=limit) if user.role(r.org)]
    return {"runs": [{**asdict(r), "as_of": r.as_of.isoformat() if r.as_of else None,
                      "started_at": r.started_at.isoformat(),
                      "finished_at": r.finished_at.isoformat() if r.finished_at else None}
                     for r in rows]}


def _int(text: str, name: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise RestockError(f"{name} must be a whole number from 1 to 1000 (got {text[:20]!r})")
    return int(text)


def run(request: Request, user: User) -> Response:
    summary = live_summary(review(request).store, requested_summary(request, user))
    return Response(summary.model_dump_json(), media_type="application/json")


def report(request: Request, user: User) -> Response:
    from restock.report import render_html, render_markdown

    fmt = request.path_params["fmt"]
    if fmt not in ("md", "html"):
        raise NotFound(f"no report format {fmt!r} (md or html)")
    summary = requested_summary(request, user)
    if fmt == "md":
        return PlainTextResponse(render_markdown(summary), media_type="text/markdown")
    return Response(render_html(summary), media_type="text/html")


def org_orders(request: Request, user: User) -> dict[str, Any]:
    org = request.path_params["org"]
    require(user, org)
    status = request.query_params.get("status")
    statuses = None
    if status is not None:
        try:
            statuses = [OrderStatus(status)]
        except ValueError:
            raise RestockError(f"status must be one of "
                               f"{', '.join(s.value for s in OrderStatus)}") from None
    entries = review(request).store.ledger.list(org, statuses)
    return {"orders": [entry_json(e) for e in entries]}


def _entry(request: Request, user: User, role: Role = Role.VIEWER):
    order_id = request.path_params["order_id"]
    entry = review(request).store.ledger.find(order_id)
    if entry is None:
        raise NotFound(f"no order {order_id!r}")
    require(user, entry.org, role)
    return entry


def order(request: Request, user: User) -> dict[str, Any]:
    entry = _entry(request, user)
    events = review(request).store.ledger.events(entry.order_id)
    return {**entry_json(entry), "events": [
        {"at": e.at.isoformat(), "actor": e.actor, "from": e.from_status, "to": e.to_status,
         "comment": e.comment, "changes": e.changes} for e in events]}


def decide(request: Request, user: User, body: dict[str, Any]) -> dict[str, Any]:
    action = request.path_params["action"]
    if action not in ("approve", "reject"):
        raise NotFound(f"no action {action!r} (approve or reject)")
    entry = _entry(request, user, Role.APPROVER)
    rv = review(request)
    config, actor = rv.org_config(entry.org), f"{user.name} (API)"
    if action == "reject":
        decision = approval.reject(rv.store, config, entry.order_id, actor=actor,
                                   reason=str(body.get("reason") or ""))
    else:
        decision = approval.approve(rv.store, config, entry.order_id, actor=actor,
                                    quantities=_quantities(body.get("quantities")),
                                    comment=str(body["comment"]) if body.get("comment") else None)
    log.info(f"review.{action}d", org=entry.org, order=entry.order_id, user=user.name)
    return {**entry_json(decision.entry), "sent": decision.sent, "problem": decision.problem}


def _quantities(value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(q, (int, float)) and not isinstance(q, bool) for q in value.values()):
        raise RestockError('quantities must be an object of SKU to number, e.g. {"A1": 12}')
    return {str(sku): float(q) for sku, q in value.items()}


def models(request: Request, user: User) -> dict[str, Any]:
    org = request.path_params["org"]
    require(user, org)
    sku = request.query_params.get("sku")
    catalog = review(request).store.models
    rows = catalog.history(org, sku) if sku else catalog.latest(org)
    return {"models": [_model_json(e) for e in rows]}


def _model_json(entry: Any) -> dict[str, Any]:
    data = asdict(entry)
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
