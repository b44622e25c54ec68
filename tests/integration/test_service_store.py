"""The service record in the state store: one row per (org, group, cycle end), on SQLite and
PostgreSQL, and a store made before it gains the table when opened."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from restock.store import ServiceCycle, open_store
from tests.support.migrations import alembic_config, head_revision

END = date(2026, 3, 9)


def cycle(end: date = END, group: str = "org", org: str = "acme", **values) -> ServiceCycle:
    fields = {"item_cycles": 120, "stockout_cycles": 9, "units_asked": 800.0, "units_met": 770.0,
              "backorders": 12.0, "shift_in_force": 0.25, "shift_next": 0.31, "run_id": "run-1"}
    fields.update(values)
    return ServiceCycle(org=org, service_group=group, cycle_end=end, **fields)


def test_a_cycle_is_recorded_once_and_read_back_whole(store_url):
    store = open_store(store_url)
    try:
        assert store.service.record([cycle(), cycle(group="item:cycle:0.95")]) == 2
        # a re-run of the same planning date: its cycles are already closed
        assert store.service.record([cycle(item_cycles=999, run_id="run-2")]) == 0
        assert store.service.record([cycle(END + timedelta(days=7)), cycle(org="other")]) == 2
        rows = store.service.between("acme", END - timedelta(days=365), END + timedelta(days=7))
        assert rows == [cycle(group="item:cycle:0.95"), cycle(), cycle(END + timedelta(days=7))]
        assert store.service.between("acme", END, END + timedelta(days=6)) == []
        assert store.service.last_ends("acme", before=END + timedelta(days=7)) == \
            {"org": END, "item:cycle:0.95": END}
        assert store.service.last_ends("acme", before=END) == {}
    finally:
        store.close()


def test_a_store_at_the_first_schema_upgrades_and_keeps_its_runs(store_url):
    from alembic import command

    from restock.store import migrate

    engine = sa.create_engine(store_url)
    Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True) \
        if engine.dialect.name == "sqlite" else None
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(sa.text("INSERT INTO runs (run_id, org, status, mode, started_at) "
                             "VALUES ('run-old', 'acme', 'ok', 'auto', '2026-03-01 06:00:00')"))
    assert "service_cycles" not in sa.inspect(engine).get_table_names()
    engine.dispose()

    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM restock_schema_version"))
            assert version.scalar() == head_revision()
        assert [r.run_id for r in store.runs.list("acme")] == ["run-old"]
        assert store.service.record([cycle()]) == 1
        migrate(store.engine)   # opening again changes nothing
        assert len(store.service.between("acme", END - timedelta(days=1), END)) == 1
    finally:
        store.close()
