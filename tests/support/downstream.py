"""Downstream systems that keep count, and a proxy that makes them misbehave.

``CountingReceiver`` is an order webhook that records every complete POST per Idempotency-Key,
so a test can tell "restock sent this key twice" from "the receiver created it twice".
``FaultProxy`` sits between restock and any loopback HTTP server and, per request, passes it on,
answers 500/429 itself, resets the connection (before or after the server acted), stalls past the
client's read timeout (before or after the server acted), or is slow (before the request reaches
the server, or in answering).
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# What the proxy may do with one request (see FaultProxy).
FAULTS = ("pass", "500", "503", "429", "500_after", "reset_before", "reset_after",
          "timeout_before", "timeout_after", "slow", "slow_before")


@dataclass
class CountingReceiver:
    """An order endpoint: stores one order per key, answers 409 on a repeat, counts every POST."""

    posts: Counter = field(default_factory=Counter)           # complete POSTs per key
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    lookups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/orders", self._post, methods=["POST"]),
                                 Route("/orders/{key}", self._get, methods=["GET"])])

    async def _post(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ClientDisconnect:          # the sender died mid-request: nothing arrived
            return Response(status_code=400)
        key = request.headers.get("idempotency-key", "")
        with self.lock:
            self.posts[key] += 1
            known = self.orders.get(key)
            if known is None:
                self.orders[key] = {"id": f"ERP-{len(self.orders) + 1}", "body": body}
        if known is not None:
            return JSONResponse({"id": known["id"]}, status_code=409)
        return JSONResponse({"id": self.orders[key]["id"]}, status_code=201)

    async def _get(self, request: Request) -> Response:
        with self.lock:
            self.lookups += 1
            order = self.orders.get(request.path_params["key"])
        if order is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse({"id": order["id"]})

    def clear(self) -> None:
        """Forget everything (a fresh downstream system)."""
        with self.lock:
            self.posts.clear()
            self.orders.clear()
            self.lookups = 0

    def duplicates(self) -> dict[str, int]:
        """Keys restock POSTed more than once (complete requests)."""
        return {key: n for key, n in self.posts.items() if n > 1}


# ---------------------------------------------------------------- the fault proxy

Plan = Callable[[str, str, bytes], str]      # (method, target, body) -> one of FAULTS


@dataclass
class FaultLog:
    """What the proxy did, request by request."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)    # method, path, fault

    def count(self, fault: str) -> int:
        return sum(1 for *_, f in self.seen if f == fault)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 that speaks just enough HTTP/1.1 to misbehave per request.

    Each request is sent to the backend on a fresh connection (``Connection: close``) and every
    answer closes the client's connection, so one request is one fault decision.
    """

    def __init__(self, backend: str, plan: Plan, *, stall: float = 1.0, slow: float = 0.1,
                 retry_after: str = "1") -> None:
        host, port = backend.removeprefix("http://").rstrip("/").split(":")
        self.backend = (host, int(port))
        self.plan, self.stall, self.slow, self.retry_after = plan, stall, slow, retry_after
        self.log = FaultLog()
        self._lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve on an OS-chosen port; yields the proxy's base URL."""
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            head, body = _read_request(conn)
        except (OSError, ValueError):
            return
        method, path = head.split(b" ", 2)[:2]
        fault = self.plan(method.decode(), path.decode(), body)
        with self._lock:
            self.log.seen.append((method.decode(), path.decode(), fault))
        self._act(conn, fault, head, body)

    def _act(self, conn: socket.socket, fault: str, head: bytes, body: bytes) -> None:
        if fault in ("500", "503", "429"):
            extra = f"Retry-After: {self.retry_after}\r\n".encode() if fault == "429" else b""
            conn.sendall(b"HTTP/1.1 " + fault.encode() + b" Fault\r\nContent-Length: 5\r\n" +
                         extra + b"Connection: close\r\n\r\nfault")
            return conn.close()
        if fault == "reset_before":
            return _reset(conn)
        if fault == "timeout_before":
            time.sleep(self.stall)
            return conn.close()
        if fault == "slow_before":          # the request is on its way, the server has nothing
            time.sleep(self.slow)
        answer = self._forward(head, body)
        if fault == "reset_after":
            return _reset(conn)
        if fault == "timeout_after":
            time.sleep(self.stall)
            return conn.close()
        if fault == "500_after":
            answer = (b"HTTP/1.1 500 Upstream Fault\r\nContent-Length: 5\r\n"
                      b"Connection: close\r\n\r\nfault")
        if fault == "slow":
            time.sleep(self.slow)
        conn.sendall(answer)
        conn.close()

    def _forward(self, head: bytes, body: bytes) -> bytes:
        lines = [line for line in head.split(b"\r\n")
                 if not line.lower().startswith(b"connection:")]
        request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
        with socket.create_connection(self.backend, timeout=10) as upstream:
            upstream.sendall(request)
            chunks = []
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _read_request(conn: socket.socket) -> tuple[bytes, bytes]:
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("connection closed before a request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("connection closed mid-body")
        body += chunk
    return head, body


def _reset(conn: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST: the client sees "connection reset".
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def seeded_plan(rng: Any, *, rate: float, faults: tuple[str, ...] = FAULTS[1:],
                only: tuple[str, ...] = ()) -> Plan:
    """A plan that faults a share ``rate`` of requests (those whose method is in ``only``, if
    given) with a fault drawn from ``faults``; the rest pass."""
    def plan(method: str, path: str, body: bytes = b"") -> str:
        if only and method not in only:
            return "pass"
        return rng.choice(faults) if rng.random() < rate else "pass"
    return plan
