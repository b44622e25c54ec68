"""Whole cycles (and human approvals) against a webhook receiver behind a faulty network.

The same org runs over a generated warehouse once without faults (the reference), then again on
a fresh state with a seeded share of requests failing (500/503, 429, resets and timeouts before
and after the receiver acted, slow answers): runs repeat, as the schedule would, until nothing is
left to send, and the receiver must hold exactly the reference's orders, each once. In approval
mode every order waits; a person approves each (one with an edited quantity) while the network
misbehaves, and the same holds, with each decision audited.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from restock.approval import approve
from restock.config import load_org
from restock.cycle import run_org
from restock.demo import generate
from restock.store import OrderStatus, open_store
from tests.support.dates import PINNED_END
from tests.support.downstream import FAULTS, CountingReceiver, FaultProxy, seeded_plan
from tests.support.loopback import serve_asgi

pytestmark = pytest.mark.slow
S = OrderStatus
MAX_RUNS = 8


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cycle-faults") / "warehouse"
    generate(folder, seed=23, skus=12, end=PINNED_END)
    return folder


def _org(folder: Path, warehouse: Path, url: str, mode: str = "auto") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "netfault.yaml"
    path.write_text(f"""org: netfault
mode: {mode}
source: {{connector: files, path: {warehouse}, as_of: history_end}}
order_sink:
  connector: webhook
  url: {url}/orders
  lookup_url: {url}/orders/{{key}}
  timeout: {{connect: 1, read: 0.3, total: 2}}
  retries: {{attempts: 3, backoff: 0.01, max_backoff: 0.05, max_wait: 3}}
forecast: {{statsmodels_seconds: 0, history_days: 60}}
policy: {{max_bid: 100000}}
guard: {{max_multiple_of_usual: 1000, min_forecast_confidence: 0}}
""")
    path.chmod(0o640)
    return path


def _orders(receiver: CountingReceiver) -> dict[str, dict[str, float]]:
    return {key: {line["sku"]: line["quantity"] for line in order["body"]["lines"]}
            for key, order in receiver.orders.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, warehouse) -> dict[str, dict[str, float]]:
    receiver = CountingReceiver()
    folder = tmp_path_factory.mktemp("reference")
    with serve_asgi(receiver.app()) as url, \
            open_store(f"sqlite:///{folder / 'state.db'}") as store:
        run_org(load_org(_org(folder, warehouse, url)), store=store)
    assert len(receiver.orders) >= 2
    return _orders(receiver)


def _settle(config, store) -> int:
    for run in range(1, MAX_RUNS + 1):
        run_org(config, store=store)
        if not store.ledger.list(config.org, [S.APPROVED, S.SUBMITTING]):
            return run
    raise AssertionError("orders still open after the runs: "
                         f"{[(e.order_id, e.status, e.detail) for e in store.ledger.list()]}")


@pytest.mark.parametrize("seed", [7, 8])
def test_repeated_runs_through_a_faulty_network_send_each_order_once(
        tmp_path, warehouse, reference, seed):
    receiver = CountingReceiver()
    plan = seeded_plan(random.Random(seed), rate=0.5, faults=FAULTS[1:])
    with serve_asgi(receiver.app()) as backend:
        proxy = FaultProxy(backend, plan, stall=0.6, retry_after="0")
        with proxy.running() as url, open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
            config = load_org(_org(tmp_path, warehouse, url))
            _settle(config, store)
            statuses = {e.key: e.status for e in store.ledger.list("netfault")}
    assert _orders(receiver) == reference
    assert statuses == {key: S.SUBMITTED for key in reference}
    assert len(proxy.log.seen) > proxy.log.count("pass"), "no fault was injected"


def test_approvals_through_a_faulty_network_send_each_order_once_and_are_audited(
        tmp_path, warehouse, reference):
    receiver = CountingReceiver()
    plan = seeded_plan(random.Random(11), rate=0.6, faults=FAULTS[1:], only=("POST",))
    with serve_asgi(receiver.app()) as backend:
        proxy = FaultProxy(backend, plan, stall=0.6, retry_after="0")
        with proxy.running() as url, open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
            config = load_org(_org(tmp_path, warehouse, url, mode="approval"))
            run_org(config, store=store)
            held = store.ledger.list("netfault", [S.HELD])
            assert {e.key for e in held} == set(reference) and not receiver.posts
            first, *rest = held
            sku, quantity = next(iter(reference[first.key].items()))
            approve(store, config, first.order_id, actor="maria", quantities={sku: quantity + 1},
                    comment="one more for the line")
            for entry in rest:
                approve(store, config, entry.order_id, actor="maria")
            _settle(config, store)
            events = {e.order_id: store.ledger.events(e.order_id) for e in held}
    wanted = {key: dict(lines) for key, lines in reference.items()}
    wanted[first.key][sku] = quantity + 1
    assert _orders(receiver) == wanted
    approval = [e for e in events[first.order_id] if e.to_status == "approved"]
    assert approval[0].actor == "maria" and approval[0].changes == {sku: [quantity, quantity + 1]}
    assert approval[0].comment == "one more for the line"
    assert all(any(e.to_status == "submitted" for e in trail) for trail in events.values())
