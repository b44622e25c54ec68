"""The model catalog: which model forecast each series at each run, how well, on what data."""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from restock.store.schema import model_catalog


@dataclass(frozen=True)
class CatalogEntry:
    """One series' model at one run."""

    org: str
    run_id: str
    sku: str
    model: str
    demand_class: str | None = None
    params: dict[str, Any] | None = None
    mase: float | None = None
    rmsse: float | None = None
    rate_per_day: float | None = None
    window_start: date | None = None
    window_end: date | None = None
    observations: int | None = None
    code_version: str = ""
    created_at: datetime | None = None
    chosen_by: str | None = None      # why this model: a restock.forecast.select.CHOSEN_BY key


_FIELDS = ("org", "run_id", "sku", "model", "demand_class", "params", "mase", "rmsse",
           "rate_per_day", "window_start", "window_end", "observations", "code_version",
           "chosen_by")
_READ = (*_FIELDS, "created_at")
_FIELDS_OF, _PARAMS = operator.attrgetter(*_FIELDS), _FIELDS.index("params")


class ModelCatalog:
    """Writes a run's models in one batch; reads the latest per series and a series' history."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, entries: list[CatalogEntry]) -> None:
        if not entries:
            return
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if conn.dialect.driver == "psycopg":
                _copy(conn, entries, now)
            else:
                conn.execute(model_catalog.insert(),
                             [{**vars(e), "created_at": now} for e in entries])

    def for_run(self, run_id: str, org: str | None = None) -> list[CatalogEntry]:
        query = sa.select(model_catalog).where(model_catalog.c.run_id == run_id) \
            .order_by(model_catalog.c.sku)
        if org is not None:
            query = query.where(model_catalog.c.org == org)
        return self._read(query)

    def latest(self, org: str) -> list[CatalogEntry]:
        """The models of the org's most recent catalogued run."""
        with self.engine.connect() as conn:
            run_id = _latest_run(conn, org)
        return self.for_run(run_id, org) if run_id else []

    def prune(self, org: str, before: datetime) -> int:
        """Delete the org's runs catalogued before ``before`` (timezone-aware), except its latest,
        which the planner keeps each series' model from; how many rows."""
        if before.tzinfo is None:
            raise ValueError("prune needs a timezone-aware time")
        c = model_catalog.c
        with self.engine.connect() as conn:
            latest = _latest_run(conn, org)
            runs = conn.execute(sa.select(c.run_id, c.created_at).distinct().where(
                c.org == org, c.created_at < before.astimezone(UTC), c.run_id != latest)).all()
        deleted = 0
        # A transaction per run: a first prune of years of runs is no single long transaction;
        # (org, created_at) equal finds a run's rows through the index.
        for run_id, created_at in runs:
            with self.engine.begin() as conn:
                deleted += conn.execute(model_catalog.delete().where(
                    c.org == org, c.created_at == created_at, c.run_id == run_id)).rowcount
        return deleted

    def history(self, org: str, sku: str, *, limit: int = 50) -> list[CatalogEntry]:
        """A series' models over its runs, newest first (drift shows here)."""
        query = sa.select(model_catalog).where(model_catalog.c.org == org,
                                               model_catalog.c.sku == sku) \
            .order_by(model_catalog.c.id.desc()).limit(limit)
        return self._read(query)

    def _read(self, query: Any) -> list[CatalogEntry]:
        # Positional rows and each distinct parameter text decoded once: a run's catalog is a
        # row per SKU, and reading 100,000 of them by attribute and JSON row by row took 2.2 s.
        c = model_catalog.c
        columns = [sa.cast(c.params, sa.Text).label("params") if f == "params" else c[f]
                   for f in _FIELDS]
        query = query.with_only_columns(*columns, c.created_at)
        decoded: dict[str | None, dict[str, Any] | None] = {None: None}
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        entries = []
        for row in rows:
            values = dict(zip(_READ, row, strict=True))
            text = values["params"]
            if text not in decoded:
                decoded[text] = json.loads(text)
            values["params"] = None if decoded[text] is None else dict(decoded[text])
            entries.append(CatalogEntry(**values))
        return entries


def _latest_run(conn: sa.Connection, org: str) -> str | None:
    # The newest by the (org, created_at) index, one step down it; by id the database walked
    # every row of the org first (1.4 s at 900,000 rows on SQLite, and a catalog kept for 400
    # days of 100,000 SKUs holds 40M). An org's runs never share a stamp: they run one at a
    # time (the run lock), each stamping its rows once.
    c = model_catalog.c
    query = sa.select(c.run_id).where(c.org == org).order_by(c.created_at.desc()).limit(1)
    return conn.execute(query).scalar()


def _copy(conn: sa.Connection, entries: list[CatalogEntry], now: datetime) -> None:
    """PostgreSQL's COPY: a run's 100,000 rows in 0.5 s where executemany's row-by-row
    statements took 2.5 s (the parameters as the JSON column stores them, None as null)."""
    with conn.connection.driver_connection.cursor() as cursor, \
            cursor.copy(f"COPY {model_catalog.name} ({', '.join(_READ)}) FROM STDIN") as copy:
        texts: dict[int, str] = {}     # by the dict's identity: runs share parameter dicts
        for e in entries:
            values = list(_FIELDS_OF(e))
            params = texts.get(id(e.params))
            if params is None:
                params = texts[id(e.params)] = json.dumps(e.params)
            values[_PARAMS] = params
            copy.write_row((*values, now))
