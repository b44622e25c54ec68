"""A planning run prunes the model catalog by ``forecast.catalog_days``: the runs catalogued longer
ago than that go, the recent ones and the run itself stay; ``null`` keeps everything. On SQLite
and PostgreSQL, with real runs of the demo warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from restock.config import load_org
from restock.cycle import run_org
from restock.store import open_store
from restock.store.schema import model_catalog
from tests.integration.test_cycle import AS_OF, org_dir, warehouse_template, write_org

__all__ = ["org_dir", "warehouse_template"]   # fixtures, used by name


@pytest.fixture
def store(store_url):
    opened = open_store(store_url)
    yield opened
    opened.close()


def dry_run(org_dir, store, days_before: int, retention: str = "") -> str:
    path = write_org(org_dir, mode="dry_run", as_of=AS_OF - timedelta(days=days_before))
    path.write_text(path.read_text().replace("statsmodels_seconds: 0",
                                             f"statsmodels_seconds: 0{retention}"))
    return run_org(load_org(path), store=store).run_id


def age(store, run_id: str, days: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(model_catalog).where(model_catalog.c.run_id == run_id)
                     .values(created_at=datetime.now(UTC) - timedelta(days=days)))


def catalogued(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(model_catalog.c.run_id, sa.func.count())
                                 .group_by(model_catalog.c.run_id)).all())


def test_a_run_deletes_the_catalog_rows_older_than_catalog_days(org_dir, store):
    old, recent = dry_run(org_dir, store, 2), dry_run(org_dir, store, 1)
    age(store, old, 401)
    age(store, recent, 399)
    now = dry_run(org_dir, store, 0)                          # the default: 400 days
    assert catalogued(store) == {recent: 30, now: 30}
    age(store, recent, 31)
    later = dry_run(org_dir, store, 0, retention=", catalog_days: 30")
    assert catalogued(store) == {now: 30, later: 30}


def test_null_catalog_days_keeps_every_run(org_dir, store):
    old = dry_run(org_dir, store, 1)
    age(store, old, 5000)
    now = dry_run(org_dir, store, 0, retention=", catalog_days: null")
    assert catalogued(store) == {old: 30, now: 30}
