"""The model catalog: which model forecast each series at each run, how well, on what data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
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
    as_of: date | None = None              # the run's planning date
    horizon_days: float | None = None      # the SKU's lead time + review then
    horizon_mean: float | None = None      # forecast demand over it, and its sd
    horizon_sd: float | None = None


_FIELDS = ("org", "run_id", "sku", "model", "demand_class", "params", "mase", "rmsse",
           "rate_per_day", "window_start", "window_end", "observations", "code_version",
           "as_of", "horizon_days", "horizon_mean", "horizon_sd")


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

    def for_run(self, run_id: str) -> list[CatalogEntry]:
        query = sa.select(model_catalog).where(model_catalog.c.run_id == run_id) \
            .order_by(model_catalog.c.sku)
        return self._read(query)

    def latest(self, org: str) -> list[CatalogEntry]:
        """The models of the org's most recent catalogued run."""
        query = sa.select(model_catalog.c.run_id).where(model_catalog.c.org == org) \
            .order_by(model_catalog.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            run_id = conn.execute(query).scalar()
        return self.for_run(run_id) if run_id else []

    def history(self, org: str, sku: str, *, limit: int = 50) -> list[CatalogEntry]:
        """A series' models over its runs, newest first (drift shows here)."""
        query = sa.select(model_catalog).where(model_catalog.c.org == org,
                                               model_catalog.c.sku == sku) \
            .order_by(model_catalog.c.id.desc()).limit(limit)
        return self._read(query)

    def window_runs(self, org: str, start: date, end: date) -> list[tuple[date, str]]:
        """``(planning date, run id)`` of the org's runs from ``start`` to before ``end`` that
        recorded forecast windows, the latest run of each date only, newest date first."""
        c = model_catalog.c
        query = sa.select(c.as_of, c.run_id, sa.func.max(c.id).label("last")).where(
            c.org == org, c.as_of >= start, c.as_of < end, c.horizon_days.is_not(None)) \
            .group_by(c.as_of, c.run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        latest: dict[date, tuple[int, str]] = {}
        for as_of, run_id, last in rows:
            if as_of not in latest or last > latest[as_of][0]:
                latest[as_of] = (last, run_id)
        return [(day, latest[day][1]) for day in sorted(latest, reverse=True)]

    def windows(self, run_ids: list[str]) -> pd.DataFrame:
        """The forecast windows those runs recorded: sku, as_of (datetime64), horizon_days,
        horizon_mean, horizon_sd (read as plain columns: a run of 100,000 SKUs has as many
        rows)."""
        c = model_catalog.c
        columns = [c.sku, c.as_of, c.horizon_days, c.horizon_mean, c.horizon_sd]
        parts = []
        with self.engine.connect() as conn:
            for lo in range(0, len(run_ids), 50):   # bounded IN lists
                query = sa.select(*columns).where(c.run_id.in_(run_ids[lo:lo + 50]),
                                                  c.horizon_days.is_not(None))
                # The driver's tuples as they come (dates may stay ISO text on SQLite): a
                # million rows read a second faster than through result rows.
                parts.append(pd.DataFrame(conn.execute(query).cursor.fetchall(),
                                          columns=[col.name for col in columns]))
        frame = pd.concat(parts, ignore_index=True) if parts else \
            pd.DataFrame(columns=[col.name for col in columns])
        frame["as_of"] = pd.to_datetime(frame["as_of"])
        return frame

    def _read(self, query: Any) -> list[CatalogEntry]:
        with self.engine.connect() as conn:
            return [CatalogEntry(**{f: getattr(row, f) for f in _FIELDS},
                                 created_at=row.created_at) for row in conn.execute(query)]
