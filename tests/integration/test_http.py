"""The shared HTTP client against real misbehaving servers on loopback."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from datetime import UTC
from urllib.parse import parse_qsl

import httpx
import pytest
import structlog
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock.http import HttpSettings, Pagination, client
from tests.support.loopback import serve_asgi

TOKEN = "tok-5f0e9a1c-very-secret"
FAST = {"backoff": 0.01, "max_backoff": 0.05, "max_wait": 5}


def _app(state: dict) -> Starlette:
    def counted(name: str) -> int:
        state[name] = state.get(name, 0) + 1
        return state[name]

    async def ok(request: Request):
        return JSONResponse({"hello": "world", "q": dict(request.query_params)})

    async def flaky(request: Request):
        if counted("flaky") < 3:
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"done": True})

    async def always500(request: Request):
        counted("always500")
        return Response("boom", status_code=500)

    async def rate_limited(request: Request):
        state.setdefault("rate_times", []).append(time.monotonic())
        if counted("rate") == 1:
            return Response("slow down", status_code=429,
                            headers={"Retry-After": request.query_params.get("after", "1")})
        return JSONResponse({"done": True})

    async def slow(request: Request):
        await asyncio.sleep(float(request.query_params.get("s", "2")))
        return JSONResponse({"late": True})

    async def dribble(request: Request):
        async def body():
            for _ in range(40):
                yield b" "
                await asyncio.sleep(0.05)
            yield b"{}"
        return StreamingResponse(body(), media_type="application/json")

    async def malformed(request: Request):
        return Response('{"items": [1, 2', media_type="application/json")

    async def huge(request: Request):
        chunk = b"x" * 65536

        async def body():
            for _ in range(50 * 16):      # 50 MB
                yield chunk
        return StreamingResponse(body(), media_type="application/json")

    async def declared_huge(request: Request):
        return Response(b"[]", headers={"content-length": str(50 * 1024 * 1024)})

    async def bearer(request: Request):
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"detail": "bad token"}, status_code=401)
        return JSONResponse({"user": "restock"})

    async def apikey(request: Request):
        if request.headers.get("authorization") != f"Token {TOKEN}":
            return JSONResponse({"detail": f"token {request.headers.get('authorization')} "
                                 "is not valid"}, status_code=403)
        return JSONResponse({"user": "restock"})

    async def basic(request: Request):
        expected = "Basic " + base64.b64encode(f"buyer:{TOKEN}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return Response(status_code=401)
        return JSONResponse({"user": "buyer"})

    async def token(request: Request):
        form = dict(parse_qsl((await request.body()).decode()))
        expected = "Basic " + base64.b64encode(f"restock:{TOKEN}".encode()).decode()
        in_body = form.get("client_id") == "restock" and form.get("client_secret") == TOKEN
        state.setdefault("token_forms", []).append(form)
        if (request.headers.get("authorization") != expected and not in_body) or \
                form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued = f"access-{counted('tokens')}"
        state["current"] = issued
        return JSONResponse({"access_token": issued, "token_type": "Bearer",
                             "expires_in": state.get("expires_in", 3600)})

    async def protected(request: Request):
        if request.headers.get("authorization") != f"Bearer {state.get('current')}":
            return Response(status_code=401)
        return JSONResponse({"ok": True})

    async def offset(request: Request):
        limit, start = int(request.query_params["limit"]), int(request.query_params["offset"])
        rows = list(range(23))[start:start + limit]
        return JSONResponse({"count": 23, "results": rows})

    async def paged(request: Request):
        page, size = int(request.query_params["page"]), int(request.query_params["per_page"])
        return JSONResponse({"data": list(range(23))[(page - 1) * size:page * size]})

    async def cursor(request: Request):
        at = int(request.query_params.get("cursor", "0"))
        nxt = at + 10 if at + 10 < 23 else None
        return JSONResponse({"items": list(range(23))[at:at + 10], "meta": {"next": nxt}})

    async def linked(request: Request):
        page = int(request.query_params.get("p", "1"))
        headers = {"Link": f'</linked?p={page + 1}>; rel="next"'} if page < 3 else {}
        return JSONResponse([page * 10 + i for i in range(2)], headers=headers)

    async def endless(request: Request):
        at = int(request.query_params.get("cursor", "0"))
        return JSONResponse({"items": [at], "next": at + 1})

    async def moved(request: Request):
        return Response(status_code=302, headers={"Location": "/login?next=/api/parts"})

    async def bad_gzip(request: Request):
        return Response(b"this is not gzip", headers={"content-encoding": "gzip"})

    async def deep(request: Request):
        return Response(b"[" * 200_000 + b"]" * 200_000, media_type="application/json")

    async def endless_full(request: Request):
        # always a new full page, never a total: offset and page-number paging cannot see an end
        n = counted("endless_full")
        return JSONResponse({"items": [n] * 5}, headers={"Link": '</endless_full>; rel="next"'})

    async def same_page(request: Request):
        counted("same_page")                        # paging parameters ignored
        return JSONResponse({"items": [1, 2, 3], "next": "again"},
                            headers={"Link": '</same_page>; rel="next"'})

    routes = [Route(f"/{f.__name__}", f, methods=["GET", "POST"]) for f in (
        ok, flaky, always500, rate_limited, slow, dribble, malformed, huge, declared_huge, bearer,
        apikey, basic, token, protected, offset, paged, cursor, linked, endless,
        endless_full, moved, bad_gzip, deep, same_page)]
    return Starlette(routes=routes)


@pytest.fixture(scope="module")
def server():
    state: dict = {}
    with serve_asgi(_app(state)) as url:
        yield url, state


def make(url: str, **extra) -> object:
    settings = HttpSettings.model_validate({"base_url": url, "retries": FAST, **extra})
    return client(settings, "testsys")


def test_get_json_and_query(server):
    url, _ = server
    with make(url) as http:
        assert http.get_json("/ok", {"a": "1"}) == {"hello": "world", "q": {"a": "1"}}


def test_retries_5xx_then_succeeds(server):
    url, state = server
    state.pop("flaky", None)
    with make(url) as http:
        assert http.get_json("/flaky") == {"done": True}
    assert state["flaky"] == 3


def test_5xx_exhausts_attempts_into_unavailable(server):
    url, state = server
    state.pop("always500", None)
    with make(url, retries={**FAST, "attempts": 3}) as http, \
            pytest.raises(ConnectorUnavailable, match=r"testsys unavailable: GET /always500: "
                                                      r"HTTP 500 \(after 3 attempts\)"):
        http.get_json("/always500")
    assert state["always500"] == 3


def test_honours_retry_after(server):
    url, state = server
    state.pop("rate", None)
    state.pop("rate_times", None)
    with make(url) as http:
        assert http.get_json("/rate_limited", {"after": "1"}) == {"done": True}
    first, second = state["rate_times"]
    assert second - first >= 0.95


def test_retry_after_beyond_budget_gives_up_without_waiting(server):
    url, state = server
    state.pop("rate", None)
    started = time.monotonic()
    with make(url, retries={**FAST, "max_wait": 2}) as http, \
            pytest.raises(ConnectorUnavailable, match="HTTP 429.*exceed the 2s retry budget"):
        http.get_json("/rate_limited", {"after": "120"})
    assert time.monotonic() - started < 1.5
    assert state["rate"] == 1


def test_read_timeout_is_retried_then_unavailable(server):
    url, _ = server
    started = time.monotonic()
    with make(url, timeout={"read": 0.2}, retries={**FAST, "attempts": 2}) as http, \
            pytest.raises(ConnectorUnavailable, match="timed out"):
        http.get_json("/slow", {"s": "1"})
    assert time.monotonic() - started < 1.5


def test_a_dribbling_server_hits_the_total_deadline(server):
    url, _ = server
    started = time.monotonic()
    with make(url, timeout={"read": 1, "total": 0.5}, retries={**FAST, "attempts": 1}) as http, \
            pytest.raises(ConnectorUnavailable, match="timed out"):
        http.get_json("/dribble")
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_unavailable():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with make(f"http://127.0.0.1:{port}", retries={**FAST, "attempts": 2}) as http, \
            pytest.raises(ConnectorUnavailable, match="connection failed"):
        http.get_json("/ok")


def test_dropped_connection_mid_body_is_unavailable():
    async def drop(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"[1, 2", "more_body": True})
        raise RuntimeError("backend crashed")

    with serve_asgi(drop) as url, make(url, retries={**FAST, "attempts": 2}) as http, \
            pytest.raises(ConnectorUnavailable, match="connection failed"):
        http.get_json("/anything")


def test_malformed_json_is_a_connector_error(server):
    url, _ = server
    with make(url) as http, pytest.raises(ConnectorError, match="malformed JSON from /malformed"):
        http.get_json("/malformed")


@pytest.mark.parametrize("path, message", [
    ("/moved", r"GET /moved answered HTTP 302, a redirect to /login: put the final address"),
    ("/bad_gzip", r"GET /bad_gzip: the answer's Content-Encoding could not be decoded"),
    ("/deep", r"malformed JSON from /deep \(RecursionError"),
])
def test_unusable_answers_are_one_line_connector_errors(server, path, message):
    url, _ = server
    with make(url) as http, pytest.raises(ConnectorError, match=message):
        http.get_json(path)


@pytest.mark.parametrize("path", ["/huge", "/declared_huge"])
def test_a_50mb_answer_is_refused(server, path):
    url, _ = server
    with make(url) as http, pytest.raises(ConnectorError, match="refused .*max_response_bytes"):
        http.get_json(path)


def test_wrong_token_is_rejected_and_never_shown(server, monkeypatch):
    url, _ = server
    monkeypatch.setenv("T_WRONG", "wrong-token-1234")
    with structlog.testing.capture_logs() as logs, \
            make(url, auth={"kind": "api_key", "header": "Authorization", "prefix": "Token ",
                            "key": "${T_WRONG}"}) as http, \
            pytest.raises(CredentialsRejected) as caught:
        http.get_json("/apikey")
    assert str(caught.value) == "credentials rejected by testsys (HTTP 403)"
    assert "wrong-token-1234" not in repr(caught.value) + repr(logs)


@pytest.mark.parametrize("auth, path", [
    ({"kind": "bearer", "token": "${T_GOOD}"}, "/bearer"),
    ({"kind": "api_key", "header": "Authorization", "prefix": "Token ", "key": "${T_GOOD}"},
     "/apikey"),
    ({"kind": "basic", "username": "buyer", "password": "${T_GOOD}"}, "/basic"),
])
def test_auth_kinds(server, monkeypatch, auth, path):
    url, _ = server
    monkeypatch.setenv("T_GOOD", TOKEN)
    with make(url, auth=auth) as http:
        assert http.get_json(path)


def test_auth_refuses_literal_secrets():
    with pytest.raises(ValidationError, match="literal secrets are refused"):
        HttpSettings.model_validate({"base_url": "http://x", "auth": {"kind": "bearer",
                                                                      "token": TOKEN}})


def test_oauth2_token_is_cached_until_expiry_and_refreshed_on_401(server, monkeypatch):
    url, state = server
    monkeypatch.setenv("T_GOOD", TOKEN)
    state.update(tokens=0, expires_in=3600)
    auth = {"kind": "oauth2_client_credentials", "token_url": f"{url}/token",
            "client_id": "restock", "client_secret": "${T_GOOD}", "scope": "cache-test"}
    with make(url, auth=auth) as http:
        for _ in range(3):
            assert http.get_json("/protected") == {"ok": True}
    assert state["tokens"] == 1
    with make(url, auth=auth) as http:                     # the next run reuses the token
        assert http.get_json("/protected") == {"ok": True}
        assert state["tokens"] == 1
        state["current"] = "revoked"                       # the server forgot our token
        assert http.get_json("/protected") == {"ok": True}
        assert state["tokens"] == 2
    state.update(expires_in=0)                             # tokens that expire at once
    with make(url, auth={**auth, "scope": "short-lived"}) as http:
        http.get_json("/protected")
        http.get_json("/protected")
    assert state["tokens"] == 4


def test_oauth2_wrong_secret_is_rejected(server, monkeypatch):
    url, _ = server
    monkeypatch.setenv("T_BAD", "not-the-secret")
    auth = {"kind": "oauth2_client_credentials", "token_url": f"{url}/token",
            "client_id": "restock", "client_secret": "${T_BAD}"}
    with make(url, auth=auth) as http, pytest.raises(CredentialsRejected, match="testsys"):
        http.get_json("/protected")


@pytest.mark.parametrize("path, pagination", [
    ("/offset", {"kind": "offset", "items": "results", "page_size": 5, "total": "count"}),
    ("/paged", {"kind": "page", "items": "data", "page_size": 5}),
    ("/cursor", {"kind": "cursor", "items": "items", "next": "meta.next"}),
])
def test_pagination_kinds_collect_every_item_once(server, path, pagination):
    url, _ = server
    with make(url) as http:
        assert list(http.paginate(path, Pagination.model_validate(pagination))) == list(range(23))


def test_link_header_pagination(server):
    url, _ = server
    with make(url) as http:
        assert list(http.paginate("/linked", Pagination(kind="link"))) == [10, 11, 20, 21, 30, 31]


def test_endless_pagination_stops_at_the_page_cap(server):
    url, _ = server
    with make(url, max_pages=25) as http, pytest.raises(ConnectorError, match="more than 25 pages"):
        list(http.paginate("/endless", Pagination(kind="cursor", items="items")))


@pytest.mark.parametrize("kind", ["offset", "page", "link"])
def test_every_paging_kind_stops_at_the_page_cap(server, kind):
    url, state = server
    state.pop("endless_full", None)
    with make(url, max_pages=7) as http, pytest.raises(ConnectorError, match="more than 7 pages"):
        list(http.paginate("/endless_full", Pagination(kind=kind, items="items", page_size=5)))
    assert state["endless_full"] == 8          # the page past the cap is read, never a ninth


@pytest.mark.parametrize("kind", ["offset", "page", "cursor", "link"])
def test_an_api_that_ignores_paging_is_caught_on_the_second_page(server, kind):
    url, state = server
    state.pop("same_page", None)
    with make(url) as http, pytest.raises(ConnectorError, match=f"page 2 repeats page 1; the API "
                                                                f"ignores the {kind} paging"):
        list(http.paginate("/same_page", Pagination(kind=kind, items="items", page_size=3)))
    assert state["same_page"] == 2


def test_missing_items_field_names_it(server):
    url, _ = server
    with make(url) as http, pytest.raises(ConnectorError, match="missing field 'rows'"):
        list(http.paginate("/ok", Pagination(items="rows")))


def test_tls_verified_unless_insecure_which_is_logged():
    with make("https://127.0.0.1:9") as http:
        ctx = http._client._transport._pool._ssl_context
        assert ctx.verify_mode == ssl.CERT_REQUIRED
    with structlog.testing.capture_logs() as logs, make("https://127.0.0.1:9", insecure=True):
        pass
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == \
        ["tls_verification_disabled"]


def test_base_url_must_be_http():
    with pytest.raises(ValidationError, match="http:// or https://"):
        HttpSettings(base_url="ftp://example.com")
    assert HttpSettings(base_url="http://x").retries.attempts == 4
    assert isinstance(SecretStr("x"), SecretStr)


def test_oauth2_client_secret_in_the_body_and_nothing_secret_logged(server, monkeypatch):
    url, state = server
    monkeypatch.setenv("T_GOOD", TOKEN)
    state.update(tokens=0, expires_in=3600, token_forms=[])
    auth = {"kind": "oauth2_client_credentials", "token_url": f"{url}/token", "scope": "stock:read",
            "client_id": "restock", "client_secret": "${T_GOOD}", "client_auth": "body"}
    with structlog.testing.capture_logs() as logs, make(url, auth=auth) as http:
        state["flaky"] = 0
        assert http.get_json("/flaky") == {"done": True}      # two retries, each logged
        assert http.get_json("/protected") == {"ok": True}
    assert state["token_forms"][0]["scope"] == "stock:read"
    assert [e["event"] for e in logs].count("http_retry") == 2
    assert TOKEN not in repr(logs) and "access-1" not in repr(logs)


def test_retry_after_as_an_http_date_is_honoured():
    import email.utils
    from datetime import datetime, timedelta

    answers = iter([429, 200])
    waits: list[float] = []

    def handler(request):
        status = next(answers)
        later = datetime.now(UTC) + timedelta(seconds=3)
        headers = {"Retry-After": email.utils.format_datetime(later, usegmt=True)}
        return httpx.Response(status, json={"status": status}, headers=headers)

    settings = HttpSettings.model_validate({"base_url": "http://erp.test", "retries": FAST})
    with client(settings, "testsys", transport=httpx.MockTransport(handler),
                sleep=waits.append) as http:
        assert http.get_json("/x") == {"status": 200}
    assert len(waits) == 1 and 1.5 < waits[0] <= 3.0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(folder / "cert.pem"), append=True)
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return str(folder / "cert.pem"), str(folder / "key.pem"), str(folder / "ca.pem")


@pytest.fixture(scope="module")
def https_server(tls_files):
    certfile, keyfile, _ = tls_files
    state: dict = {}
    with serve_asgi(_app(state), tls=(certfile, keyfile)) as url:
        yield url


def test_https_with_a_private_ca_bundle(https_server, tls_files):
    with make(https_server, ca_file=tls_files[2]) as http:
        assert http.get_json("/ok") == {"hello": "world", "q": {}}


def test_an_untrusted_certificate_fails_at_once_with_advice(https_server):
    with structlog.testing.capture_logs() as logs, make(https_server) as http, \
            pytest.raises(ConnectorError, match=r"testsys: GET /ok: TLS certificate not trusted "
                                                r"\(set ca_file"):
        http.get_json("/ok")
    assert not [e for e in logs if e["event"] == "http_retry"]    # retrying cannot fix it


def test_insecure_talks_to_an_untrusted_server_and_warns(https_server):
    with structlog.testing.capture_logs() as logs, make(https_server, insecure=True) as http:
        assert http.get_json("/ok")["hello"] == "world"
    assert any(e["event"] == "tls_verification_disabled" for e in logs)


def test_an_unreadable_ca_bundle_is_a_config_error(tmp_path):
    from restock.errors import ConfigError
    with pytest.raises(ConfigError, match="ca_file: testsys: cannot read CA bundle"):
        make("https://127.0.0.1:9", ca_file=str(tmp_path / "missing.pem"))


def test_backoff_doubles_with_jitter_and_is_capped():
    waits: list[float] = []
    settings = HttpSettings.model_validate({"base_url": "http://erp.test", "retries": {
        "attempts": 7, "backoff": 1, "max_backoff": 8, "jitter": 0.5, "max_wait": 1000}})
    unavailable = httpx.MockTransport(lambda request: httpx.Response(502))
    with client(settings, "testsys", transport=unavailable, sleep=waits.append) as http, \
            pytest.raises(ConnectorUnavailable, match="after 7 attempts"):
        http.get_json("/x")
    bases = [1, 2, 4, 8, 8, 8]                               # doubling, then the cap
    assert len(waits) == 6
    assert all(base * 0.5 <= wait <= base for wait, base in zip(waits, bases))
    assert len({round(w, 6) for w in waits[3:]}) > 1         # jitter: capped waits still differ


def test_a_create_without_key_is_retried_only_when_surely_unsent():
    answers = iter([500, 503, 201])         # 500: the server may have acted; 503: it did not

    def handler(request):
        return httpx.Response(next(answers), json={})

    settings = HttpSettings.model_validate({"base_url": "http://erp.test", "retries": FAST})
    with client(settings, "testsys", transport=httpx.MockTransport(handler),
                sleep=lambda seconds: None) as http:
        with pytest.raises(ConnectorUnavailable, match=r"HTTP 500 \(after 1 attempt\)"):
            http.request("POST", "/orders", json={}, retry="unsent")
        assert http.request("POST", "/orders", json={}, retry="unsent").status_code == 201


def test_a_secret_reference_in_headers_points_to_api_key_auth():
    with pytest.raises(ValidationError, match="X-Api-Key: headers are sent as written.*"
                                              "kind: api_key, header: X-Api-Key"):
        HttpSettings.model_validate({"base_url": "http://x",
                                     "headers": {"X-Api-Key": "${ERP_KEY}"}})
    assert HttpSettings.model_validate({"base_url": "http://x", "headers": {
        "X-Tenant": "acme"}}).headers == {"X-Tenant": "acme"}


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_statuses_that_may_pass_are_retried(status):
    answers = iter([status, 200])
    settings = HttpSettings.model_validate({"base_url": "http://erp.test", "retries": FAST})
    transport = httpx.MockTransport(lambda request: httpx.Response(next(answers), json={}))
    with client(settings, "testsys", transport=transport, sleep=lambda s: None) as http:
        assert http.get_json("/x") == {}


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_statuses_that_will_not_pass_are_not_retried(status):
    seen: list[int] = []

    def handler(request):
        seen.append(status)
        return httpx.Response(status, json={"detail": "no"})

    settings = HttpSettings.model_validate({"base_url": "http://erp.test", "retries": FAST})
    with client(settings, "testsys", transport=httpx.MockTransport(handler)) as http, \
            pytest.raises(ConnectorError, match=f"GET /x answered HTTP {status}"):
        http.get_json("/x")
    assert len(seen) == 1


def test_oauth2_clients_in_threads_share_one_token(server, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    url, state = server
    monkeypatch.setenv("T_GOOD", TOKEN)
    state.update(tokens=0, expires_in=3600)
    auth = {"kind": "oauth2_client_credentials", "token_url": f"{url}/token",
            "client_id": "restock", "client_secret": "${T_GOOD}", "scope": "threads"}

    def run(_: int) -> dict:
        with make(url, auth=auth) as http:
            return http.get_json("/protected")

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(run, range(12))) == [{"ok": True}] * 12
    assert state["tokens"] == 1
