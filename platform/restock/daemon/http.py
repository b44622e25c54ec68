"""The daemon's HTTP face: liveness, readiness, Prometheus metrics, status and manual triggers.

``create_daemon_app(daemon)`` is a Starlette app; :class:`HttpServer` serves it with uvicorn in a
background thread. When ``restock.api.create_app`` exists, the review API is mounted under it.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from restock.daemon.metrics import CONTENT_TYPE
from restock.log import get_logger

if TYPE_CHECKING:
    from restock.daemon.core import Daemon

log = get_logger("restock.daemon.http")
TRIGGER_WAIT_SECONDS = 600.0


def create_daemon_app(daemon: Daemon, *, extra_app: Any = None) -> Starlette:
    """Routes of the running daemon; ``extra_app`` (the review API) is mounted at ``/``."""

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        problems = await asyncio.to_thread(_readiness_problems, daemon)
        if problems:
            return JSONResponse({"ready": False, "problems": problems}, status_code=503)
        return JSONResponse({"ready": True, "orgs": len(daemon.files.configs)})

    async def metrics(_: Request) -> Response:
        return Response(daemon.metrics.render(), media_type=CONTENT_TYPE)

    async def status(_: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(daemon_status, daemon))

    async def trigger(request: Request) -> Response:
        return await _trigger(daemon, request)

    routes: list[Any] = [Route("/healthz", healthz), Route("/readyz", readyz),
                         Route("/metrics", metrics), Route("/status", status),
                         Route("/trigger/{org}", trigger, methods=["POST"])]
    if extra_app is not None:
        routes.append(Mount("/", app=extra_app))
    return Starlette(routes=routes)


def _readiness_problems(daemon: Daemon) -> list[str]:
    problems = []
    if daemon.stopping.is_set():
        problems.append("shutting down")
    if not daemon.loaded.is_set():
        problems.append("configuration not loaded yet")
    try:
        daemon.ledger.ping()
    except Exception as err:  # noqa: BLE001 - any failure means "store unreachable"
        problems.append(f"state store unreachable: {type(err).__name__}")
    return problems


def daemon_status(daemon: Daemon) -> dict[str, Any]:
    """Every org with its next run, whether it runs now, and its last slot on any replica."""
    latest = daemon.ledger.latest()
    active = set(daemon.active_orgs())
    orgs = []
    for org, config in sorted(daemon.files.configs.items()):
        next_run = daemon.next_run(org)
        orgs.append({"org": org, "schedule": config.schedule, "timezone": config.timezone,
                     "next_run": next_run.isoformat() if next_run else None,
                     "running": org in active, "last": _jsonable(latest.get(org))})
    errors = [str(err) for err in daemon.files.errors.values()]
    return {"replica": daemon.ledger.replica, "orgs": orgs, "config_errors": errors}


def _jsonable(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()
            if k != "rank"}


async def _trigger(daemon: Daemon, request: Request) -> Response:
    if not _authorised(daemon, request):
        return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
    org = request.path_params["org"]
    if daemon.stopping.is_set():
        return JSONResponse({"error": "the daemon is shutting down"}, status_code=503)
    if daemon.ledger.is_running_here(org):
        return JSONResponse({"error": f"org {org!r} is running now"}, status_code=409)
    try:
        future = daemon.trigger(org)
    except KeyError:
        return JSONResponse({"error": f"unknown org {org!r}"}, status_code=404)
    if request.query_params.get("wait", "").lower() not in ("1", "true", "yes"):
        return JSONResponse({"org": org, "accepted": True}, status_code=202)
    try:
        outcome = await asyncio.wait_for(asyncio.wrap_future(future), TRIGGER_WAIT_SECONDS)
    except TimeoutError:
        return JSONResponse({"org": org, "accepted": True, "finished": False}, status_code=202)
    code = 200 if outcome.outcome == "ran" else 409
    return JSONResponse(outcome.as_dict(), status_code=code)


def _authorised(daemon: Daemon, request: Request) -> bool:
    token = daemon.settings.trigger_token
    if token is None:
        return True
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.get_secret_value().encode())


class HttpServer:
    """uvicorn in a background thread on an address (port 0: one the OS picks)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="restock-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the HTTP server did not start on {self.url}")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
