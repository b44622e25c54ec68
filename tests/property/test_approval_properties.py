"""Property: whatever quantities a person types when approving, the order that may go out has only
finite, positive lines and a finite total — or the approval is refused with one clear line and
the order stays held, unchanged.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restock.approval import approve
from restock.config import OrgConfig
from restock.errors import RestockError
from restock.store import OrderStatus
from tests.support.samples import purchase_order

S = OrderStatus
SKUS = st.sampled_from(["M3-SCREW", "CABLE-TIE", "UNKNOWN", ""])
QUANTITIES = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(min_value=-10**6, max_value=10**20).map(float),
                       st.sampled_from([0.0, -0.0, 1e308, 5e-324, 1e15]))


@pytest.fixture(scope="module")
def config() -> OrgConfig:
    return OrgConfig.model_validate({"org": "acme", "source": {"connector": "files", "path": "."},
                                     "order_sink": {"connector": "files", "path": "."}})


_slots = iter(range(10**6))


def _held(store):
    order = purchase_order("acme", slot=f"prop-{next(_slots)}")
    later = datetime.now(UTC) + timedelta(days=1)
    return store.ledger.record(order, slot=order.order_id, run_id="run-0", status=S.HELD,
                               expires_at=later)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantities=st.dictionaries(SKUS, QUANTITIES, max_size=3))
def test_edited_quantities_give_a_sane_order_or_a_clear_refusal(store, config, quantities):
    entry = _held(store)
    try:
        decision = approve(store, config, entry.order_id, actor="prop", quantities=quantities,
                           send=False)
    except RestockError as err:
        assert "\n" not in str(err) and str(err)
        after = store.ledger.get(entry.order_id)
        assert after.status == S.HELD and after.order.lines == entry.order.lines
        return
    order = decision.entry.order
    assert decision.entry.status == S.APPROVED and order.lines
    for line in order.lines:
        assert math.isfinite(line.quantity) and line.quantity > 0, line
        assert math.isfinite(line.value), line
    assert math.isfinite(order.total)
