"""Re-runs of a planning date after a run died part-way: the same orders as one uninterrupted run.

These are the in-process, deterministic cousins of the kill -9 test: a run "dies" (an exception no
step catches, as SIGKILL would leave it) right after a chosen ledger write; the next run of the
same planning date must end with exactly the orders, lines and quantities an uncrashed run sends,
and never order a SKU twice.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from restock.config import load_org
from restock.cycle import run_org
from restock.demo import generate
from restock.store import Ledger, OrderStatus, open_store
from tests.support.dates import PINNED_END

pytestmark = pytest.mark.slow


class Died(BaseException):
    """Stands in for SIGKILL: nothing in restock catches it."""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rerun") / "warehouse"
    generate(folder, seed=11, skus=30, end=PINNED_END)
    return folder


def _org(folder: Path, warehouse: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rerun.yaml"
    path.write_text(f"""org: rerun
mode: auto
source: {{connector: files, path: {warehouse}, as_of: history_end}}
order_sink: {{connector: files, path: ./outbox}}
forecast: {{statsmodels_seconds: 0, history_days: 120}}
policy: {{max_bid: 100000}}
guard: {{max_multiple_of_usual: 1000, min_forecast_confidence: 0}}
""")
    path.chmod(0o640)
    return path


def _outbox(folder: Path) -> dict[str, dict[str, float]]:
    return {doc["idempotency_key"]: {line["sku"]: line["quantity"] for line in doc["lines"]}
            for doc in (json.loads(p.read_text()) for p in (folder / "outbox").glob("*.json"))}


@pytest.fixture(scope="module")
def uncrashed(tmp_path_factory, warehouse) -> dict[str, dict[str, float]]:
    folder = tmp_path_factory.mktemp("uncrashed")
    config = load_org(_org(folder, warehouse))
    with open_store(f"sqlite:///{folder / 'state.db'}") as store:
        run_org(config, store=store)
    orders = _outbox(folder)
    assert len(orders) >= 3
    return orders


def _die_after(monkeypatch, method: str, calls: int) -> None:
    original = getattr(Ledger, method)
    seen = Counter()

    def dying(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        seen[method] += 1
        if seen[method] == calls:
            raise Died()
        return result
    monkeypatch.setattr(Ledger, method, dying)


@pytest.mark.parametrize(("method", "calls"), [("record", 1), ("record", 2), ("record", 3),
                                               ("transition", 1), ("transition", 4)])
def test_a_rerun_after_a_partial_run_orders_what_one_run_would(
        tmp_path, warehouse, uncrashed, monkeypatch, method, calls):
    config = load_org(_org(tmp_path, warehouse))
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        _die_after(monkeypatch, method, calls)
        with pytest.raises(Died):
            run_org(config, store=store)
        monkeypatch.undo()
        run_org(config, store=store)
        statuses = {e.key: e.status for e in store.ledger.list("rerun")}
    assert _outbox(tmp_path) == uncrashed
    assert set(statuses) == set(uncrashed)
    assert set(statuses.values()) == {OrderStatus.SUBMITTED}
    skus = Counter(sku for lines in _outbox(tmp_path).values() for sku in lines)
    assert max(skus.values()) == 1, "a SKU was ordered twice for one planning date"


def test_an_approval_that_dies_after_sending_is_reconciled_not_resent(
        tmp_path, warehouse, monkeypatch):
    """``restock approve`` killed after the sink took the order, before the ledger heard."""
    from restock.approval import approve
    from restock_connectors.files import FilesOrderSink

    path = _org(tmp_path, warehouse)
    path.write_text(path.read_text().replace("mode: auto", "mode: approval"))
    config = load_org(path)
    sent: list[str] = []
    original = FilesOrderSink.submit

    def submit_then_die(self, order, key):
        result = original(self, order, key)
        sent.append(key)
        if len(sent) == 1:
            raise Died()
        return result
    monkeypatch.setattr(FilesOrderSink, "submit", submit_then_die)
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run_org(config, store=store)
        held = store.ledger.list("rerun", [OrderStatus.HELD])
        with pytest.raises(Died):
            approve(store, config, held[0].order_id, actor="ops")
        assert store.ledger.get(held[0].order_id).status == OrderStatus.SUBMITTING
        run_org(config, store=store)
        after = store.ledger.get(held[0].order_id)
    assert after.status == OrderStatus.SUBMITTED
    assert sent == [held[0].key]                    # found by lookup, never sent again
    assert list(_outbox(tmp_path)) == [held[0].key]
