"""One conformance suite for every registered connector (entry points of ``restock.connectors``).

Settings checks run for every connector and role. Behaviour runs through a harness per connector
name below: a connector registered without one fails here, asking for one.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import structlog
import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from restock.connectors import ENTRY_POINT_GROUP, ConnectorContext, Scope, available
from restock.domain import (
    CATALOG_COLUMNS,
    HISTORY_COLUMNS,
    OFFER_COLUMNS,
    OPEN_ORDER_COLUMNS,
    POSITION_COLUMNS,
)
from tests.support.inventree import InvenTreeEmulator
from tests.support.loopback import serve_asgi
from tests.support.receivers import OrderReceiver
from tests.support.samples import purchase_order, run_summary

ROLES = ("inventory_source", "order_sink", "summary_sink")
NAMES = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
SECRET_WORDS = ("token", "password", "secret", "api_key", "key")


def _registered() -> list[tuple[str, str]]:
    """Entry-point connectors (ones other tests register at run time are their own fakes)."""
    found = []
    for role in ROLES:
        found += [(name, role) for name in available(role)      # type: ignore[arg-type]
                  if name in NAMES]
    return found


CASES = _registered()


def test_every_registered_name_provides_some_role():
    provided = {name for name, _ in CASES}
    assert set(NAMES) <= provided, f"registered but no role: {set(NAMES) - provided}"


@pytest.mark.parametrize("name, role", CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_settings_forbid_unknown_keys(name, role):
    cls = available(role)[name]
    assert cls.Settings.model_config.get("extra") == "forbid"
    with pytest.raises(ValidationError) as caught:
        cls.Settings.model_validate({"surely_not_a_key": 1})
    assert any(e["type"] == "extra_forbidden" for e in caught.value.errors())


@pytest.mark.parametrize("name, role", CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_secrets_are_secret_references(name, role):
    cls = available(role)[name]
    for where, annotation, model in _fields(cls.Settings):
        last = where.rsplit(".", 1)[-1].lower()
        secretish = any(last == word or last.endswith(f"_{word}") for word in SECRET_WORDS)
        if _mentions(annotation, SecretStr):
            with pytest.raises(ValidationError, match="literal secrets are refused"):
                model.model_validate({where.rsplit(".", 1)[-1]: "plain-text-secret"})
        else:
            assert not secretish, f"{name}.{where} looks like a secret but is not a SecretRef"


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, object, type]]:
    for field_name, info in model.model_fields.items():
        where = f"{prefix}{field_name}"
        yield where, info.annotation, model
        for inner in _models_in(info.annotation):
            yield from _fields(inner, where + ".")


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _mentions(annotation: object, target: type) -> bool:
    return annotation is target or any(_mentions(a, target) for a in typing.get_args(annotation))


# ---------------------------------------------------------------- behaviour harnesses

@dataclass
class Live:
    connector: object
    count_orders: Callable[[str], int]      # orders downstream carrying this key


@contextmanager
def _webhook(tmp_path, monkeypatch):
    recv = OrderReceiver()
    with serve_asgi(recv.app()) as url:
        settings = {"url": f"{url}/orders", "lookup_url": f"{url}/orders/{{key}}"}
        yield settings, (lambda key: int(key in recv.orders))


@contextmanager
def _inventree(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFORMANCE_INVENTREE_TOKEN", "inv-conformance-token")
    emulator = InvenTreeEmulator(token="inv-conformance-token").seed()
    with serve_asgi(emulator.app()) as url:
        yield ({"url": url, "token": "${CONFORMANCE_INVENTREE_TOKEN}"},
               lambda key: len(emulator.orders_with(key)))


@contextmanager
def _folder(tmp_path, monkeypatch, suffix: str):
    yield {"path": str(tmp_path / "out")}, \
        (lambda key: len(list((tmp_path / "out").glob(f"{key}{suffix}"))))


@contextmanager
def _files_source(tmp_path, monkeypatch):
    (tmp_path / "catalog.csv").write_text("sku,description,category,unit,supplier,unit_price\n"
                                          "A1,Bolt,hw,each,Acme,0.5\n")
    (tmp_path / "positions.csv").write_text("sku,location,on_hand\nA1,main,10\n")
    (tmp_path / "history.csv").write_text("sku,location,date,quantity\nA1,main,2026-11-01,3\n")
    yield {"path": str(tmp_path)}, None


@contextmanager
def _sql_source(tmp_path, monkeypatch):
    import sqlalchemy as sa
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stock (sku TEXT, location TEXT, on_hand REAL)")
        conn.exec_driver_sql("INSERT INTO stock VALUES ('A1', 'main', 10)")
    engine.dispose()
    yield {"url": f"sqlite:///{tmp_path / 'w.db'}", "queries": {
        "catalog": "SELECT DISTINCT sku FROM stock",
        "positions": "SELECT sku, location, on_hand FROM stock",
        "history": "SELECT sku, location, '2026-11-01' AS date, 1 AS quantity FROM stock"}}, None


@contextmanager
def _rest_source(tmp_path, monkeypatch):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def rows(request):
        return JSONResponse([{"sku": "A1", "loc": "main", "n": 10, "day": "2026-11-01"}])
    with serve_asgi(Starlette(routes=[Route("/rows", rows)])) as url:
        yield {"base_url": url, "endpoints": {
            "catalog": {"path": "/rows", "fields": {"sku": "sku"}},
            "positions": {"path": "/rows", "fields": {"sku": "sku", "location": "loc",
                                                     "on_hand": "n"}},
            "history": {"path": "/rows", "fields": {"sku": "sku", "location": "loc",
                                                   "date": "day", "quantity": "n"}}}}, None


ORDER_SINKS = {"webhook": _webhook, "inventree": _inventree,
               "csv": lambda t, m: _folder(t, m, ".csv"),
               "files": lambda t, m: _folder(t, m, ".json")}
SOURCES = {"files": _files_source, "sql": _sql_source, "rest": _rest_source,
           "inventree": _inventree}
SINK_CASES = [n for n, r in CASES if r == "order_sink"]
SOURCE_CASES = [n for n, r in CASES if r == "inventory_source"]


@pytest.mark.parametrize("name", SINK_CASES)
def test_order_sink_submits_once_per_key_and_finds_it(name, tmp_path, monkeypatch):
    harness = ORDER_SINKS.get(name)
    assert harness, f"order sink {name!r} has no conformance harness: add one to ORDER_SINKS"
    order = purchase_order()
    cls = available("order_sink")[name]
    with harness(tmp_path, monkeypatch) as (options, count):
        with cls(cls.Settings.model_validate(options),
                 ConnectorContext(org="acme", config_dir=str(tmp_path))) as sink:
            assert sink.lookup(order.idempotency_key) is None
            first = sink.submit(order, order.idempotency_key)
            second = sink.submit(order, order.idempotency_key)
            found = sink.lookup(order.idempotency_key)
        assert first.accepted and second.accepted and second.duplicate
        assert count(order.idempotency_key) == 1
        assert found is not None and found.external_id == first.external_id


def _pull(name: str, tmp_path, monkeypatch):
    cls = available("inventory_source")[name]
    with SOURCES[name](tmp_path, monkeypatch) as (options, _), \
            cls(cls.Settings.model_validate(options),
                ConnectorContext(org="acme", config_dir=str(tmp_path))) as src:
        return src.pull(Scope())


@pytest.mark.parametrize("name", SOURCE_CASES)
def test_source_returns_the_contract_columns(name, tmp_path, monkeypatch):
    assert name in SOURCES, f"source {name!r} has no conformance harness: add one to SOURCES"
    snap = _pull(name, tmp_path, monkeypatch)
    for frame, columns in ((snap.catalog, CATALOG_COLUMNS), (snap.offers, OFFER_COLUMNS),
                           (snap.positions, POSITION_COLUMNS), (snap.history, HISTORY_COLUMNS),
                           (snap.open_orders, OPEN_ORDER_COLUMNS)):
        assert tuple(frame.columns[:len(columns)]) == columns
    assert len(snap.catalog) >= 1 and len(snap.positions) >= 1


@pytest.mark.parametrize("name", SOURCE_CASES)
def test_a_sound_source_snapshot_passes_cleaning_whole(name, tmp_path, monkeypatch):
    """The contract with the cleaning step: good data from any source is never quarantined."""
    from restock.clean import clean_snapshot
    snap = _pull(name, tmp_path, monkeypatch)
    result = clean_snapshot(snap)
    assert result.quarantined == [] and result.blocked_skus == {}
    assert len(result.snapshot.positions) == len(snap.positions)


# ---------------------------------------------------------------- the connector guide

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"
ROLE_KEYS = {"source": "inventory_source", "order_sink": "order_sink",
             "summary_sinks": "summary_sink"}


def _fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)


@pytest.fixture
def guide_connector(monkeypatch):
    """The guide's example connector, loaded as a module and registered as ``odoo``."""
    import restock.connectors as registry
    [code] = _fenced("python")
    module = types.ModuleType("acme_restock_odoo_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)   # pydantic resolves names here
    exec(compile(code, str(DOCS), "exec"), module.__dict__)   # noqa: S102 - our own docs
    monkeypatch.setattr(registry, "_extra", dict(registry._extra))
    registry.register("odoo", module)
    return module


def test_every_yaml_example_in_the_connector_guide_is_valid(guide_connector, monkeypatch):
    from restock.http import HttpSettings
    checked = 0
    for block in _fenced("yaml"):
        for variable in re.findall(r"\$\{([A-Z_]+)\}", block):
            monkeypatch.setenv(variable, "value-from-the-guide")
        data = yaml.safe_load(block)
        refs = [(role, ref) for key, role in ROLE_KEYS.items() if key in data
                for ref in (data[key] if isinstance(data[key], list) else [data[key]])]
        if not refs:                          # a fragment of the shared HTTP keys
            HttpSettings.model_validate({"base_url": "https://example.com", **data})
            checked += 1
        for role, ref in refs:
            options = dict(ref)
            cls = available(role)[options.pop("connector")]
            cls.Settings.model_validate(options)
            checked += 1
    assert checked >= 12


def test_the_guides_third_party_connector_works(guide_connector):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    stored: list[dict] = []

    async def orders(request: Request):
        if request.method == "POST":
            stored.append({"id": len(stored) + 1, **(await request.json())})
            return JSONResponse(stored[-1], status_code=201)
        return JSONResponse([o for o in stored if o["ref"] == request.query_params["ref"]])

    cls = available("order_sink")["odoo"]
    order = purchase_order()
    with serve_asgi(Starlette(routes=[Route("/api/purchase-orders", orders,
                                            methods=["GET", "POST"])])) as url:
        settings = cls.Settings.model_validate({"url": f"{url}/api/"})
        with cls(settings, ConnectorContext(org="acme")) as sink:
            first = sink.submit(order, order.idempotency_key)
            again = sink.submit(order, order.idempotency_key)
    assert len(stored) == 1 and stored[0]["partner"] == "Acme Components"
    assert again.duplicate and again.external_id == first.external_id == "1"


# ---------------------------------------------------------------- summary sinks

@contextmanager
def _summary_webhook(tmp_path, monkeypatch):
    recv = OrderReceiver()
    with serve_asgi(recv.app()) as url:
        yield {"url": f"{url}/summaries"}, lambda: len(recv.requests)


@contextmanager
def _summary_slack(tmp_path, monkeypatch):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    posted: list[bytes] = []

    async def hook(request):
        posted.append(await request.body())
        return Response("ok")
    with serve_asgi(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        monkeypatch.setenv("CONFORMANCE_SLACK_URL", f"{url}/hook")
        yield {"url": "${CONFORMANCE_SLACK_URL}"}, lambda: len(posted)


@contextmanager
def _summary_email(tmp_path, monkeypatch):
    import ssl
    trustme = pytest.importorskip("trustme")
    from tests.support.smtp import serve_smtp
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("CONFORMANCE_SMTP_PASSWORD", "smtp-conformance")
    with serve_smtp(server_tls, "restock", "smtp-conformance") as (port, mailbox):
        yield ({"host": "127.0.0.1", "port": port, "username": "restock",
                "password": "${CONFORMANCE_SMTP_PASSWORD}", "from_addr": "r@example.com",
                "to": ["p@example.com"], "ca_file": str(tmp_path / "ca.pem"), "timeout": 5},
               lambda: len(mailbox.messages))


@contextmanager
def _summary_files(tmp_path, monkeypatch):
    yield {"path": str(tmp_path / "summaries")}, \
        lambda: len(list((tmp_path / "summaries").glob("*.json")))


SUMMARY_SINKS = {"webhook": _summary_webhook, "slack": _summary_slack, "email": _summary_email,
                 "files": _summary_files}
SUMMARY_CASES = [n for n, r in CASES if r == "summary_sink"]


@pytest.mark.parametrize("name", SUMMARY_CASES)
def test_summary_sink_delivers_one_summary_per_post(name, tmp_path, monkeypatch):
    harness = SUMMARY_SINKS.get(name)
    assert harness, f"summary sink {name!r} has no conformance harness: add one to SUMMARY_SINKS"
    cls = available("summary_sink")[name]
    with harness(tmp_path, monkeypatch) as (options, delivered):
        with cls(cls.Settings.model_validate(options),
                 ConnectorContext(org="acme", config_dir=str(tmp_path))) as sink:
            assert delivered() == 0
            sink.post(run_summary())
        assert delivered() == 1


# ---------------------------------------------------------------- faults, for every connector

LOCAL = {"files", "csv"}        # no remote system: nothing can be down or refuse credentials
FAST_HTTP = {"retries": {"attempts": 2, "backoff": 0.01, "max_backoff": 0.02},
             "timeout": {"connect": 2, "read": 2, "total": 5}}
REST_ENDPOINTS = {"catalog": {"path": "/x", "fields": {"sku": "sku"}},
                  "positions": {"path": "/x", "fields": {"sku": "s", "location": "l",
                                                         "on_hand": "n"}},
                  "history": {"path": "/x", "fields": {"sku": "s", "location": "l",
                                                       "date": "d", "quantity": "q"}}}


def _remote_options(name: str, role: str, url: str, monkeypatch) -> dict:
    """Settings pointing connector ``name`` at ``url``, with the secret ``conformance-secret``."""
    monkeypatch.setenv("CONFORMANCE_SECRET", "conformance-secret-0042")
    host, port = url.split("//")[1].split(":")
    secret = "${CONFORMANCE_SECRET}"
    options = {
        ("webhook", "order_sink"): {"url": f"{url}/orders", "token": secret},
        ("webhook", "summary_sink"): {"url": f"{url}/summaries", "token": secret},
        ("rest", "inventory_source"): {"base_url": url, "endpoints": REST_ENDPOINTS,
                                       "auth": {"kind": "bearer", "token": secret}},
        ("inventree", "inventory_source"): {"url": url, "token": secret},
        ("inventree", "order_sink"): {"url": url, "token": secret},
        ("slack", "summary_sink"): {"url": "${CONFORMANCE_SLACK_URL}"},
        ("sql", "inventory_source"): {
            "url": f"postgresql+psycopg://restock@{host}:{port}/erp", "password": secret,
            "timeout": 2, "queries": {"catalog": "SELECT 1", "positions": "SELECT 1",
                                      "history": "SELECT 1"}},
        ("email", "summary_sink"): {"host": host, "port": int(port), "username": "restock",
                                    "password": secret, "from_addr": "r@example.com",
                                    "to": ["p@example.com"], "timeout": 2},
    }.get((name, role))
    monkeypatch.setenv("CONFORMANCE_SLACK_URL", f"{url}/hook/conformance-secret-0042")
    assert options is not None, f"{name} {role} has no fault harness: add it to _remote_options"
    http = name not in ("sql", "email")
    return {**options, **(FAST_HTTP if http else {})}


def _act(connector: object, role: str) -> None:
    order = purchase_order()
    if role == "inventory_source":
        connector.pull(Scope())                            # type: ignore[attr-defined]
    elif role == "order_sink":
        connector.submit(order, order.idempotency_key)     # type: ignore[attr-defined]
    else:
        connector.post(run_summary())                      # type: ignore[attr-defined]


REMOTE_CASES = [(n, r) for n, r in CASES if n not in LOCAL]


@pytest.mark.parametrize("name, role", REMOTE_CASES, ids=[f"{n}-{r}" for n, r in REMOTE_CASES])
def test_a_system_that_is_down_is_unavailable_not_a_crash(name, role, monkeypatch):
    import socket

    from restock.errors import ConnectorUnavailable
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()                                   # nobody listens there now
    cls = available(role)[name]
    settings = cls.Settings.model_validate(_remote_options(name, role, url, monkeypatch))
    with structlog.testing.capture_logs() as logs, \
            cls(settings, ConnectorContext(org="acme")) as connector, \
            pytest.raises(ConnectorUnavailable) as caught:
        _act(connector, role)
    assert "conformance-secret-0042" not in str(caught.value) + repr(logs)


HTTP_CASES = [(n, r) for n, r in REMOTE_CASES if n not in ("sql", "email")]


@pytest.mark.parametrize("name, role", HTTP_CASES, ids=[f"{n}-{r}" for n, r in HTTP_CASES])
@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_name_the_system_and_never_the_secret(name, role, status,
                                                                  monkeypatch):
    from restock.errors import CredentialsRejected

    async def deny(scope, receive, send):
        body = b'{"detail": "invalid token conformance-secret-0042"}'   # some servers echo it
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    cls = available(role)[name]
    with serve_asgi(deny) as url:
        settings = cls.Settings.model_validate(_remote_options(name, role, url, monkeypatch))
        with structlog.testing.capture_logs() as logs, \
                cls(settings, ConnectorContext(org="acme")) as connector, \
                pytest.raises(CredentialsRejected, match="credentials rejected by ") as caught:
            _act(connector, role)
    assert "conformance-secret-0042" not in str(caught.value) + repr(logs)


# ---------------------------------------------------------------- the registry

def test_a_broken_plugin_is_a_one_line_error_and_hides_no_other(monkeypatch):
    from importlib.metadata import EntryPoint

    import restock.connectors as registry
    from restock.errors import ConfigError
    real = list(entry_points(group=ENTRY_POINT_GROUP))
    broken = EntryPoint("broken", "restock_no_such_plugin_module", ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [*real, broken])
    with structlog.testing.capture_logs() as logs:
        assert "files" in registry.available("order_sink")
    assert [e["connector"] for e in logs if e["event"] == "connector_unusable"] == ["broken"]
    with pytest.raises(ConfigError, match=r"connector 'broken' \(restock_no_such_plugin_module\) "
                                          r"cannot be loaded: ModuleNotFoundError"):
        registry.connector_class("broken", "order_sink")


def test_a_provider_of_the_wrong_kind_is_refused(monkeypatch):
    import restock.connectors as registry
    from restock.errors import ConfigError
    monkeypatch.setattr(registry, "_extra", dict(registry._extra))
    registry.register("confused", types.SimpleNamespace(order_sink=dict, summary_sink="text"))
    with pytest.raises(ConfigError, match="connector 'confused': its order_sink is not a subclass of OrderSink"):
        registry.connector_class("confused", "order_sink")
    with pytest.raises(ConfigError, match="its summary_sink is not a subclass of SummarySink"):
        registry.connector_class("confused", "summary_sink")
    with pytest.raises(ConfigError, match=r"unknown summary sink connector 'nothing' "
                                          r"\(available: .*webhook"):
        registry.connector_class("nothing", "summary_sink")


@pytest.mark.parametrize("name, role", CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_connector_classes_say_what_they_are(name, role):
    cls = available(role)[name]
    assert cls.name == name, f"{cls.__name__}.name is {cls.name!r}, registered as {name!r}"
    assert (cls.__doc__ or "").strip(), f"{cls.__name__} needs a docstring saying what it is for"
