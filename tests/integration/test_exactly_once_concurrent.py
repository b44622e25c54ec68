"""Two senders at once — a scheduled run and an approval, two CLI runs, two daemon threads — and
an order still on its way: the second must not take it for one a crash left behind.

Reconciliation resolves ``submitting`` orders by asking the sink, which is right for an order
whose sender died, and wrong for one whose request has not reached the sink yet: "not there"
would send it a second time. So an order being sent names its sender (host and process), and
reconcile leaves it alone while that sender is alive (and, for another host, for a grace period).
The sender is the comment of the audit event that moved the order to submitting.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from restock.connectors import ConnectorContext
from restock.store import OrderStatus, open_store
from restock.store.schema import ledger_events
from restock.submit import reconcile, submit_approved
from restock_connectors.webhook import WebhookOrderSink
from tests.support.downstream import CountingReceiver, FaultProxy
from tests.support.loopback import serve_asgi
from tests.support.samples import purchase_order

S = OrderStatus
ORG = "twice"


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if "schema_version" not in t]
        if tables:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    engine.dispose()
    return url


def _approved(store, days=(23, 24, 25)) -> list:
    orders = [purchase_order(ORG, slot=f"2026-11-{day}") for day in days]
    later = datetime.now(UTC) + timedelta(days=1)
    for order in orders:
        store.ledger.record(order, slot=order.order_id, run_id="run-0", status=S.APPROVED,
                            expires_at=later)
    return orders


def _sink(url: str) -> WebhookOrderSink:
    settings = WebhookOrderSink.Settings.model_validate({
        "url": f"{url}/orders", "lookup_url": f"{url}/orders/{{key}}",
        "timeout": {"connect": 2, "read": 5, "total": 10}, "retries": {"attempts": 1}})
    return WebhookOrderSink(settings, ConnectorContext(org=ORG))


def test_a_run_meanwhile_does_not_resend_an_order_still_on_its_way(state_url):
    receiver = CountingReceiver()
    slow_posts = lambda method, target, body: "slow_before" if method == "POST" else "pass"
    with serve_asgi(receiver.app()) as backend:
        proxy = FaultProxy(backend, slow_posts, slow=0.8)
        with proxy.running() as url, open_store(state_url) as first, \
                open_store(state_url) as second:
            orders = _approved(first)
            problems: list[BaseException] = []

            def sending() -> None:
                try:
                    with _sink(url) as sink:
                        submit_approved(first.ledger, sink, ORG, datetime.now(UTC))
                except BaseException as err:  # noqa: BLE001 - reported by the test below
                    problems.append(err)

            thread = threading.Thread(target=sending)
            thread.start()
            _wait(lambda: first.ledger.list(ORG, [S.SUBMITTING]))
            with _sink(url) as sink:               # a second run starts while one is on its way
                reconcile(second.ledger, sink, ORG)
                submit_approved(second.ledger, sink, ORG, datetime.now(UTC))
            thread.join(30)
            with _sink(url) as sink:                # and a later run finds nothing to do
                reconcile(second.ledger, sink, ORG)
                submit_approved(second.ledger, sink, ORG, datetime.now(UTC))
            statuses = {e.key: e.status for e in second.ledger.list(ORG)}
    assert not problems, problems
    assert receiver.duplicates() == {}
    assert statuses == {o.idempotency_key: S.SUBMITTED for o in orders}


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class _Sink:
    """Counts lookups; the downstream system never has anything."""

    name = "probe"

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def lookup(self, key: str):
        self.lookups.append(key)


def _sending(store, order, who: str, age: timedelta = timedelta(0)) -> None:
    store.ledger.transition(order.order_id, S.SUBMITTING, comment=who)
    with store.engine.begin() as conn:
        conn.execute(ledger_events.update().where(ledger_events.c.order_id == order.order_id,
                                                  ledger_events.c.to_status == "submitting")
                     .values(at=datetime.now(UTC) - age))


def test_reconcile_waits_for_a_live_sender_and_resolves_a_dead_ones(state_url):
    host = socket.gethostname()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        with open_store(state_url) as store:
            live, crashed, remote, old_remote, legacy = _approved(store, days=(21, 22, 23, 24, 25))
            _sending(store, live, f"being sent by {host} pid {alive.pid}")
            _sending(store, crashed, f"being sent by {host} pid {dead.pid}")
            _sending(store, remote, "being sent by another-host pid 4242")
            _sending(store, old_remote, "being sent by another-host pid 4242",
                     age=timedelta(hours=2))
            _sending(store, legacy, None)
            sink = _Sink()
            reconcile(store.ledger, sink, ORG)
            status = {o.order_id: store.ledger.get(o.order_id).status
                      for o in (live, crashed, remote, old_remote, legacy)}
    finally:
        alive.kill()
        alive.wait()
    assert set(sink.lookups) == {crashed.idempotency_key, old_remote.idempotency_key,
                                 legacy.idempotency_key}
    assert status == {live.order_id: S.SUBMITTING, remote.order_id: S.SUBMITTING,
                      crashed.order_id: S.APPROVED, old_remote.order_id: S.APPROVED,
                      legacy.order_id: S.APPROVED}
