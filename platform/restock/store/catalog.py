"""The model catalog: which model forecast each series at each run, how well, on what data."""

from __future__ import annotations

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


_FIELDS = ("org", "run_id", "sku", "model", "demand_class", "params", "mase", "rmsse",
           "rate_per_day", "window_start", "window_end", "observations", "code_version")


class ModelCatalog:
    """Writes a run's models in one batch; reads the latest per series and a series' history."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, entries: list[CatalogEntry]) -> None:
        if not entries:
            return
        now = datetime.now(UTC)
        rows = [{**{f: getattr(e, f) for f in _FIELDS}, "created_at": now} for e in entries]
        with self.engine.begin() as conn:
            conn.execute(model_catalog.insert(), rows)

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
        with self.engine.connect() as conn:
            return [CatalogEntry(**{f: getattr(row, f) for f in _FIELDS},
                                 created_at=row.created_at) for row in conn.execute(query)]


def _latest_run(conn: sa.Connection, org: str) -> str | None:
    query = sa.select(model_catalog.c.run_id).where(model_catalog.c.org == org) \
        .order_by(model_catalog.c.id.desc()).limit(1)
    return conn.execute(query).scalar()
