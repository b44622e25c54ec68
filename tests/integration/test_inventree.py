"""The InvenTree source and order sink against an emulated InvenTree on loopback (and, opt-in,
a real one: set RESTOCK_INVENTREE_URL and RESTOCK_INVENTREE_TOKEN)."""

from __future__ import annotations

import os
from datetime import date

import pytest
import structlog

from restock.connectors import ConnectorContext, Scope
from restock.domain import (CATALOG_COLUMNS, HISTORY_COLUMNS, OFFER_COLUMNS, OPEN_ORDER_COLUMNS,
                            POSITION_COLUMNS)
from restock.errors import ConnectorError, CredentialsRejected
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


REAL_URL = os.environ.get("RESTOCK_INVENTREE_URL")
REAL_TOKEN = os.environ.get("RESTOCK_INVENTREE_TOKEN")


@pytest.mark.skipif(not (REAL_URL and REAL_TOKEN),
                    reason="no real InvenTree: set RESTOCK_INVENTREE_URL and "
                           "RESTOCK_INVENTREE_TOKEN to run these against one")
class TestRealInvenTree:
    """Read-only checks against a real server (a development InvenTree on 127.0.0.1)."""

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

    def test_lookup_of_an_unknown_key_is_none(self, monkeypatch):
        with InvenTreeOrderSink(self._settings(monkeypatch), ConnectorContext(org="real")) as out:
            assert out.lookup("restock-real-0000000000000000nothere") is None
