"""The state store: runs and summaries, the order ledger, the model catalog, the service
delivered per closed review cycle, each run's forecast windows.

SQLite by default (a file, nothing to set up); PostgreSQL by URL for production and for several
daemon replicas. :func:`open_store` applies the Alembic migrations before handing the store out,
so every process sees the schema its code expects.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from restock.errors import ConfigError, Fatal
from restock.store.catalog import CatalogEntry, ModelCatalog
from restock.store.ledger import ACTIVE_STATUSES, Ledger, LedgerEntry, LedgerEvent, OrderStatus
from restock.store.runs import PendingSummaries, RunRecord, Runs
from restock.store.service import ServiceCycle, ServiceCycles
from restock.store.windows import ForecastWindows

__all__ = ["ACTIVE_STATUSES", "CatalogEntry", "ForecastWindows", "Ledger", "LedgerEntry",
           "LedgerEvent", "ModelCatalog", "OrderStatus", "PendingSummaries", "RunRecord", "Runs",
           "ServiceCycle", "ServiceCycles", "Store", "open_store"]


class Store:
    """One state database and the repositories over it."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.runs = Runs(engine)
        self.ledger = Ledger(engine)
        self.models = ModelCatalog(engine)
        self.pending_summaries = PendingSummaries(engine)
        self.service = ServiceCycles(engine)
        self.windows = ForecastWindows(engine)

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str) -> Store:
    """Connect to the state database at ``url`` and bring its schema up to date."""
    engine = _engine(url)
    try:
        migrate(engine)
    except sa.exc.OperationalError as err:
        engine.dispose()
        raise Fatal(f"state store {engine.url.render_as_string(hide_password=True)} "
                    f"unreachable: {err.orig}") from None
    return Store(engine)


def migrate(engine: sa.Engine) -> None:
    """Apply every Alembic migration this code knows (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two replicas starting together must not both create the tables.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7318420671)"))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _engine(url: str) -> sa.Engine:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}", field="state_url") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the review page read while a run writes; foreign keys keep the audit trail whole.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
