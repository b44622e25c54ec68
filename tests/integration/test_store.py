"""The state store: one test body for SQLite and the machine's PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from restock.domain import (
    AccuracyPoint,
    Mode,
    OrderLine,
    PurchaseOrder,
    RunStatus,
    RunSummary,
    idempotency_key,
)
from restock.errors import LedgerConflict
from restock.forecast_windows import closed_windows
from restock.store import CatalogEntry, OrderStatus, open_store
from restock.store.schema import metadata, model_catalog
from tests.support.migrations import alembic_config, head_revision

S = OrderStatus


@pytest.fixture
def store(store_url):
    """An empty store on each of the two databases (PostgreSQL: a database of the test's own,
    so a table another test left, such as the daemon's slot ledger, is never in the schema
    compared here)."""
    opened = open_store(store_url)
    yield opened
    opened.close()


def order(supplier: str = "atlas", slot: str = "2026-11-25", qty: float = 24.0) -> PurchaseOrder:
    key = idempotency_key("acme", supplier, slot)
    return PurchaseOrder(order_id=f"acme-{key[-8:]}", org="acme", supplier=supplier,
                         currency="EUR", idempotency_key=key,
                         lines=[OrderLine(sku="A1", supplier=supplier, quantity=qty,
                                          unit_price=2.5, lead_time_days=10)])


def test_opening_twice_migrates_once_and_keeps_data(store):
    store.ledger.record(order(), slot="2026-11-25", run_id="run-1", status=S.PLANNED)
    again = open_store(store.engine.url.render_as_string(hide_password=False))
    try:
        assert [e.order_id for e in again.ledger.list("acme")] == [order().order_id]
        with again.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM restock_schema_version")) \
                .scalar() == head_revision()
    finally:
        again.close()


def test_a_key_is_recorded_once(store):
    store.ledger.record(order(), slot="2026-11-25", run_id="run-1", status=S.PLANNED)
    with pytest.raises(LedgerConflict, match="already in the ledger"):
        store.ledger.record(order(qty=48), slot="2026-11-25", run_id="run-2", status=S.PLANNED)
    [entry] = store.ledger.list("acme")
    assert entry.order.lines[0].quantity == 24 and entry.run_id == "run-1"


def test_the_order_life_is_audited_step_by_step(store):
    po = order()
    store.ledger.record(po, slot="2026-11-25", run_id="run-1", status=S.PLANNED)
    store.ledger.transition(po.order_id, S.HELD, comment="over the limit")
    edited = po.model_copy(update={"lines": [po.lines[0].model_copy(update={"quantity": 12.0})]})
    store.ledger.transition(po.order_id, S.APPROVED, actor="alice", order=edited,
                            changes={"A1": [24, 12]})
    store.ledger.transition(po.order_id, S.SUBMITTING)
    done = store.ledger.transition(po.order_id, S.SUBMITTED, external_id="PO-77")
    assert done.status == S.SUBMITTED and done.external_id == "PO-77"
    assert done.order.total == pytest.approx(30.0) and done.submitted_at is not None
    trail = [(e.actor, e.from_status, e.to_status) for e in store.ledger.events(po.order_id)]
    assert trail == [("restock", None, "planned"), ("restock", "planned", "held"),
                     ("alice", "held", "approved"), ("restock", "approved", "submitting"),
                     ("restock", "submitting", "submitted")]
    assert store.ledger.events(po.order_id)[2].changes == {"A1": [24, 12]}


@pytest.mark.parametrize("path", [[S.SUBMITTED], [S.HELD, S.SUBMITTING], [S.REJECTED]])
def test_moves_the_diagram_does_not_allow_are_refused(store, path):
    po = order()
    store.ledger.record(po, slot="2026-11-25", run_id="run-1", status=S.PLANNED)
    *allowed, refused = path
    for status in allowed:
        store.ledger.transition(po.order_id, status)
    with pytest.raises(LedgerConflict, match="cannot become"):
        store.ledger.transition(po.order_id, refused)


def test_compare_and_set_refuses_a_stale_expectation(store):
    po = order()
    store.ledger.record(po, slot="2026-11-25", run_id="run-1", status=S.PLANNED)
    store.ledger.transition(po.order_id, S.APPROVED)
    store.ledger.transition(po.order_id, S.SUBMITTING, expect=S.APPROVED)
    with pytest.raises(LedgerConflict, match="not approved"):
        store.ledger.transition(po.order_id, S.SUBMITTING, expect=S.APPROVED)


def test_lists_filter_by_org_status_and_run(store):
    a, b = order("atlas"), order("brightline")
    store.ledger.record(a, slot="s", run_id="run-1", status=S.PLANNED)
    store.ledger.record(b, slot="s", run_id="run-2", status=S.PLANNED)
    store.ledger.transition(b.order_id, S.HELD)
    assert [e.supplier for e in store.ledger.list("acme", [S.HELD])] == ["brightline"]
    assert [e.supplier for e in store.ledger.list("acme", run_id="run-1")] == ["atlas"]
    assert store.ledger.list("other") == []
    assert store.ledger.by_key(a.idempotency_key).order_id == a.order_id
    assert store.ledger.find("nope") is None


def test_runs_keep_their_summaries_newest_first(store):
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    for day in range(3):
        run_id = f"run-{day}"
        store.runs.start("acme", run_id, Mode.AUTO, start + timedelta(days=day))
        store.runs.finish(RunSummary(org="acme", run_id=run_id, status=RunStatus.OK,
                                     mode=Mode.AUTO, started_at=start + timedelta(days=day),
                                     as_of=date(2026, 11, 20 + day), spend=10.0 * day))
    store.runs.start("acme", "run-crashed", Mode.AUTO, start + timedelta(days=4))
    listed = store.runs.list("acme")
    assert [r.run_id for r in listed] == ["run-crashed", "run-2", "run-1", "run-0"]
    assert listed[0].status == "running" and listed[1].status == "ok"
    assert store.runs.summary("run-1").spend == 10.0
    assert store.runs.summary("run-crashed") is None
    assert store.runs.latest_summary("acme").run_id == "run-2"
    assert store.runs.latest_summary("acme", before="run-2").run_id == "run-1"
    assert store.runs.orgs() == ["acme"]
    assert store.runs.abandon_stale("acme", start + timedelta(days=3)) == 0
    assert store.runs.abandon_stale("acme", start + timedelta(days=5)) == 1
    assert store.runs.list("acme")[0].status == "abandoned"


def _finished_run(store, org: str, run_id: str, age_days: float) -> None:
    at = datetime.now(UTC) - timedelta(days=age_days)
    store.runs.start(org, run_id, Mode.AUTO, at)
    store.runs.finish(RunSummary(org=org, run_id=run_id, status=RunStatus.OK, mode=Mode.AUTO,
                                 started_at=at, finished_at=at,
                                 accuracy=[AccuracyPoint(run_id=run_id, mase=age_days)]))


def test_summary_prune_keeps_the_newest_the_owed_and_other_orgs(store):
    for age in (900, 800, 700, 600, 500, 10, 5):
        _finished_run(store, "acme", f"acme-{age}", age)
    _finished_run(store, "other", "other-900", 900)
    store.pending_summaries.failed("acme", "acme-800", "summary_sinks.0 (slack)", "refused")
    store.runs.start("acme", "acme-crashed", Mode.AUTO, datetime.now(UTC) - timedelta(days=999))
    cutoff = datetime.now(UTC) - timedelta(days=400)
    assert store.runs.prune_summaries("acme", cutoff, keep=3) == 3   # 900, 700, 600
    kept = {r.run_id for r in store.runs.list("acme") if store.runs.summary(r.run_id)}
    assert kept == {"acme-800", "acme-500", "acme-10", "acme-5"}
    assert len(store.runs.list("acme")) == 8                 # every run is still listed
    assert store.runs.summary("other-900") is not None        # another org's: untouched
    assert store.runs.latest("acme").run_id == "acme-5"
    assert [p.run_id for p in store.runs.accuracy_points("acme")] == \
        ["acme-5", "acme-10", "acme-500", "acme-800"]
    assert store.runs.prune_summaries("acme", cutoff, keep=3) == 0
    assert store.runs.prune_summaries("acme", datetime.now(UTC), keep=1) == 2   # 500, 10
    with pytest.raises(ValueError, match="timezone-aware"):
        store.runs.prune_summaries("acme", datetime.now(), keep=1)


def test_what_a_run_reads_of_earlier_runs_without_their_whole_summaries(store):
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    for day in range(4):
        run_id = f"run-{day}"
        store.runs.start("acme", run_id, Mode.AUTO, start + timedelta(days=day))
        # each summary's trend ends with its own point; run-1 measured none
        trend = [] if day == 1 else [
            AccuracyPoint(run_id=f"run-{day - 1}", mase=9.0),
            AccuracyPoint(run_id=run_id, as_of=date(2026, 11, 20 + day), mase=0.5 + day / 10,
                          bias=-0.02 * day, items=100 + day)]
        store.runs.finish(RunSummary(org="acme", run_id=run_id, status=RunStatus.OK,
                                     mode=Mode.AUTO, started_at=start + timedelta(days=day),
                                     as_of=date(2026, 11, 20 + day), accuracy=trend))
    store.runs.start("other", "run-other", Mode.AUTO, start + timedelta(days=9))
    store.runs.finish(RunSummary(org="other", run_id="run-other", status=RunStatus.OK,
                                 mode=Mode.AUTO, started_at=start + timedelta(days=9),
                                 accuracy=[AccuracyPoint(run_id="run-other", mase=7.0)]))
    store.runs.start("acme", "run-now", Mode.AUTO, start + timedelta(days=5))  # no summary yet

    points = store.runs.accuracy_points("acme", before="run-3")
    assert [(p.run_id, p.mase, p.items) for p in points] == [("run-2", 0.7, 102),
                                                              ("run-0", 0.5, 100)]
    assert points[0].as_of == date(2026, 11, 22) and points[0].bias == pytest.approx(-0.04)
    assert [p.run_id for p in store.runs.accuracy_points("acme", limit=2)] == ["run-3", "run-2"]
    assert store.runs.latest("acme").run_id == "run-3"
    assert store.runs.latest("acme", before="run-3").run_id == "run-2"
    assert store.runs.latest("nobody") is None
    assert store.runs.record("run-1").as_of == date(2026, 11, 21)
    assert store.runs.record("run-now").as_of is None and store.runs.record("gone") is None


def test_model_catalog_latest_and_history(store):
    for run in ("run-1", "run-2"):
        store.models.record([CatalogEntry(org="acme", run_id=run, sku=sku, model=model,
                                          params={"alpha": 0.1}, mase=0.8, code_version="t")
                             for sku, model in (("A1", "SES" if run == "run-1" else "TSB"),
                                                ("B2", "SBA"))])
    assert [(e.sku, e.model) for e in store.models.latest("acme")] == [("A1", "TSB"),
                                                                      ("B2", "SBA")]
    assert [e.model for e in store.models.history("acme", "A1")] == ["TSB", "SES"]
    assert store.models.latest("acme")[0].params == {"alpha": 0.1}


def test_model_catalog_latest_reads_only_the_orgs_rows_of_a_shared_run_id(store):
    catalog_run(store, "acme", "run-1", 1, skus=2)
    catalog_run(store, "other", "run-1", 1, skus=3)    # the same id, as a clash would give
    assert [(e.org, e.sku) for e in store.models.latest("acme")] == [("acme", "S0"),
                                                                    ("acme", "S1")]
    assert len(store.models.latest("other")) == 3


def catalog_run(store, org: str, run: str, age_days: float, skus: int = 2) -> None:
    """Record a run of ``skus`` series for ``org``, then backdate it ``age_days``."""
    store.models.record([CatalogEntry(org=org, run_id=run, sku=f"S{i}", model="SES",
                                      code_version="t") for i in range(skus)])
    with store.engine.begin() as conn:
        conn.execute(sa.update(model_catalog).where(model_catalog.c.run_id == run)
                     .values(created_at=datetime.now(UTC) - timedelta(days=age_days)))


def catalogued(store, org: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(model_catalog.c.run_id, sa.func.count())
                            .where(model_catalog.c.org == org).group_by(model_catalog.c.run_id))
        return dict(rows.all())


def test_catalog_prune_deletes_only_the_orgs_old_runs(store):
    catalog_run(store, "acme", "acme-1", 500)
    catalog_run(store, "other", "other-1", 500)
    catalog_run(store, "acme", "acme-2", 401, skus=3)
    catalog_run(store, "other", "acme-2", 401)        # run ids made in the same second may clash
    catalog_run(store, "acme", "acme-3", 399)
    catalog_run(store, "acme", "acme-4", 0)
    assert store.models.prune("acme", before=datetime.now(UTC) - timedelta(days=400)) == 5
    assert catalogued(store, "acme") == {"acme-3": 2, "acme-4": 2}
    assert catalogued(store, "other") == {"other-1": 2, "acme-2": 2}    # another org's: untouched
    assert store.models.prune("acme", before=datetime.now(UTC) - timedelta(days=400)) == 0


def test_catalog_prune_keeps_the_latest_run_however_old(store):
    for age, run in ((700, "acme-1"), (600, "acme-2"), (500, "acme-3")):
        catalog_run(store, "acme", run, age)
    assert store.models.prune("acme", before=datetime.now(UTC)) == 4
    assert catalogued(store, "acme") == {"acme-3": 2}
    assert [e.run_id for e in store.models.latest("acme")] == ["acme-3", "acme-3"]
    assert store.models.prune("nobody", before=datetime.now(UTC)) == 0


def test_catalog_prune_reads_the_cutoff_in_utc_and_refuses_a_naive_one(store):
    catalog_run(store, "acme", "acme-1", 1)
    catalog_run(store, "acme", "acme-2", 0)
    cutoff = datetime.now(UTC) - timedelta(hours=30)                 # acme-1: 24 hours old
    assert store.models.prune("acme", cutoff.astimezone(timezone(timedelta(hours=14)))) == 0
    with pytest.raises(ValueError, match="timezone-aware"):
        store.models.prune("acme", before=datetime.now())
    assert store.models.prune("acme", before=cutoff + timedelta(hours=12)) == 2


def test_the_migrations_build_exactly_the_schema_the_code_describes(store):
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert [d for d in differences
            if not (d[0] == "remove_table" and d[1].name == "restock_schema_version")] == []


def test_pending_summaries_count_attempts_until_delivered(store):
    store.pending_summaries.failed("acme", "run-1", "summary_sinks.0 (slack)", "down")
    store.pending_summaries.failed("acme", "run-1", "summary_sinks.0 (slack)", "still down")
    assert store.pending_summaries.list("acme") == [("run-1", "summary_sinks.0 (slack)", 2)]
    store.pending_summaries.delivered("run-1", "summary_sinks.0 (slack)")
    assert store.pending_summaries.list("acme") == []


def test_an_order_decided_at_once_is_written_with_both_steps_audited(store):
    po = order()
    entry = store.ledger.record(po, slot="s", run_id="run-1", status=S.HELD, comment="too big")
    assert entry.status == S.HELD
    assert [(e.from_status, e.to_status, e.comment) for e in store.ledger.events(po.order_id)] \
        == [(None, "planned", None), ("planned", "held", "too big")]
    with pytest.raises(LedgerConflict, match="cannot start as submitted"):
        store.ledger.record(order("other"), slot="s", run_id="run-1", status=S.SUBMITTED)
    assert store.ledger.find(order("other").order_id) is None


def record_window(store, sku: str, as_of: date, *, run: str = "r", mean: float = 10.0) -> None:
    store.windows.record("acme", f"{run}-{as_of}", as_of, pd.DataFrame(
        {"sku": [sku], "horizon_days": [14.0], "horizon_mean": [mean], "horizon_sd": [3.0]}))


def test_windows_are_one_run_per_date_a_review_apart_closed_and_inside_the_history(store):
    today = date(2026, 6, 1)
    for d in range(1, 60):                                                         # daily runs
        record_window(store, "A", today - timedelta(days=d))
    record_window(store, "A", today - timedelta(days=15), run="again", mean=99.0)  # a re-run
    record_window(store, "B", today - timedelta(days=100))                         # too old
    record_window(store, "C", today)                                               # today's own
    windows = closed_windows(store.windows, "acme", today, review_days=7,
                             history_start=today - timedelta(days=90))
    origins = sorted(windows["as_of"].dt.date)
    # daily runs, a weekly review: one a week back from the newest; open windows (< 14 days) out
    assert origins == [today - timedelta(days=d) for d in (57, 50, 43, 36, 29, 22, 15)]
    assert windows.loc[windows["as_of"].dt.date == today - timedelta(days=15),
                       "horizon_mean"].tolist() == [99.0]  # the date's latest run counts
    assert set(windows["sku"]) == {"A"}


def test_a_runs_windows_are_one_row_read_back_exactly(store):
    frame = pd.DataFrame({"sku": [f"S{i}" for i in range(1000)],
                          "horizon_days": np.arange(1000) + 0.5,
                          "horizon_mean": np.linspace(0, 1e6, 1000),
                          "horizon_sd": np.full(1000, 1 / 3)})
    store.windows.record("acme", "run-1", date(2026, 6, 1), frame)
    store.windows.record("other", "run-2", date(2026, 6, 1), frame.head(3))
    store.windows.record("acme", "run-3", date(2026, 6, 2), frame.iloc[:0])   # nothing: no row
    runs = store.windows.runs("acme", date(2026, 1, 1), date(2026, 7, 1))
    assert [day for day, _ in runs] == [date(2026, 6, 1)]
    back = store.windows.read([row for _, row in runs])
    pd.testing.assert_frame_equal(back.drop(columns="as_of"), frame)
    assert (back["as_of"] == pd.Timestamp("2026-06-01")).all()
    store.windows.record("acme", "run-4", date(2026, 7, 1), frame.head(2))
    assert store.windows.prune("acme", before=date(2026, 6, 15)) == 1     # acme's June run only
    assert [d for d, _ in store.windows.runs("acme", date(2026, 1, 1), date(2027, 1, 1))] == \
        [date(2026, 7, 1)]
    assert store.windows.runs("other", date(2026, 1, 1), date(2027, 1, 1))


def test_model_catalog_rows_read_back_as_written_odd_values_included(store):
    odd = [CatalogEntry(org="acme", run_id="run-1", sku="tab\there \\ back\nline 'q' \"dq\" é",
                        model="TSB", params={"alpha_d": 0.1, "note": "a\tb\\c\n\"d\""},
                        mase=0.5, rmsse=None, rate_per_day=1e-12, window_start=date(2024, 1, 1),
                        window_end=date(2025, 12, 31), observations=0, code_version="v",
                        chosen_by="previous"),
           CatalogEntry(org="acme", run_id="run-1", sku="none", model="Zero", params=None),
           CatalogEntry(org="acme", run_id="run-1", sku="empty", model="Mean", params={}),
           *(CatalogEntry(org="acme", run_id="run-1", sku=sku, model="SES", params=shared)
             for shared in [{"alpha": 0.2}] for sku in ("p1", "p2"))]
    store.models.record(odd)
    back = {e.sku: e for e in store.models.latest("acme")}
    for entry in odd:
        got = back[entry.sku]
        assert dataclasses.replace(got, created_at=None) == entry
        assert got.created_at is not None
    assert back["p1"].params is not back["p2"].params    # each entry's parameters its own


def test_catalog_rows_from_before_chosen_by_read_back_without_it(store):
    # Down to the revision before the column (its downgrade), a row written there, and up again.
    from alembic import command

    config = alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
        assert "chosen_by" not in {c["name"] for c in sa.inspect(conn).get_columns(
            "model_catalog")}
        conn.execute(sa.text(
            "INSERT INTO model_catalog (org, run_id, sku, model, code_version, created_at) "
            "VALUES ('acme', 'run-0', 'A1', 'SES', 'old', :at)"),
            {"at": datetime(2026, 1, 1, tzinfo=UTC)})
    again = open_store(store.engine.url.render_as_string(hide_password=False))
    try:
        old = again.models.latest("acme")
        assert [(e.sku, e.model, e.chosen_by) for e in old] == [("A1", "SES", None)]
        again.models.record([CatalogEntry(org="acme", run_id="run-1", sku="A1", model="SES",
                                          chosen_by="steady")])
        assert [e.chosen_by for e in again.models.history("acme", "A1")] == ["steady", None]
    finally:
        again.close()
