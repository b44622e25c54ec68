"""SQL inventory source: the org's own queries against any SQLAlchemy database.

YAML::

    source:
      connector: sql
      url: postgresql+psycopg://restock@erp-db/erp    # no password in the URL
      password: ${ERP_DB_PASSWORD}
      queries:
        catalog: SELECT item_no AS sku, name AS description, grp AS category FROM items
        offers: SELECT item_no AS sku, vendor AS supplier, price AS unit_price, pack AS pack_size
                FROM vendor_prices
        positions: SELECT item_no AS sku, wh AS location, qty AS on_hand FROM stock
        history: SELECT item_no AS sku, wh AS location, day AS date, qty AS quantity
                 FROM usage WHERE day >= :since
        promotions: SELECT item_no AS sku, day AS date FROM promo_days    # optional

Each query returns the Snapshot's columns by name (``AS``); required ones are listed in
docs/connectors.md, the rest default. ``:since`` (history start) and ``:org`` may be used.
SQLite paths are relative to the org file's folder. Every session is read-only (SQLite opened
read-only, PostgreSQL and MariaDB/MySQL sessions set read-only): an org's query cannot change its
own inventory records by mistake.
"""

from __future__ import annotations

import math
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from restock.config import SecretRef
from restock.connectors import ConnectorContext, ConnectorSettings, InventorySource, Scope
from restock.domain import Snapshot
from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock_connectors._frames import conform, empty, narrow

SYSTEM = "sql"


def _url_without_password(value: str) -> str:
    try:
        url = sa.engine.make_url(value)
    except sa.exc.ArgumentError:
        raise ValueError("not a database URL like postgresql+psycopg://user@host/db") from None
    if url.password:
        raise ValueError("write the password as password: ${ENV_VAR}, never inside the URL")
    return value


class Queries(BaseModel):
    model_config = ConfigDict(extra="forbid")
    catalog: str
    positions: str
    history: str
    offers: str | None = None
    open_orders: str | None = None
    promotions: str | None = None     # the promotion calendar: sku, date[, promotion]


class SqlSettings(ConnectorSettings):
    url: Annotated[str, AfterValidator(_url_without_password)]
    password: SecretRef | None = None
    queries: Queries
    timeout: Annotated[float, Field(gt=0)] = 30.0     # seconds to connect
    query_timeout: Annotated[float, Field(gt=0)] = 300.0   # seconds one query may run


class SqlSource(InventorySource):
    """Runs the org's queries and shapes the answers into a Snapshot."""

    Settings = SqlSettings
    name = "sql"
    settings: SqlSettings

    def __init__(self, settings: SqlSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._query_started = time.monotonic()
        self.engine = sa.create_engine(self._url(), pool_pre_ping=True,
                                       connect_args=self._connect_args())
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", self._sqlite_deadline)

    def _url(self) -> sa.URL:
        url = sa.engine.make_url(self.settings.url)
        if self.settings.password is not None:
            url = url.set(password=self.settings.password.get_secret_value())
        path = self._sqlite_file()
        if path is not None:           # read-only: a source never writes, nor creates a file
            url = url.set(database=path.resolve().as_uri(),
                          query={**url.query, "mode": "ro", "uri": "true"})
        return url

    def _sqlite_file(self) -> Path | None:
        """The SQLite database file, relative paths resolved against the org file's folder."""
        url = sa.engine.make_url(self.settings.url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(self.context.config_dir) / url.database

    def _connect_args(self) -> dict[str, Any]:
        backend = sa.engine.make_url(self.settings.url).get_backend_name()
        connect, query = max(1, int(self.settings.timeout)), self.settings.query_timeout
        if backend == "sqlite":
            return {"timeout": self.settings.timeout}
        if backend == "postgresql":       # the server cancels the statement itself
            return {"connect_timeout": connect,
                    "options": f"-c statement_timeout={int(query * 1000)} "
                               "-c default_transaction_read_only=on"}
        if backend in ("mysql", "mariadb"):   # the driver stops waiting for the answer
            return {"connect_timeout": connect, "read_timeout": max(1, math.ceil(query)),
                    "init_command": "SET SESSION TRANSACTION READ ONLY"}
        return {}

    def _sqlite_deadline(self, dbapi_connection: Any, _record: Any) -> None:
        """SQLite has no statement timeout: a progress handler aborts a query past its time."""
        def overdue() -> int:
            return int(time.monotonic() - self._query_started > self.settings.query_timeout)
        dbapi_connection.set_progress_handler(overdue, 10_000)

    def check(self) -> None:
        with self._connection():
            pass

    def close(self) -> None:
        self.engine.dispose()

    def pull(self, scope: Scope) -> Snapshot:
        params = {"since": scope.since or date(1900, 1, 1), "org": self.context.org}
        frames: dict[str, pd.DataFrame] = {}
        with self._connection() as conn:
            for dataset, query in self.settings.queries.model_dump().items():
                frames[dataset] = empty(dataset) if query is None else \
                    conform(self._read(conn, dataset, query, params), dataset, SYSTEM)
        snapshot = Snapshot(as_of=date.today(), source=f"sql:{self._safe_url()}", **frames)
        return narrow(snapshot, scope)

    def _connection(self) -> sa.Connection:
        path = self._sqlite_file()
        if path is not None and not path.is_file():
            raise ConnectorError(SYSTEM, f"SQLite database {path} does not exist")
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as err:
            if _rejected(err):
                raise CredentialsRejected(f"sql database {self._safe_url()}") from None
            raise ConnectorUnavailable(f"sql database {self._safe_url()}",
                                       _first_line(err)) from None

    def _read(self, conn: sa.Connection, dataset: str, query: str,
              params: dict[str, Any]) -> pd.DataFrame:
        used = {k: v for k, v in params.items() if f":{k}" in query}
        self._query_started = time.monotonic()
        try:
            result = conn.execute(sa.text(query), used)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        except sa.exc.DBAPIError as err:
            _rollback(conn)
            if _timed_out(err):
                raise ConnectorUnavailable(f"sql database {self._safe_url()}",
                                           f"query {dataset} ran past query_timeout "
                                           f"({self.settings.query_timeout:g}s)") from None
            if err.connection_invalidated:
                raise ConnectorUnavailable(f"sql database {self._safe_url()}",
                                           f"connection lost during query {dataset}") from None
            raise ConnectorError(SYSTEM, f"query {dataset} failed: {_first_line(err)}") from None

    def _safe_url(self) -> str:
        return sa.engine.make_url(self.settings.url).render_as_string(hide_password=True)


def _first_line(err: sa.exc.DBAPIError) -> str:
    orig = err.orig if err.orig is not None else err
    text = str(orig).strip().splitlines()
    return f"{orig.__class__.__name__}: {text[0] if text else ''}"


def _rollback(conn: sa.Connection) -> None:
    try:
        conn.rollback()
    except sa.exc.DBAPIError:           # the connection is gone already; nothing to undo
        pass


_TIMEOUT_SIGNS = ("statement timeout", "interrupted", "lost connection to", "timed out",
                  "max_statement_time")


def _timed_out(err: sa.exc.DBAPIError) -> bool:
    text = str(err.orig).lower()
    return any(sign in text for sign in _TIMEOUT_SIGNS)


def _rejected(err: sa.exc.DBAPIError) -> bool:
    text = str(err.orig).lower()
    return "password authentication failed" in text or "access denied" in text


inventory_source = SqlSource
