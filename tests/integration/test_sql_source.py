"""The SQL source with the org's own queries, one test body on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from datetime import date

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from restock.clean import clean_snapshot
from restock.connectors import ConnectorContext, Scope
from restock.domain import (
    CATALOG_COLUMNS,
    HISTORY_COLUMNS,
    OFFER_COLUMNS,
    POSITION_COLUMNS,
    PROMOTION_COLUMNS,
)
from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock_connectors.sql import SqlSource


def _seed(url: str, prefix: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {prefix}items (item_no VARCHAR(20), name VARCHAR(80), "
                             "grp VARCHAR(20))")
        conn.exec_driver_sql(f"CREATE TABLE {prefix}stock (item_no VARCHAR(20), wh VARCHAR(20), "
                             "qty NUMERIC)")
        conn.exec_driver_sql(f"CREATE TABLE {prefix}usage (item_no VARCHAR(20), wh VARCHAR(20), "
                             "day DATE, qty NUMERIC)")
        conn.exec_driver_sql(f"CREATE TABLE {prefix}prices (item_no VARCHAR(20), "
                             "vendor VARCHAR(40), price NUMERIC, pack INTEGER)")
        conn.exec_driver_sql(f"CREATE TABLE {prefix}promo (item_no VARCHAR(20), day DATE, "
                             "on_promo INTEGER)")
        conn.execute(sa.text(f"INSERT INTO {prefix}items VALUES (:a, :b, :c)"),
                     [{"a": "A1", "b": "Bolt", "c": "hw"}, {"a": "B2", "b": "Nut", "c": "hw"}])
        conn.execute(sa.text(f"INSERT INTO {prefix}stock VALUES (:a, :b, :c)"),
                     [{"a": "A1", "b": "main", "c": 40}, {"a": "B2", "b": "main", "c": 7}])
        conn.execute(sa.text(f"INSERT INTO {prefix}usage VALUES (:a, :b, :c, :d)"),
                     [{"a": "A1", "b": "main", "c": date(2026, 11, d), "d": d} for d in (1, 2, 3)])
        conn.execute(sa.text(f"INSERT INTO {prefix}prices VALUES (:a, :b, :c, :d)"),
                     [{"a": "A1", "b": "Acme", "c": 0.5, "d": 10}])
        conn.execute(sa.text(f"INSERT INTO {prefix}promo VALUES (:a, :b, :c)"),
                     [{"a": "A1", "b": date(2026, 11, 20), "c": 1},
                      {"a": "A1", "b": date(2026, 11, 21), "c": 0},
                      {"a": "B2", "b": date(2026, 12, 4), "c": 1}])
    engine.dispose()


def _queries(prefix: str) -> dict:
    return {
        "catalog": f"SELECT item_no AS sku, name AS description, grp AS category "
                   f"FROM {prefix}items",
        "positions": f"SELECT item_no AS sku, wh AS location, qty AS on_hand FROM {prefix}stock",
        "history": f"SELECT item_no AS sku, wh AS location, day AS date, qty AS quantity "
                   f"FROM {prefix}usage WHERE day >= :since",
        "offers": f"SELECT item_no AS sku, vendor AS supplier, price AS unit_price, "
                  f"pack AS pack_size FROM {prefix}prices",
    }


MARIADB_URL = os.environ.get("RESTOCK_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """The machine's MariaDB/MySQL, or a skip that says why."""
    pytest.importorskip("pymysql", reason="the MariaDB/MySQL driver pymysql is not installed")
    engine = sa.create_engine(MARIADB_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as err:
        pytest.skip(f"MariaDB unreachable at {MARIADB_URL}: {err.orig}")
    finally:
        engine.dispose()
    return MARIADB_URL


def _drop(url: str, prefix: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("items", "stock", "usage", "prices", "promo"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{table}")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        "mariadb"])
def database(request, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    if request.param == "sqlite":
        url, shown = "sqlite:///warehouse.db", str(tmp_path / "warehouse.db")
        _seed(f"sqlite:///{shown}", prefix)
        yield url, prefix, tmp_path
        return
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url")
    _seed(url, prefix)
    yield url, prefix, tmp_path
    _drop(url, prefix)


def source(url: str, queries: dict, config_dir, **extra) -> SqlSource:
    settings = SqlSource.Settings.model_validate({"url": url, "queries": queries, **extra})
    return SqlSource(settings, ConnectorContext(org="acme", config_dir=str(config_dir)))


def test_pulls_a_snapshot_with_the_contract_columns(database):
    url, prefix, folder = database
    with source(url, _queries(prefix), folder) as src:
        snap = src.pull(Scope(since=date(2026, 11, 2)))
    assert tuple(snap.catalog.columns) == CATALOG_COLUMNS
    assert tuple(snap.offers.columns) == OFFER_COLUMNS
    assert tuple(snap.positions.columns) == POSITION_COLUMNS
    assert tuple(snap.history.columns) == HISTORY_COLUMNS
    assert sorted(snap.catalog["sku"]) == ["A1", "B2"]
    assert snap.positions.set_index("sku")["on_hand"].astype(float).to_dict() == {"A1": 40, "B2": 7}
    assert sorted(snap.history["date"]) == [date(2026, 11, 2), date(2026, 11, 3)]
    assert float(snap.offers["pack_size"].iloc[0]) == 10
    assert snap.positions["on_order"].eq(0).all() and snap.open_orders.empty


def test_a_query_missing_a_required_column_names_it(database):
    url, prefix, folder = database
    queries = {**_queries(prefix), "positions": f"SELECT item_no AS sku FROM {prefix}stock"}
    with source(url, queries, folder) as src, \
            pytest.raises(ConnectorError, match="positions: missing column.*location, on_hand"):
        src.pull(Scope())


def test_a_broken_query_names_the_dataset(database):
    url, prefix, folder = database
    queries = {**_queries(prefix), "history": "SELECT * FROM no_such_table"}
    with source(url, queries, folder) as src, pytest.raises(ConnectorError,
                                                            match="query history failed"):
        src.pull(Scope())


def test_unreachable_database_is_unavailable(monkeypatch):
    monkeypatch.setenv("DBPW", "db-secret-pass-42")
    with source("postgresql+psycopg://restock@127.0.0.1:1/erp", _queries(""), ".",
                password="${DBPW}", timeout=2) as src, \
            pytest.raises(ConnectorUnavailable) as caught:
        src.pull(Scope())
    assert "db-secret-pass-42" not in str(caught.value)


def test_password_inside_the_url_is_refused():
    with pytest.raises(ValidationError, match="never inside the URL"):
        SqlSource.Settings.model_validate({"url": "postgresql://u:pw@h/db",
                                           "queries": _queries("")})


SLOW = {"sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                  "WHERE i < 1000000000) SELECT max(i) AS sku FROM n",
        "postgresql": "SELECT pg_sleep(30)::text AS sku",
        "mysql": "SELECT SLEEP(30) AS sku"}


def test_a_query_past_its_timeout_is_stopped_and_unavailable(database):
    url, prefix, folder = database
    backend = sa.engine.make_url(url).get_backend_name()
    queries = {**_queries(prefix), "catalog": SLOW[backend]}
    with source(url, queries, folder, query_timeout=1) as src, \
            pytest.raises(ConnectorUnavailable, match=r"query catalog ran past query_timeout "
                                                      r"\(1s\)"):
        src.pull(Scope())


def test_wrong_database_password_is_rejected_and_not_shown(mariadb_url, monkeypatch):
    monkeypatch.setenv("DBPW", "maria-wrong-pass-77")
    url = sa.engine.make_url(mariadb_url).set(username="restock_nobody", password=None)
    with source(url.render_as_string(), _queries(""), ".", password="${DBPW}", timeout=3) as src, \
            pytest.raises(CredentialsRejected, match="credentials rejected by sql database "
                                                     "mysql") as caught:
        src.pull(Scope())
    assert "maria-wrong-pass-77" not in str(caught.value)


def test_queries_cannot_write(database):
    url, prefix, folder = database
    queries = {**_queries(prefix), "catalog": f"DELETE FROM {prefix}items"}
    with source(url, queries, folder) as src, \
            pytest.raises(ConnectorError, match="query catalog failed: .*(read.?only|READ ONLY)"):
        src.pull(Scope())
    with source(url, _queries(prefix), folder) as src:
        assert sorted(src.pull(Scope()).catalog["sku"]) == ["A1", "B2"]


def test_a_missing_sqlite_file_is_named_and_never_created(tmp_path):
    with source("sqlite:///no-such.db", _queries(""), tmp_path) as src, \
            pytest.raises(ConnectorError, match=r"SQLite database .*no-such.db does not exist"):
        src.pull(Scope())
    assert not (tmp_path / "no-such.db").exists()


def test_legacy_yyyymmdd_dates_are_days_not_nanoseconds(database):
    url, prefix, folder = database
    queries = {**_queries(prefix), "history": f"SELECT item_no AS sku, wh AS location, "
                                              f"20261102 AS date, qty AS quantity "
                                              f"FROM {prefix}usage"}
    with source(url, queries, folder) as src:
        snap = src.pull(Scope())
    assert set(snap.history["date"]) == {date(2026, 11, 2)}


def test_the_promotions_query_gives_the_calendar_past_and_ahead(database):
    url, prefix, folder = database
    queries = {**_queries(prefix), "promotions": f"SELECT item_no AS sku, day AS date, "
                                                 f"on_promo AS promotion FROM {prefix}promo"}
    with source(url, queries, folder) as src:
        snap = src.pull(Scope(since=date(2026, 11, 2)))
    assert tuple(snap.promotions.columns) == PROMOTION_COLUMNS
    cleaned = clean_snapshot(snap, as_of=date(2026, 11, 4))
    calendar = cleaned.snapshot.promotions.sort_values("date")
    assert cleaned.quarantined == []            # planned days after the planning date are fine
    assert list(calendar["sku"]) == ["A1", "A1", "B2"]
    assert [d.date() for d in calendar["date"]] == [date(2026, 11, 20), date(2026, 11, 21),
                                                   date(2026, 12, 4)]
    assert list(calendar["promotion"]) == [1.0, 0.0, 1.0]


def test_a_promotions_query_without_the_flag_lists_promotion_days(database):
    url, prefix, folder = database
    queries = {**_queries(prefix), "promotions": f"SELECT item_no AS sku, day AS date "
                                                 f"FROM {prefix}promo WHERE on_promo = 1"}
    with source(url, queries, folder) as src:
        snap = src.pull(Scope(skus=["A1"]))
    assert snap.promotions[["sku", "promotion"]].values.tolist() == [["A1", 1.0]]
    with source(url, _queries(prefix), folder) as src:
        assert src.pull(Scope()).promotions.empty      # no query: no calendar
