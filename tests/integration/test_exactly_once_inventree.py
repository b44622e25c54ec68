"""InvenTree takes an order in several requests (create the purchase order, add each line, place
it): restock dies right after each one of them in turn, and the next run must finish the order —
one purchase order per key, each line once, placed — never start a second one.

The death is an exception nothing in restock catches (as SIGKILL leaves it), raised by the HTTP
client after the N-th request of a send has been answered, so the emulated InvenTree on loopback
has acted and restock has not recorded it.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from restock.connectors import ConnectorContext
from restock.http import HttpClient
from restock.store import OrderStatus, open_store
from restock.submit import reconcile, submit_approved
from restock_connectors.inventree import InvenTreeOrderSink
from tests.support.inventree import PLACED, InvenTreeEmulator
from tests.support.loopback import serve_asgi
from tests.support.samples import purchase_order

S = OrderStatus
ORG = "itcrash"
TOKEN = "inv-crash-0a7e33c1-token"
FULL_SEND = 8           # requests of one order's send: find it, supplier, parts, lines, create,
                        # two lines, place


class Died(BaseException):
    """Stands in for SIGKILL: nothing in restock catches it."""


@pytest.fixture
def inventree(monkeypatch):
    monkeypatch.setenv("ITCRASH_TOKEN", TOKEN)
    emulator = InvenTreeEmulator(token=TOKEN).seed()
    with serve_asgi(emulator.app()) as url:
        yield emulator, url


def _sink(url: str) -> InvenTreeOrderSink:
    settings = InvenTreeOrderSink.Settings.model_validate(
        {"url": url, "token": "${ITCRASH_TOKEN}",
         "retries": {"attempts": 2, "backoff": 0.01, "max_wait": 1}})
    return InvenTreeOrderSink(settings, ConnectorContext(org=ORG))


def _die_after_request(monkeypatch, n: int) -> list[str]:
    """The n-th request from now on is answered, then the process 'dies'."""
    seen: list[str] = []
    original = HttpClient.request

    def request(self, method, url, **kwargs):
        response = original(self, method, url, **kwargs)
        seen.append(f"{method} {url}")
        if len(seen) == n:
            raise Died()
        return response
    monkeypatch.setattr(HttpClient, "request", request)
    return seen


@pytest.mark.parametrize("n", range(1, FULL_SEND + 1))
def test_dying_after_any_request_of_a_send_still_gives_one_placed_order(
        inventree, monkeypatch, tmp_path, n):
    emulator, url = inventree
    order = purchase_order(ORG, slot="2026-11-25")
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.ledger.record(order, slot="2026-11-25", run_id="run-0", status=S.APPROVED,
                            expires_at=datetime.now(UTC) + timedelta(days=1))
        seen = _die_after_request(monkeypatch, n)
        try:
            with _sink(url) as sink:
                submit_approved(store.ledger, sink, ORG, datetime.now(UTC))
        except Died:
            pass
        assert len(seen) == n, "the send made fewer requests than the case dies after"
        monkeypatch.undo()
        monkeypatch.setenv("ITCRASH_TOKEN", TOKEN)
        with _sink(url) as sink:                       # the next run
            reconcile(store.ledger, sink, ORG)
            submit_approved(store.ledger, sink, ORG, datetime.now(UTC))
        status = store.ledger.get(order.order_id).status
    orders = emulator.orders_with(order.idempotency_key)
    assert len(orders) == 1, f"died after {seen[-1]}: {len(orders)} purchase orders"
    assert orders[0]["status"] == PLACED and status == S.SUBMITTED
    lines = emulator.lines_of(orders[0]["pk"])
    assert Counter(line["reference"] for line in lines) == {"M3-SCREW": 1, "CABLE-TIE": 1}
    packs = {line["reference"]: line["quantity"] for line in lines}
    assert packs == {"M3-SCREW": math.ceil(250 / 100), "CABLE-TIE": 500}
