"""The generic REST source against a JSON API on loopback (nested records, three paginations)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from restock.connectors import ConnectorContext, Scope
from restock.domain import HISTORY_COLUMNS, POSITION_COLUMNS
from restock.errors import ConnectorError, CredentialsRejected
from restock_connectors.rest import RestSource
from tests.support.loopback import serve_asgi

TOKEN = "wms-token-31337abc"
ITEMS = [{"code": f"SKU{i}", "attributes": {"name": f"Item {i}", "group": "hw"}} for i in range(7)]


def _app(state: dict) -> Starlette:
    def authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def items(request: Request):
        if not authorised(request):
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        at = int(request.query_params.get("cursor", "0"))
        nxt = at + 3 if at + 3 < len(ITEMS) else None
        return JSONResponse({"data": ITEMS[at:at + 3], "meta": {"next_cursor": nxt}})

    async def stock(request: Request):
        rows = [{"item": {"code": f"SKU{i}"}, "warehouse": {"code": "W1"},
                 "qty": {"available": i * 10}} for i in range(7)]
        rows = state.get("stock", rows)
        limit, offset = int(request.query_params["limit"]), int(request.query_params["offset"])
        return JSONResponse({"results": rows[offset:offset + limit]})

    async def movements(request: Request):
        assert request.query_params["type"] == "issue"
        state.setdefault("movement_queries", []).append(dict(request.query_params))
        return JSONResponse([{"item": "SKU1", "warehouse": "W1", "booked_at": f"2026-11-0{d}",
                              "qty": d} for d in (1, 2, 3)])

    async def epoch(request: Request):
        return JSONResponse(state["epoch"])

    return Starlette(routes=[Route("/api/items", items), Route("/api/stock", stock),
                             Route("/api/movements", movements), Route("/api/epoch", epoch)])


@pytest.fixture
def wms(monkeypatch):
    monkeypatch.setenv("WMS_TOKEN", TOKEN)
    state: dict = {}
    with serve_asgi(_app(state)) as url:
        yield f"{url}/api", state


def config(base_url: str) -> dict:
    return {
        "base_url": base_url, "auth": {"kind": "bearer", "token": "${WMS_TOKEN}"},
        "retries": {"backoff": 0.01, "max_backoff": 0.02},
        "endpoints": {
            "catalog": {"path": "/items", "pagination": {"kind": "cursor", "items": "data",
                                                         "next": "meta.next_cursor"},
                        "fields": {"sku": "code", "description": "attributes.name",
                                   "category": "attributes.group"}},
            "positions": {"path": "/stock", "pagination": {"kind": "offset", "items": "results",
                                                           "page_size": 2},
                          "fields": {"sku": "item.code", "location": "warehouse.code",
                                     "on_hand": "qty.available"}},
            "history": {"path": "/movements", "params": {"type": "issue", "from": "{since}",
                                                         "tenant": "{org}"},
                        "fields": {"sku": "item", "location": "warehouse", "date": "booked_at",
                                   "quantity": "qty"}}}}


def source(cfg: dict) -> RestSource:
    return RestSource(RestSource.Settings.model_validate(cfg), ConnectorContext(org="acme"))


def test_maps_nested_fields_across_pages(wms):
    url, _ = wms
    with source(config(url)) as src:
        snap = src.pull(Scope(since=date(2026, 11, 2)))
    assert list(snap.catalog["sku"]) == [f"SKU{i}" for i in range(7)]
    assert snap.catalog["description"].iloc[6] == "Item 6"
    assert tuple(snap.positions.columns) == POSITION_COLUMNS
    assert list(snap.positions["on_hand"]) == [i * 10 for i in range(7)]
    assert tuple(snap.history.columns) == HISTORY_COLUMNS
    assert list(snap.history["quantity"]) == [2, 3]
    assert snap.offers.empty


def test_a_missing_field_names_record_and_path(wms):
    url, state = wms
    state["stock"] = [{"item": {"code": "SKU1"}, "warehouse": {"code": "W1"},
                       "qty": {"available": 1}}, {"item": {"code": "SKU2"}, "qty": {}}]
    with source(config(url)) as src, pytest.raises(
            ConnectorError, match=r"positions record 2 from /stock: missing field "
                                  r"'warehouse.code'"):
        src.pull(Scope())


def test_an_object_where_a_value_belongs_is_an_error(wms):
    url, state = wms
    state["stock"] = [{"item": {"code": "SKU1"}, "warehouse": {"code": "W1"}, "qty": {
        "available": {"value": 3}}}]
    with source(config(url)) as src, pytest.raises(ConnectorError, match="is a dict"):
        src.pull(Scope())


def test_wrong_token_is_rejected(wms, monkeypatch):
    url, _ = wms
    monkeypatch.setenv("WMS_TOKEN", "nope-nope-nope")
    with source(config(url)) as src, pytest.raises(CredentialsRejected,
                                                   match="credentials rejected by rest"):
        src.pull(Scope())


def test_unmapped_required_column_is_a_config_error():
    cfg = config("http://x")
    del cfg["endpoints"]["positions"]["fields"]["on_hand"]
    with pytest.raises(ValidationError, match="map the required column.*on_hand"):
        RestSource.Settings.model_validate(cfg)


def test_since_and_org_reach_the_history_query(wms):
    url, state = wms
    with source(config(url)) as src:
        src.pull(Scope(since=date(2026, 11, 2)))
        src.pull(Scope())
    with_since, without = state["movement_queries"]
    assert with_since == {"type": "issue", "from": "2026-11-02", "tenant": "acme"}
    assert without == {"type": "issue", "tenant": "acme"}        # all history: no lower bound


def test_link_and_page_number_paging_through_the_source(monkeypatch):
    monkeypatch.setenv("WMS_TOKEN", TOKEN)
    rows = [{"code": f"S{i}", "wh": "W", "n": i, "day": f"2026-11-0{i + 1}"} for i in range(7)]

    async def linked(request: Request):
        at = int(request.query_params.get("at", "0"))
        headers = {"Link": f'</api/linked?at={at + 3}>; rel="next"'} if at + 3 < 7 else {}
        return JSONResponse(rows[at:at + 3], headers=headers)

    async def paged(request: Request):
        page, size = int(request.query_params["p"]), int(request.query_params["size"])
        return JSONResponse({"rows": rows[(page - 1) * size:page * size]})

    app = Starlette(routes=[Route("/api/linked", linked), Route("/api/paged", paged)])
    with serve_asgi(app) as url:
        cfg = config(f"{url}/api")
        cfg["endpoints"]["catalog"] = {"path": "/linked", "pagination": {"kind": "link"},
                                       "fields": {"sku": "code"}}
        cfg["endpoints"]["positions"] = {
            "path": "/paged", "pagination": {"kind": "page", "items": "rows", "page_size": 2,
                                             "page_param": "p", "size_param": "size"},
            "fields": {"sku": "code", "location": "wh", "on_hand": "n"}}
        cfg["endpoints"]["history"] = {"path": "/paged", "pagination": {
            "kind": "page", "items": "rows", "page_param": "p", "size_param": "size"},
            "fields": {"sku": "code", "location": "wh", "date": "day", "quantity": "n"}}
        cfg.pop("auth")
        with source(cfg) as src:
            snap = src.pull(Scope())
    assert list(snap.catalog["sku"]) == [f"S{i}" for i in range(7)]
    assert list(snap.positions["on_hand"]) == list(range(7))


@pytest.mark.parametrize("stamps, unit", [
    ([1_793_577_600, 1_793_664_000], "seconds"),          # 2026-11-02 and 2026-11-03, UTC
    ([1_793_577_600_000, 1_793_664_000_000], "milliseconds"),
    ([20261102, 20261103], "yyyymmdd"),
])
def test_history_dates_as_numbers(wms, stamps, unit):
    url, state = wms
    cfg = config(url)
    cfg["endpoints"]["history"] = {"path": "/epoch", "fields": {
        "sku": "item", "location": "wh", "date": "at", "quantity": "n"}}
    state["epoch"] = [{"item": "SKU1", "wh": "W1", "at": at, "n": 1} for at in stamps]
    with source(cfg) as src:
        snap = src.pull(Scope())
    assert list(snap.history["date"]) == [date(2026, 11, 2), date(2026, 11, 3)], unit


def test_history_dates_as_small_numbers_are_refused(wms):
    url, state = wms
    cfg = config(url)
    cfg["endpoints"]["history"] = {"path": "/epoch", "fields": {
        "sku": "item", "location": "wh", "date": "at", "quantity": "n"}}
    state["epoch"] = [{"item": "SKU1", "wh": "W1", "at": 45962, "n": 1}]   # a spreadsheet's
    with source(cfg) as src, pytest.raises(ConnectorError, match="neither yyyymmdd nor Unix"):
        src.pull(Scope())


def test_a_promotions_endpoint_gives_the_calendar(wms):
    url, state = wms
    cfg = config(url)
    cfg["endpoints"]["promotions"] = {"path": "/epoch", "fields": {"sku": "item", "date": "day"}}
    state["epoch"] = [{"item": "SKU1", "day": 20261120}, {"item": "SKU2", "day": 20261121}]
    with source(cfg) as src:
        snap = src.pull(Scope(skus=["SKU1"]))
    assert snap.promotions.values.tolist() == [["SKU1", date(2026, 11, 20), 1.0]]
    cfg["endpoints"]["promotions"]["fields"]["location"] = "wh"
    with pytest.raises(ValidationError, match="promotions.fields: unknown column"):
        RestSource.Settings.model_validate(cfg)
