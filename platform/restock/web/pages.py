"""The review page: server-rendered HTML (Jinja2) with a few lines of JavaScript.

Logged-in people see the orgs they have a role in, each org's runs, a run's report with the held
orders to approve (quantities editable) or reject, an order's audit trail, and the model catalog.
Every form posts a CSRF token bound to the session; decisions go through ``restock.approval``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from restock import approval
from restock.errors import LedgerConflict, RestockError
from restock.report.facts import count, fmt_money, fmt_pct, fmt_qty
from restock.report.html import report_context
from restock.store import OrderStatus
from restock.web.access import SESSION_SECONDS, Role, User, csrf_ok, csrf_token, new_session
from restock.web.service import (
    SESSION_COOKIE,
    NotAllowed,
    NotFound,
    current_user,
    guess_wait,
    live_summary,
    log,
    requested_summary,
    require,
    review,
    token_user,
)

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_MAX_EDITABLE_LINES = 300   # a bigger held order is edited with `restock approve --quantity`
_MAX_FORM_BYTES = 1 << 20


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Templates of the review page; the report's own templates are reachable too."""
    env = Environment(loader=ChoiceLoader([PackageLoader("restock.web", "templates"),
                                           PackageLoader("restock.report", "templates")]),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(qty=fmt_qty, money=fmt_money, pct=fmt_pct, count=count)
    return env


def page(request: Request, template: str, status: int = 200, *,
         headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A rendered page, with the session's CSRF token for its forms; never cached."""
    user = context.pop("user", None)
    session = request.cookies.get(SESSION_COOKIE)
    csrf = csrf_token(user, session) if user is not None and session else ""
    html = environment().get_template(template).render(
        base=request.scope.get("root_path", ""), user=user, csrf=csrf, **context)
    return HTMLResponse(html, status_code=status, headers={**_NO_STORE, **(headers or {})})


_NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
             "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"}


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    base = request.scope.get("root_path", "")
    return RedirectResponse(f"{base}/login?{urlencode({'next': target})}", status_code=303)


def _guarded(handler):
    """Pages need a logged-in user; a missing role is a 403 page, a missing thing a 404 page."""
    def wrapped(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return _login_redirect(request)
        try:
            return handler(request, user)
        except NotAllowed as err:
            return page(request, "error.html.j2", 403, user=user, title="Not allowed",
                        message=str(err))
        except NotFound as err:
            return page(request, "error.html.j2", 404, user=user, title="Not found",
                        message=str(err))
    return wrapped


# ---------------------------------------------------------------- login

def login_form(request: Request) -> Response:
    return page(request, "login.html.j2", next=_safe_next(request.query_params.get("next")),
                problem=None, configured=bool(review(request).access().users))


async def read_form(request: Request) -> dict[str, str]:
    """A posted URL-encoded form (the only kind these pages send), capped at 1 MB."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def login(request: Request) -> Response:
    form = await read_form(request)
    access = review(request).access()
    target = _safe_next(form.get("next"))
    wait = guess_wait(request)
    if wait:
        log.warning("review.login_throttled", client=_client(request))
        return page(request, "login.html.j2", 429, next=target, configured=bool(access.users),
                    problem=f"Too many wrong tokens from here: try again in {math.ceil(wait)} s.",
                    headers={"Retry-After": str(math.ceil(wait))})
    user = token_user(request, str(form.get("token", "")).strip())
    if user is None:
        log.warning("review.login_refused", client=_client(request))
        return page(request, "login.html.j2", 401, next=target, configured=bool(access.users),
                    problem="That token is not valid here.")
    log.info("review.login", user=user.name, client=_client(request))
    response = RedirectResponse(request.scope.get("root_path", "") + target, status_code=303)
    response.set_cookie(SESSION_COOKIE, new_session(user), max_age=SESSION_SECONDS,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse(request.scope.get("root_path", "") + "/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _safe_next(value: Any) -> str:
    # Only paths on this site: an open redirect would make a phishing link look like ours.
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text \
        else "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


# ---------------------------------------------------------------- orgs and runs

@_guarded
def home(request: Request, user: User) -> Response:
    store = review(request).store
    rows = []
    for org in review(request).orgs_for(user):
        runs = store.runs.list(org, limit=1)
        held = store.ledger.list(org, [OrderStatus.HELD])
        rows.append({"org": org, "last": runs[0] if runs else None, "held": len(held),
                     "role": user.role(org).name.lower()})
    return page(request, "home.html.j2", user=user, rows=rows)


@_guarded
def org_page(request: Request, user: User) -> Response:
    org = request.path_params["org"]
    require(user, org)
    store = review(request).store
    held = store.ledger.list(org, [OrderStatus.HELD])
    return page(request, "org.html.j2", user=user, org=org, runs=store.runs.list(org, limit=100),
                held=held, approver=user.may(org, Role.APPROVER))


@_guarded
def run_page(request: Request, user: User) -> Response:
    return _run_view(request, user)


def _run_view(request: Request, user: User, *, status: int = 200, problem: str | None = None,
              decided: str | None = None) -> Response:
    store = review(request).store
    summary = requested_summary(request, user)
    previous = store.runs.summary(summary.previous_run_id) if summary.previous_run_id else \
        store.runs.latest_summary(summary.org, before=summary.run_id)
    if previous is not None and previous.started_at > summary.started_at:
        previous = None
    live = live_summary(store, summary)
    context = report_context(live, previous=previous, max_charts=0)
    return page(request, "run.html.j2", status, user=user, **context,
                approver=user.may(summary.org, Role.APPROVER), problem=problem,
                notice=_notice(store, decided or request.query_params.get("order")), editable_lines=_MAX_EDITABLE_LINES)


def _notice(store: Any, order_id: str | None) -> str | None:
    entry = store.ledger.find(order_id) if order_id else None
    if entry is None:
        return None
    text = f"Order {entry.order_id} ({entry.supplier}) is now {entry.status}"
    if entry.external_id:
        text += f" — the downstream system has it as {entry.external_id}"
    elif entry.status in _NOT_SENT:
        text += _NOT_SENT[entry.status] + (f" ({entry.detail})" if entry.detail else "")
    return text + "."


_NOT_SENT = {
    OrderStatus.APPROVED: ", not sent yet: the next run sends it",
    OrderStatus.SUBMITTING: ": the order sink did not confirm it; the next run asks the "
                            "downstream system and sends it only if it is not there",
    OrderStatus.FAILED: ": the downstream system refused it",
}


def _chart_data(request: Request, summary: Any) -> tuple[Any, Any]:
    """The charted items' history and forecast, read from the org's source as the CLI's report
    does; without a loadable org file the charts keep what the summary knows."""
    from restock.report.sources import chart_frames

    try:
        config = review(request).org_config(summary.org)
    except RestockError:
        return None, None
    return chart_frames(config, summary)


@_guarded
def report_file(request: Request, user: User) -> Response:
    """The run's standalone HTML report (as sinks and ``restock runs show`` write it)."""
    from restock.report import render_html

    summary = requested_summary(request, user)
    history, forecasts = _chart_data(request, summary)
    return HTMLResponse(render_html(summary, history=history, forecasts=forecasts,
                                    max_charts=6), headers={
        "Content-Disposition": f'inline; filename="{summary.run_id}.html"'})


@_guarded
def order_page(request: Request, user: User) -> Response:
    store = review(request).store
    entry = store.ledger.find(request.path_params["order_id"])
    if entry is None:
        raise NotFound(f"no order {request.path_params['order_id']!r}")
    require(user, entry.org)
    return page(request, "order.html.j2", user=user, entry=entry,
                events=store.ledger.events(entry.order_id))


@_guarded
def models_page(request: Request, user: User) -> Response:
    from restock.forecast.select import CHOSEN_BY

    org = request.path_params["org"]
    require(user, org)
    sku = request.query_params.get("sku")
    catalog = review(request).store.models
    rows = catalog.history(org, sku) if sku else catalog.latest(org)
    return page(request, "models.html.j2", user=user, org=org, sku=sku, rows=rows,
                reasons=CHOSEN_BY)


# ---------------------------------------------------------------- decisions

async def decide(request: Request) -> Response:
    """POST /orders/{order_id}/approve|reject from the run page's forms."""
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    form = await read_form(request)
    if not csrf_ok(user, request.cookies.get(SESSION_COOKIE), form.get("csrf")):
        return page(request, "error.html.j2", 403, user=user, title="Form expired",
                    message="This form is no longer valid (logged out, or opened elsewhere). "
                            "Reload the page and try again.")
    from starlette.concurrency import run_in_threadpool
    return await run_in_threadpool(_decide, request, user, form)


def _decide(request: Request, user: User, form: dict[str, str]) -> Response:
    rv = review(request)
    order_id, action = request.path_params["order_id"], request.path_params["action"]
    entry = rv.store.ledger.find(order_id)
    if entry is None:
        return page(request, "error.html.j2", 404, user=user, title="Not found",
                    message=f"no order {order_id!r}")
    if not user.may(entry.org, Role.APPROVER):
        return page(request, "error.html.j2", 403, user=user, title="Not allowed",
                    message=f"{user.name} may not approve in org {entry.org!r}")
    back = _safe_next(form.get("back") or f"/runs/{entry.run_id}")
    request.path_params["run_id"] = entry.run_id
    try:
        problem = _apply(rv, user, entry, action, form)
    except RestockError as err:
        code = 409 if isinstance(err, LedgerConflict) else 400
        return _run_view(request, user, status=code, problem=f"{order_id}: {err}")
    if problem:     # decided, but not sent: say why now, the ledger has no room for it
        return _run_view(request, user, problem=f"{order_id}: {problem}", decided=order_id)
    base = request.scope.get("root_path", "")
    return RedirectResponse(f"{base}{back}?order={quote(order_id)}"
                            f"#order-{quote(order_id)}", status_code=303)


def _apply(rv: Any, user: User, entry: Any, action: str, form: dict[str, str]) -> str | None:
    """Carry out the decision; returns what went wrong sending an approved order, if anything."""
    config = rv.org_config(entry.org)
    actor = f"{user.name} (review page)"
    if action not in ("approve", "reject"):
        raise RestockError(f"no action {action!r} (approve or reject)")
    if action == "reject":
        approval.reject(rv.store, config, entry.order_id, actor=actor,
                        reason=str(form.get("reason", "")))
        log.info("review.rejected", org=entry.org, order=entry.order_id, user=user.name)
        return None
    decision = approval.approve(rv.store, config, entry.order_id, actor=actor,
                                quantities=form_quantities(form, entry.order),
                                comment=str(form.get("comment") or "").strip() or None)
    log.info("review.approved", org=entry.org, order=entry.order_id, user=user.name,
             sent=decision.sent, problem=decision.problem)
    return decision.problem


def form_quantities(form: Any, order: Any) -> dict[str, float]:
    """The quantities a form changed (fields ``qty:<sku>``); a bad number names its SKU."""
    current = {line.sku: line.quantity for line in order.lines}
    edits: dict[str, float] = {}
    for key, raw in form.items():
        if not key.startswith("qty:") or str(raw).strip() == "":
            continue
        sku = key[4:]
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise RestockError(f"{sku}: quantity must be a number (got {str(raw)[:20]!r})") \
                from None
        if not math.isfinite(value):
            raise RestockError(f"{sku}: quantity must be a number (got {str(raw)[:20]!r})")
        if sku in current and value != current[sku]:
            edits[sku] = value
        elif sku not in current:
            edits[sku] = value          # approval names the unknown SKU
    return edits


# ---------------------------------------------------------------- assets

def static(request: Request) -> Response:
    name = request.path_params["name"]
    suffix = name[name.rfind("."):] if "." in name else ""
    if suffix not in _STATIC_TYPES or "/" in name:
        return Response("not found", status_code=404)
    try:
        body = resources.files("restock.web.static").joinpath(name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return Response("not found", status_code=404)
    return Response(body, media_type=_STATIC_TYPES[suffix],
                    headers={"Cache-Control": "max-age=300"})
