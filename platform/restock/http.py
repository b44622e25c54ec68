"""One way to talk HTTP to external systems: bounded, retried, authenticated, mapped to restock errors.

Every HTTP connector builds its client with :func:`client` from an :class:`HttpSettings` block of
its own settings::

    http:
      base_url: https://erp.example.com/api
      timeout: {connect: 5, read: 30, total: 120}
      retries: {attempts: 4, backoff: 0.5, max_wait: 60}
      auth: {kind: bearer, token: "${ERP_TOKEN}"}

What it guarantees:

- connect/read timeouts and a total deadline per request (a server dribbling bytes cannot hang a run);
- retries with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx, honouring
  ``Retry-After``, never waiting longer than ``retries.max_wait`` in total;
- TLS verification against certifi's CA bundle (or ``SSL_CERT_FILE``) or a private bundle
  (``ca_file``), off only with ``insecure: true`` (logged as a warning on every client built);
  an untrusted certificate is a :class:`ConnectorError` at once (retrying cannot fix it);
- bearer, API-key header, basic and OAuth2 client-credentials auth (token cached until it expires);
- answers read as a stream and refused past ``max_response_bytes``;
- pagination by offset/limit, page number, cursor (or next URL) and ``Link`` header, capped;
- errors mapped at the boundary: 401/403 → :class:`CredentialsRejected`, timeouts/5xx/429 after
  retries → :class:`ConnectorUnavailable`, other 4xx and unusable bodies → :class:`ConnectorError`.

Secrets never enter an exception or a log event: messages name the method and the path only.
"""

from __future__ import annotations

import email.utils
import hashlib
import json as jsonlib
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import AfterValidator, Field

from restock.config import SecretRef, known_secret_values, remember_secret
from restock.connectors import ConnectorSettings
from restock.errors import ConfigError, ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock.log import get_logger

log = get_logger("restock.http")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 3600.0


# ---------------------------------------------------------------- settings

class Timeouts(ConnectorSettings):
    """Seconds: to connect, between bytes read, and for one whole request."""

    connect: Annotated[float, Field(gt=0)] = 5.0
    read: Annotated[float, Field(gt=0)] = 30.0
    total: Annotated[float, Field(gt=0)] = 120.0


class Retries(ConnectorSettings):
    """How often and how patiently a failing request is tried again."""

    attempts: Annotated[int, Field(ge=1, le=20)] = 4        # tries in all, the first included
    backoff: Annotated[float, Field(ge=0)] = 0.5            # first wait; doubles each time
    max_backoff: Annotated[float, Field(ge=0)] = 30.0       # cap of one wait
    max_wait: Annotated[float, Field(ge=0)] = 60.0          # cap of all waits of one request
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.5       # fraction of each wait drawn at random


class BearerAuth(ConnectorSettings):
    kind: Literal["bearer"]
    token: SecretRef


class ApiKeyAuth(ConnectorSettings):
    """A key sent in a header, e.g. ``Authorization: Token <key>`` (prefix ``"Token "``)."""

    kind: Literal["api_key"]
    key: SecretRef
    header: str = "X-API-Key"
    prefix: str = ""


class BasicAuth(ConnectorSettings):
    kind: Literal["basic"]
    username: str
    password: SecretRef


class OAuth2ClientCredentials(ConnectorSettings):
    """OAuth2 client-credentials grant; the access token is reused until shortly before expiry."""

    kind: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: SecretRef
    scope: str | None = None
    client_auth: Literal["basic", "body"] = "basic"


AuthSettings = Annotated[BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentials,
                         Field(discriminator="kind")]


def _check_base_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ValueError("must be an http:// or https:// URL")
    return url


def _plain_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if "${" in value or value.startswith("file:"):
            raise ValueError(f"{name}: headers are sent as written, secrets are not resolved "
                             "there; use auth: {kind: api_key, header: " + name + ", key: ...}")
    return headers


class HttpOptions(ConnectorSettings):
    """HTTP keys a connector's settings share (everything but the URL)."""

    timeout: Timeouts = Timeouts()
    retries: Retries = Retries()
    auth: AuthSettings | None = None
    insecure: bool = False                 # true: do not verify TLS certificates (warned)
    ca_file: str | None = None             # PEM bundle of a private CA to trust instead
    headers: Annotated[dict[str, str], AfterValidator(_plain_headers)] = Field(default_factory=dict)
    max_response_bytes: Annotated[int, Field(gt=0)] = 20 * 1024 * 1024
    max_pages: Annotated[int, Field(ge=1)] = 1000

    def http_settings(self, base_url: str) -> HttpSettings:
        """These options at ``base_url``."""
        return HttpSettings(base_url=base_url, **{k: getattr(self, k)
                                                  for k in HttpOptions.model_fields})


HttpUrl = Annotated[str, AfterValidator(_check_base_url)]


class HttpSettings(HttpOptions):
    """The HTTP block of a connector's settings: options plus the base URL."""

    base_url: HttpUrl


class Pagination(ConnectorSettings):
    """How a list endpoint pages.

    ``kind``: ``none``; ``offset`` (``offset``/``limit`` parameters); ``page`` (page number and
    size); ``cursor`` (the next cursor, or next URL, found at ``next`` in the body); ``link``
    (RFC 8288 ``Link: <...>; rel="next"`` header). ``items`` is the dotted path of the list in the
    body (empty: the body is the list).
    """

    kind: Literal["none", "offset", "page", "cursor", "link"] = "none"
    items: str = ""
    page_size: Annotated[int, Field(ge=1)] = 100
    limit_param: str = "limit"
    offset_param: str = "offset"
    page_param: str = "page"
    size_param: str | None = "per_page"
    first_page: int = 1
    cursor_param: str = "cursor"
    next: str = "next"
    total: str | None = None               # dotted path of the total count, when the API has one


# ---------------------------------------------------------------- auth

class _HeaderAuth(httpx.Auth):
    def __init__(self, header: str, value_of: Callable[[], str]) -> None:
        self._header, self._value_of = header, value_of

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers[self._header] = self._value_of()
        yield request


# Access tokens by (token URL, client, scope, secret digest), shared by every client of the
# process: a daemon running an org every few minutes asks the identity provider once per token
# lifetime, not once per run.
_TOKENS: dict[tuple[str, ...], tuple[str, float]] = {}
_TOKEN_LOCKS: dict[tuple[str, ...], threading.Lock] = {}
_TOKENS_LOCK = threading.Lock()          # guards the two dicts; one lock per key guards a fetch


def _token_lock(key: tuple[str, ...]) -> threading.Lock:
    with _TOKENS_LOCK:
        return _TOKEN_LOCKS.setdefault(key, threading.Lock())


class _OAuth2Auth(httpx.Auth):
    """Fetches a client-credentials token, caches it until expiry, refreshes once on a 401."""

    requires_response_body = False

    def __init__(self, settings: OAuth2ClientCredentials, http: HttpClient) -> None:
        self._settings, self._http = settings, http
        secret = hashlib.sha256(settings.client_secret.get_secret_value().encode()).hexdigest()
        self._key = (settings.token_url, settings.client_id, settings.scope or "",
                     settings.client_auth, secret)

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        token = self._current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self._forget(token)
            request.headers["Authorization"] = f"Bearer {self._current()}"
            yield request

    def _current(self) -> str:
        with _token_lock(self._key):       # one fetch per key at a time; other systems go on
            token, expires = _TOKENS.get(self._key, ("", 0.0))
            if not token or time.monotonic() >= expires:
                token, lifetime = self._fetch()
                _TOKENS[self._key] = (token, time.monotonic() + max(0.0, lifetime - 30.0))
            return token

    def _forget(self, token: str) -> None:
        with _token_lock(self._key):
            if _TOKENS.get(self._key, ("",))[0] == token:   # another thread may have renewed it
                del _TOKENS[self._key]

    def _fetch(self) -> tuple[str, float]:
        s = self._settings
        form = {"grant_type": "client_credentials"}
        if s.scope:
            form["scope"] = s.scope
        auth: tuple[str, str] | None = None
        if s.client_auth == "basic":
            auth = (s.client_id, s.client_secret.get_secret_value())
        else:
            form.update(client_id=s.client_id, client_secret=s.client_secret.get_secret_value())
        body = self._http.request("POST", s.token_url, data=form, auth=auth, token_request=True,
                                  ok=(400,))
        if body.status_code == 400:   # invalid_client / unauthorized_client answer 400 too
            raise CredentialsRejected(f"{self._http.system} token endpoint", 400)
        data = body.json()
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectorError(self._http.system, "token endpoint answered without access_token")
        remember_secret(token)
        try:
            lifetime = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime


def _auth_for(settings: AuthSettings | None, http: HttpClient) -> httpx.Auth | None:
    if settings is None:
        return None
    if isinstance(settings, BearerAuth):
        return _HeaderAuth("Authorization",
                           lambda: f"Bearer {settings.token.get_secret_value()}")
    if isinstance(settings, ApiKeyAuth):
        return _HeaderAuth(settings.header,
                           lambda: f"{settings.prefix}{settings.key.get_secret_value()}")
    if isinstance(settings, BasicAuth):
        return httpx.BasicAuth(settings.username, settings.password.get_secret_value())
    return _OAuth2Auth(settings, http)


# ---------------------------------------------------------------- responses

@dataclass(frozen=True)
class Response:
    """A fully read, size-checked answer."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    system: str
    shown: str            # the path as messages may show it

    def json(self) -> Any:
        """The body as JSON; ConnectorError (naming the path) when it is not."""
        try:
            return jsonlib.loads(self.content)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise ConnectorError(self.system, f"malformed JSON from {self.shown} "
                                 f"({err.__class__.__name__} at byte "
                                 f"{getattr(err, 'pos', '?')})") from None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class _Oversize(Exception):
    pass


# ---------------------------------------------------------------- the client

class HttpClient:
    """A configured httpx client for one external system; use :func:`client` to build one."""

    def __init__(self, settings: HttpSettings, system: str, *,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, hide_paths: bool = False) -> None:
        self.settings, self.system, self._sleep = settings, system, sleep
        self._hide_paths = hide_paths     # the URL itself is a secret (chat webhooks)
        if settings.insecure:
            log.warning("tls_verification_disabled", system=system,
                        host=urlsplit(settings.base_url).netloc)
        t = settings.timeout
        self._client = httpx.Client(
            base_url=settings.base_url.rstrip("/") + "/", verify=_verify(settings, system),
            timeout=httpx.Timeout(t.read, connect=t.connect, pool=t.connect),
            headers={"User-Agent": "restock", **settings.headers}, transport=transport,
            follow_redirects=False)
        self._auth = _auth_for(settings.auth, self)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request, retried

    def request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                json: Any = None, data: Any = None, headers: dict[str, str] | None = None,
                ok: tuple[int, ...] = (), auth: Any = None,
                retry: bool | Literal["unsent"] = True, token_request: bool = False) -> Response:
        """Send one request, retrying what may work later; raise the mapped restock error.

        ``ok`` lists statuses (besides 2xx) that the caller handles itself, e.g. 404 or 409.
        ``retry=False`` tries once; ``retry="unsent"`` retries only failures that prove the server
        did not act (no connection, 429, 503): for a create that has no idempotency key.
        """
        retries = self.settings.retries
        attempts = retries.attempts if retry else 1
        waited = 0.0
        where = f"{method} {self.path(url)}"
        for attempt in range(1, attempts + 1):
            failure, wait, unsent = self._attempt(method, url, params, json, data, headers, auth,
                                                  token_request)
            if isinstance(failure, Response):
                return self._checked(failure, ok, where)
            if attempt == attempts or (retry == "unsent" and not unsent):
                break
            wait = wait if wait is not None else self._backoff(attempt)
            if waited + wait > retries.max_wait:
                failure = f"{failure}; next retry in {wait:.1f}s would exceed the " \
                          f"{retries.max_wait:g}s retry budget"
                break
            log.info("http_retry", system=self.system, request=where, attempt=attempt,
                     reason=failure, wait_s=round(wait, 3))
            self._sleep(wait)
            waited += wait
        raise ConnectorUnavailable(self.system, f"{where}: {failure} "
                                   f"(after {attempt} attempt{'s' if attempt > 1 else ''})")

    def _attempt(self, method, url, params, json, data, headers, auth,
                 token_request) -> tuple[Response | str, float | None, bool]:
        """One try: a Response, or (reason, Retry-After seconds, surely-not-acted-on)."""
        try:
            response = self._send(method, url, params, json, data, headers, auth, token_request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            if _untrusted_certificate(err):
                raise ConnectorError(self.system, f"{method} {self.path(url)}: TLS certificate "
                                     "not trusted (set ca_file to the CA that signed it)"
                                     ) from None
            return f"connection failed ({err.__class__.__name__})", None, True
        except httpx.TimeoutException as err:
            return f"timed out ({err.__class__.__name__})", None, False
        except _Oversize as err:
            raise ConnectorError(self.system, f"{method} {self.path(url)}: {err}") from None
        except httpx.TransportError as err:
            return f"connection failed ({err.__class__.__name__})", None, False
        except httpx.DecodingError:
            raise ConnectorError(self.system, f"{method} {self.path(url)}: the answer's "
                                 "Content-Encoding could not be decoded") from None
        if response.status_code in RETRY_STATUSES:
            return (f"HTTP {response.status_code}", _retry_after(response.headers),
                    response.status_code in (429, 503))
        return response, None, False

    def _send(self, method, url, params, json, data, headers, auth, token_request) -> Response:
        deadline = time.monotonic() + self.settings.timeout.total
        request_auth = auth if auth is not None else (None if token_request else self._auth)
        limit = self.settings.max_response_bytes
        with self._client.stream(method, url, params=params, json=json, data=data,
                                 headers=headers, auth=request_auth or httpx.USE_CLIENT_DEFAULT
                                 ) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _Oversize(f"answer of {int(declared):,} bytes refused "
                                f"(max_response_bytes is {limit:,})")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _Oversize(f"answer larger than {limit:,} bytes refused "
                                    f"(max_response_bytes)")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("total request time exceeded")
                chunks.append(chunk)
        return Response(response.status_code, response.headers, b"".join(chunks),
                        str(response.request.url), self.system, self.path(str(response.url)))

    def _checked(self, response: Response, ok: tuple[int, ...], where: str) -> Response:
        status = response.status_code
        if status in (401, 403) and status not in ok:
            raise CredentialsRejected(self.system, status)
        if 300 <= status < 400 and status not in ok:     # redirects are never followed blindly
            target = self.path(response.headers.get("location", ""))
            raise ConnectorError(self.system, f"{where} answered HTTP {status}, a redirect to "
                                 f"{target}: put the final address in the settings")
        if status >= 400 and status not in ok:
            raise ConnectorError(self.system, f"{where} answered HTTP {status}: "
                                 f"{_excerpt(response.text)}")
        return response

    def path(self, url: str) -> str:
        """How a URL is named in messages: its path, or nothing when the URL is a secret."""
        if self._hide_paths:
            return "(secret URL)"
        return _path(urljoin(str(self._client.base_url), str(url)))

    def _backoff(self, attempt: int) -> float:
        r = self.settings.retries
        base = min(r.max_backoff, r.backoff * 2 ** (attempt - 1))
        return base * (1 - r.jitter) + base * r.jitter * random.random()

    # -- conveniences

    def get_json(self, url: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("GET", url, params=params, **kw).json()

    def post_json(self, url: str, body: Any, **kw: Any) -> Any:
        response = self.request("POST", url, json=body, **kw)
        return response.json() if response.content.strip() else None

    def paginate(self, url: str, pagination: Pagination, params: dict[str, Any] | None = None
                 ) -> Iterator[Any]:
        """Every item of a list endpoint, page by page.

        ConnectorError past ``max_pages``, or at once when a page repeats the one before (an API
        that ignores the paging parameter would otherwise be read ``max_pages`` times).
        """
        pages = _PAGERS[pagination.kind](self, url, pagination, dict(params or {}))
        previous: list[Any] = []
        for number, items in enumerate(pages, start=1):
            if number > self.settings.max_pages:
                raise ConnectorError(self.system, f"GET {self.path(url)}: more than "
                                     f"{self.settings.max_pages} pages; the list never ends "
                                     "(raise max_pages if it is really that long)")
            if items and items == previous:
                raise ConnectorError(self.system, f"GET {self.path(url)}: page {number} repeats "
                                     f"page {number - 1}; the API ignores the {pagination.kind} "
                                     "paging parameters (check pagination)")
            previous = items
            yield from items


# ---------------------------------------------------------------- pagination

def dig(data: Any, path: str, *, system: str = "", where: str = "") -> Any:
    """The value at a dotted path (``a.b.0.c``); ConnectorError naming the path if absent."""
    if not path:
        return data
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and \
                -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            raise ConnectorError(system, f"{where}: missing field {path!r}".lstrip(": "))
    return current


def _items(http: HttpClient, body: Any, pagination: Pagination, url: str) -> list[Any]:
    items = dig(body, pagination.items, system=http.system, where=f"GET {http.path(url)}")
    if not isinstance(items, list):
        raise ConnectorError(http.system, f"GET {http.path(url)}: expected a list at "
                             f"{pagination.items or 'the top level'}, got "
                             f"{type(items).__name__}")
    return items


def _single(http: HttpClient, url: str, p: Pagination, params: dict) -> Iterator[list]:
    yield _items(http, http.get_json(url, params), p, url)


def _offset(http: HttpClient, url: str, p: Pagination, params: dict) -> Iterator[list]:
    offset = 0
    while True:
        body = http.get_json(url, {**params, p.limit_param: p.page_size, p.offset_param: offset})
        items = _items(http, body, p, url)
        yield items
        offset += len(items)
        if len(items) < p.page_size or _past_total(body, p, offset):
            return


def _page(http: HttpClient, url: str, p: Pagination, params: dict) -> Iterator[list]:
    page = p.first_page
    while True:
        query = {**params, p.page_param: page}
        if p.size_param:
            query[p.size_param] = p.page_size
        body = http.get_json(url, query)
        items = _items(http, body, p, url)
        yield items
        if not items or len(items) < p.page_size:
            return
        page += 1


def _cursor(http: HttpClient, url: str, p: Pagination, params: dict) -> Iterator[list]:
    query: dict[str, Any] | None = params
    while True:
        body = http.get_json(url, query)
        yield _items(http, body, p, url)
        nxt = _maybe(body, p.next)
        if not nxt:
            return
        if isinstance(nxt, str) and nxt.startswith(("http://", "https://", "/")):
            url, query = nxt, None
        else:
            query = {**params, p.cursor_param: nxt}


def _link(http: HttpClient, url: str, p: Pagination, params: dict) -> Iterator[list]:
    query: dict[str, Any] | None = params
    next_url: str | None = url
    while next_url:
        response = http.request("GET", next_url, params=query)
        yield _items(http, response.json(), p, next_url)
        link = response.headers.get("link")
        found = httpx.Response(200, headers={"link": link}).links.get("next") if link else None
        next_url = urljoin(response.url, found["url"]) if found and found.get("url") else None
        query = None


_PAGERS: dict[str, Callable[..., Iterator[list]]] = {
    "none": _single, "offset": _offset, "page": _page, "cursor": _cursor, "link": _link}


def _maybe(body: Any, path: str) -> Any:
    try:
        return dig(body, path)
    except ConnectorError:
        return None


def _past_total(body: Any, p: Pagination, seen: int) -> bool:
    if not p.total:
        return False
    total = _maybe(body, p.total)
    return isinstance(total, (int, float)) and seen >= total


# ---------------------------------------------------------------- helpers

def _verify(settings: HttpOptions, system: str) -> ssl.SSLContext | bool:
    if settings.insecure:
        return False
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"{system}: cannot read CA bundle {settings.ca_file!r} "
                          f"({err.__class__.__name__})", field="ca_file") from None


def _untrusted_certificate(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:               # httpx wraps the ssl error one or two levels down
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(err)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), _MAX_RETRY_AFTER)


def _path(url: str) -> str:
    """Only the path of a URL: queries may carry keys, hosts are in the settings already."""
    return urlsplit(str(url)).path or "/"


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    for secret in known_secret_values():
        text = text.replace(secret, "[REDACTED]")
    return text[:limit] + ("…" if len(text) > limit else "") or "(empty body)"


def client(settings: HttpSettings, system: str, **kw: Any) -> HttpClient:
    """The HTTP client every connector uses for ``system`` (a name shown in errors)."""
    return HttpClient(settings, system, **kw)
