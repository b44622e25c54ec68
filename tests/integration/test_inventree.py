"""The InvenTree source and order sink against an emulated InvenTree on loopback (and, opt-in,
a real one: set RESTOCK_INVENTREE_URL and RESTOCK_INVENTREE_TOKEN)."""

from __future__ import annotations

import os
import uuid
from datetime import date

import pytest
import structlog
from starlette.responses import JSONResponse

from restock.connectors import ConnectorContext, Scope
from restock.domain import (
    CATALOG_COLUMNS,
    HISTORY_COLUMNS,
    OFFER_COLUMNS,
    OPEN_ORDER_COLUMNS,
    POSITION_COLUMNS,
    OrderLine,
    PurchaseOrder,
    idempotency_key,
)
from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock_connectors.inventree import InvenTreeOrderSink, InvenTreeSource
from tests.support.inventree import PENDING, PLACED, InvenTreeEmulator
from tests.support.loopback import serve_asgi
from tests.support.samples import purchase_order

TOKEN = "inv-4a1f0c9e2b7d4411aa00-20271124"
FAST = {"backoff": 0.01, "max_backoff": 0.02, "max_wait": 2}


@pytest.fixture
def inventree(monkeypatch):
    monkeypatch.setenv("INVENTREE_TOKEN", TOKEN)
    emulator = InvenTreeEmulator(token=TOKEN).seed()
    with serve_asgi(emulator.app()) as url:
        yield emulator, url


def settings(url: str, **extra):
    return InvenTreeSource.Settings.model_validate(
        {"url": url, "token": "${INVENTREE_TOKEN}", "retries": FAST, **extra})


def source(url: str, **extra) -> InvenTreeSource:
    return InvenTreeSource(settings(url, **extra), ConnectorContext(org="acme"))


def sink(url: str, **extra) -> InvenTreeOrderSink:
    return InvenTreeOrderSink(settings(url, **extra), ConnectorContext(org="acme"))


def test_pull_reads_parts_offers_stock_history_and_open_orders(inventree):
    emulator, url = inventree
    with source(url, page_size=2) as src:
        snap = src.pull(Scope())
    assert sorted(snap.catalog["sku"]) == ["CABLE-TIE", "LABEL-ROLL", "M3-SCREW"]
    screw = snap.offers[snap.offers["supplier_sku"] == "ACME-M3-8"].sort_values("min_qty")
    assert list(screw["unit_price"]) == pytest.approx([0.0005, 0.0003])   # per unit, not pack
    assert list(screw["min_qty"]) == [100.0, 100000.0]
    assert set(screw["pack_size"]) == {100.0}
    pos = snap.positions.set_index(["sku", "location"])
    assert pos.loc[("M3-SCREW", "Main Warehouse"), "on_hand"] == 450
    assert pos.loc[("M3-SCREW", "Main Warehouse/Shelf A"), "on_hand"] == 150
    assert pos.loc[("LABEL-ROLL", "Main Warehouse"), "on_order"] == 6     # 10 ordered, 4 in
    hist = snap.history.set_index(["sku", "date"])["quantity"]
    assert hist[("M3-SCREW", date(2026, 11, 20))] == 400                  # 350 + 50 removed
    assert hist[("CABLE-TIE", date(2026, 11, 22))] == 30
    assert len(snap.history) == 2                                         # creation is no use
    assert snap.open_orders.to_dict("records")[0]["reference"] == "PO-0001"
    lists = [c for c in emulator.calls if c[1] != "/api/"]
    assert all("limit" in query for _, _, query in lists)   # unpaginated lists would be cut


def test_pull_frames_have_the_contract_columns(inventree):
    _, url = inventree
    with source(url) as src:
        snap = src.pull(Scope(skus=("M3-SCREW",), since=date(2026, 11, 21)))
    for frame, columns in ((snap.catalog, CATALOG_COLUMNS), (snap.offers, OFFER_COLUMNS),
                           (snap.positions, POSITION_COLUMNS), (snap.history, HISTORY_COLUMNS),
                           (snap.open_orders, OPEN_ORDER_COLUMNS)):
        assert tuple(frame.columns) == columns
    assert set(snap.catalog["sku"]) == {"M3-SCREW"}
    assert snap.history.empty                                              # all before since


def test_history_is_asked_from_the_scope_start_only(inventree):
    emulator, url = inventree
    with source(url) as src:
        snap = src.pull(Scope(since=date(2026, 11, 21)))
    [query] = [q for _, path, q in emulator.calls if path == "/api/stock/track/"]
    assert query["min_date"] == "2026-11-20"
    assert snap.history.to_dict("records") == [{"sku": "CABLE-TIE", "location": "Main Warehouse",
                                                "date": date(2026, 11, 22), "quantity": 30.0}]


def test_wrong_token_is_rejected_and_never_logged(inventree, monkeypatch):
    _, url = inventree
    monkeypatch.setenv("INVENTREE_TOKEN", "inv-wrong-token-0000")
    with structlog.testing.capture_logs() as logs, source(url) as src, \
            pytest.raises(CredentialsRejected) as caught:
        src.pull(Scope())
    assert str(caught.value) == "credentials rejected by inventree (HTTP 401)"
    assert "inv-wrong-token-0000" not in repr(logs) + repr(caught.value)


def test_a_row_without_pk_is_a_connector_error(inventree):
    emulator, url = inventree
    emulator.tables["part"].append({"name": "ghost", "purchaseable": True})
    with source(url) as src, pytest.raises(ConnectorError, match="a row without pk"):
        src.pull(Scope())


def test_submit_creates_places_and_converts_units_to_packs(inventree):
    emulator, url = inventree
    order = purchase_order()
    with sink(url) as out:
        result = out.submit(order, order.idempotency_key)
    [po] = emulator.orders_with(order.idempotency_key)
    assert po["supplier_reference"] == order.idempotency_key
    assert po["status"] == PLACED and result.external_id == po["reference"]
    lines = {line["sku"]: line for line in emulator.lines_of(po["pk"])}
    assert lines["ACME-M3-8"]["part"] == 1                  # the supplier part id
    assert lines["ACME-M3-8"]["quantity"] == 3              # 250 units -> 3 packs of 100
    assert lines["ACME-M3-8"]["purchase_price"] == 0.05     # priced from the price breaks
    assert lines["ACME-CT-150"]["quantity"] == 500


def test_submit_twice_is_one_order_and_lookup_finds_it(inventree):
    emulator, url = inventree
    order = purchase_order()
    with sink(url) as out:
        assert out.lookup(order.idempotency_key) is None
        first = out.submit(order, order.idempotency_key)
        again = out.submit(order, order.idempotency_key)
        found = out.lookup(order.idempotency_key)
    assert len(emulator.orders_with(order.idempotency_key)) == 1
    assert again.duplicate and again.external_id == first.external_id
    assert found is not None and found.external_id == first.external_id
    assert len(emulator.lines_of(emulator.orders_with(order.idempotency_key)[0]["pk"])) == 2


def test_a_half_made_order_is_completed_not_doubled(inventree):
    emulator, url = inventree
    order = purchase_order()
    po = emulator.add("po", reference="PO-0002", supplier=1, status=PENDING,
                      status_text="Pending", supplier_reference=order.idempotency_key,
                      description="", destination=None, target_date=None)
    emulator.add("po_line", order=po["pk"], part=1, quantity=3.0, received=0.0,
                 purchase_price=0.05, sku="ACME-M3-8")
    with sink(url) as out:
        assert out.lookup(order.idempotency_key) is None     # pending: submit must finish it
        result = out.submit(order, order.idempotency_key)
    assert result.duplicate and result.external_id == "PO-0002"
    quantities = {line["sku"]: line["quantity"] for line in emulator.lines_of(po["pk"])}
    assert quantities == {"ACME-M3-8": 3.0, "ACME-CT-150": 500.0}
    assert po["status"] == PLACED
    assert len(emulator.tables["po"]) == 2


def test_lines_without_supplier_sku_are_matched_by_part_reading_parts_once(inventree):
    emulator, url = inventree
    order = purchase_order()
    order = order.model_copy(update={"lines": [line.model_copy(update={"supplier_sku": None})
                                               for line in order.lines]})
    with sink(url) as out:
        out.submit(order, order.idempotency_key)
    [po] = emulator.orders_with(order.idempotency_key)
    assert sorted(line["sku"] for line in emulator.lines_of(po["pk"])) == \
        ["ACME-CT-150", "ACME-M3-8"]                       # Acme's parts, not Bolt Co's
    assert len([c for c in emulator.calls if c[:2] == ("GET", "/api/part/")]) == 1


def test_a_key_too_long_for_supplier_reference_is_refused_before_anything_is_made(inventree):
    emulator, url = inventree
    org = "northwind-traders-central-warehouse-emea"
    order = purchase_order(org=org)
    with sink(url) as out, pytest.raises(ConnectorError, match="does not fit a PO's "
                                                               "supplier_reference.*key_field"):
        out.submit(order, order.idempotency_key)
    assert len(emulator.tables["po"]) == 1
    with sink(url, key_field="description") as out:
        first = out.submit(order, order.idempotency_key)
        again = out.submit(order, order.idempotency_key)
        found = out.lookup(order.idempotency_key)
    assert len(emulator.orders_with(order.idempotency_key)) == 1
    assert again.duplicate and found is not None and found.external_id == first.external_id


def test_pack_size_from_its_text_when_the_number_is_missing(inventree):
    emulator, url = inventree
    del emulator.tables["supplier_part"][0]["pack_quantity_native"]    # an older server
    order = purchase_order()
    with sink(url) as out:
        out.submit(order, order.idempotency_key)
    [po] = emulator.orders_with(order.idempotency_key)
    assert {x["sku"]: x["quantity"] for x in emulator.lines_of(po["pk"])}["ACME-M3-8"] == 3


@pytest.mark.parametrize("pack", ["1 box", "0"])
def test_a_pack_size_that_is_not_a_positive_number_stops_the_order(inventree, pack):
    emulator, url = inventree
    emulator.tables["supplier_part"][0].update(pack_quantity=pack, pack_quantity_native=None)
    order = purchase_order()
    with sink(url) as out, pytest.raises(ConnectorError, match="supplier part 1 pack_quantity"):
        out.submit(order, order.idempotency_key)
    assert emulator.orders_with(order.idempotency_key) == []     # nothing half-made


def test_a_line_without_a_supplier_part_stops_the_order_before_it_is_made(inventree):
    emulator, url = inventree
    order = purchase_order()
    line = order.lines[0].model_copy(update={"sku": "GHOST", "supplier_sku": "NOPE-1"})
    order = order.model_copy(update={"lines": [*order.lines, line]})
    with sink(url) as out, pytest.raises(ConnectorError, match="no supplier part of "
                                                               "'Acme Components' for sku 'GHOST'"):
        out.submit(order, order.idempotency_key)
    assert emulator.orders_with(order.idempotency_key) == []


def test_explicit_prices_are_per_pack(inventree):
    emulator, url = inventree
    order = purchase_order()
    with sink(url, auto_pricing=False) as out:
        out.submit(order, order.idempotency_key)
    [po] = emulator.orders_with(order.idempotency_key)
    line = next(x for x in emulator.lines_of(po["pk"]) if x["sku"] == "ACME-M3-8")
    assert line["purchase_price"] == pytest.approx(5.0)      # 0.05 per unit x 100 per pack


def test_busy_server_is_retried_without_duplicating(inventree):
    emulator, url = inventree
    order = purchase_order()
    emulator.fail_next[:] = [503, 429]
    with sink(url) as out:
        out.submit(order, order.idempotency_key)
    assert len(emulator.orders_with(order.idempotency_key)) == 1


def test_unknown_supplier_is_a_clear_error(inventree):
    emulator, url = inventree
    order = purchase_order(supplier="Nobody Ltd")
    with sink(url) as out, pytest.raises(ConnectorError, match="supplier 'Nobody Ltd'"):
        out.submit(order, order.idempotency_key)
    assert emulator.orders_with(order.idempotency_key) == []


def test_a_line_failing_half_way_is_unavailable_then_completed_once(inventree):
    emulator, url = inventree
    order = purchase_order()
    emulator.fail_on["POST /api/order/po-line/"] = [0, 500]     # the second line fails
    with sink(url) as out, pytest.raises(ConnectorUnavailable, match="inventree unavailable: "
                                                                     "POST /api/order/po-line/"):
        out.submit(order, order.idempotency_key)
    [po] = emulator.orders_with(order.idempotency_key)
    assert po["status"] == PENDING and len(emulator.lines_of(po["pk"])) == 1
    with sink(url) as out:
        assert out.lookup(order.idempotency_key) is None       # half-made is not "there"
        result = out.submit(order, order.idempotency_key)
    assert result.accepted and result.external_id == po["reference"]
    assert po["status"] == PLACED and len(emulator.orders_with(order.idempotency_key)) == 1
    assert sorted(line["quantity"] for line in emulator.lines_of(po["pk"])) == [3.0, 500.0]


def test_issue_failing_leaves_a_pending_order_that_the_retry_places(inventree):
    emulator, url = inventree
    order = purchase_order()
    next_pk = len(emulator.tables["po"]) + 1
    emulator.fail_on[f"POST /api/order/po/{next_pk}/issue/"] = [500]
    with sink(url) as out, pytest.raises(ConnectorUnavailable):
        out.submit(order, order.idempotency_key)
    with sink(url) as out:
        out.submit(order, order.idempotency_key)
    [po] = emulator.orders_with(order.idempotency_key)
    assert po["pk"] == next_pk and po["status"] == PLACED and len(emulator.lines_of(next_pk)) == 2


def test_a_web_page_instead_of_the_api_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("INVENTREE_TOKEN", TOKEN)
    async def login_page(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<!doctype html><title>Login"})

    with serve_asgi(login_page) as url, source(url) as src, \
            pytest.raises(ConnectorError, match=r"inventree: malformed JSON from /api/part/"):
        src.pull(Scope())


@pytest.mark.parametrize("table, row, message", [
    ("stock", {"part": 1, "quantity": "lots", "location": 1}, "stock item 5: not a number"),
    ("supplier_part", {"supplier": 1, "SKU": "X"}, "supplier part 5 lacks part"),
    ("track", {"item": 1, "part": 1, "date": "yesterday", "tracking_type": 12,
               "deltas": {"removed": 1}}, "stock tracking date not understood"),
])
def test_wrong_types_and_missing_fields_name_the_record(inventree, table, row, message):
    emulator, url = inventree
    emulator.add(table, **row)
    with source(url) as src, pytest.raises(ConnectorError, match=message):
        src.pull(Scope())


def test_a_list_that_never_ends_is_cut_at_max_pages(monkeypatch):
    monkeypatch.setenv("INVENTREE_TOKEN", TOKEN)
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def endless(request):               # every page full, the count always ahead
        limit, offset = int(request.query_params["limit"]), int(request.query_params["offset"])
        rows = [{"pk": offset + i + 1, "name": f"P{offset + i}", "active": True}
                for i in range(limit)]
        return JSONResponse({"count": offset + 2 * limit, "results": rows})

    with serve_asgi(Starlette(routes=[Route("/api/part/", endless)])) as url, \
            source(url, page_size=2, max_pages=20) as src, \
            pytest.raises(ConnectorError, match="more than 20 pages"):
        src.pull(Scope())


def _seed_catalogue(http, tag: str) -> tuple[dict, dict, dict]:
    """A supplier, a part and its supplier part sold in packs of 100, created through the API."""
    company = http.post_json("company/", {
        "name": f"restock test supplier {tag}", "description": "restock connector test",
        "is_supplier": True, "is_customer": False, "is_manufacturer": False, "currency": "USD"})
    part = http.post_json("part/", {
        "name": f"restock test part {tag}", "IPN": f"RT-{tag}", "description": "restock test",
        "purchaseable": True, "active": True, "component": True})
    supplier_part = http.post_json("company/part/", {
        "part": part["pk"], "supplier": company["pk"], "SKU": f"RT-{tag}-C100",
        "pack_quantity": "100"})
    http.post_json("company/price-break/", {"part": supplier_part["pk"], "quantity": 1,
                                            "price": "5.00", "price_currency": "USD"})
    return company, part, supplier_part


def _order_roundtrip(settings_) -> None:
    """Seed, order 250 units twice, and check InvenTree holds one placed PO of 3 packs."""
    tag = uuid.uuid4().hex[:8]
    context = ConnectorContext(org="restock-test")
    with InvenTreeOrderSink(settings_, context) as out:
        company, _part, supplier_part = _seed_catalogue(out.http, tag)
        line = OrderLine(sku=f"RT-{tag}", supplier=company["name"], quantity=250,
                         unit_price=0.05, pack_size=100, supplier_sku=supplier_part["SKU"])
        key = idempotency_key("restock-test", company["name"], tag)
        order = PurchaseOrder(order_id=f"po-{tag}", org="restock-test",
                              supplier=company["name"], currency="USD", idempotency_key=key,
                              lines=[line])
        assert out.lookup(key) is None
        first = out.submit(order, key)
        again = out.submit(order, key)
        found = out.lookup(key)
        [po] = [p for p in out.http.get_json("order/po/", {"search": key})
                if p.get("supplier_reference") == key]
        lines = out.http.get_json("order/po-line/", {"order": po["pk"]})
    assert again.duplicate and found is not None
    assert first.external_id == again.external_id == found.external_id == po["reference"]
    assert po["status"] == PLACED
    assert [(x["part"], float(x["quantity"])) for x in lines] == [(supplier_part["pk"], 3.0)]
    with InvenTreeSource(settings_, context) as src:
        snap = src.pull(Scope(skus=(f"RT-{tag}",)))
    offer = snap.offers.iloc[0]
    assert (offer["pack_size"], offer["unit_price"]) == (100.0, pytest.approx(0.05))
    assert snap.positions["on_order"].sum() == 300.0          # 3 packs of 100, not yet received


def test_order_roundtrip_on_a_catalogue_made_through_the_api(inventree):
    _, url = inventree
    _order_roundtrip(settings(url))


REAL_URL = os.environ.get("RESTOCK_INVENTREE_URL")
REAL_TOKEN = os.environ.get("RESTOCK_INVENTREE_TOKEN")


@pytest.mark.skipif(not (REAL_URL and REAL_TOKEN),
                    reason="no real InvenTree: set RESTOCK_INVENTREE_URL and "
                           "RESTOCK_INVENTREE_TOKEN to run these against one")
class TestRealInvenTree:
    """Checks against a real server (a development InvenTree on 127.0.0.1, never production)."""

    def _settings(self, monkeypatch):
        monkeypatch.setenv("RESTOCK_REAL_INVENTREE_TOKEN", REAL_TOKEN or "")
        return InvenTreeSource.Settings.model_validate(
            {"url": REAL_URL, "token": "${RESTOCK_REAL_INVENTREE_TOKEN}"})

    def test_check_and_pull(self, monkeypatch):
        with InvenTreeSource(self._settings(monkeypatch), ConnectorContext(org="real")) as src:
            src.check()
            snap = src.pull(Scope())
        assert tuple(snap.positions.columns) == POSITION_COLUMNS
        assert tuple(snap.offers.columns) == OFFER_COLUMNS

    def test_order_roundtrip(self, monkeypatch):
        """Writes: creates a supplier, a part and a placed PO named 'restock test ...'."""
        _order_roundtrip(self._settings(monkeypatch))

    def test_lookup_of_an_unknown_key_is_none(self, monkeypatch):
        with InvenTreeOrderSink(self._settings(monkeypatch), ConnectorContext(org="real")) as out:
            assert out.lookup("restock-real-0000000000000000nothere") is None
