"""Each run's forecast over each SKU's lead time + review, one packed row per run (the live
:mod:`restock.forecast_windows` learns the spread from them once they close)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from restock.store.schema import forecast_windows

_ARRAYS = ("horizon_days", "horizon_mean", "horizon_sd")


class ForecastWindows:
    """Writes a run's windows in one row; reads the runs and their windows back."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, org: str, run_id: str, as_of: date, windows: pd.DataFrame) -> None:
        """``windows``: sku, horizon_days, horizon_mean, horizon_sd (nothing written if empty)."""
        if windows.empty:
            return
        row = {"org": org, "run_id": run_id, "as_of": as_of, "created_at": datetime.now(UTC),
               "skus": "\n".join(windows["sku"].astype(str)),
               **{name: windows[name].to_numpy("<f8").tobytes() for name in _ARRAYS}}
        with self.engine.begin() as conn:
            conn.execute(forecast_windows.insert(), [row])

    def prune(self, org: str, before: date) -> int:
        """Delete the org's runs planned before ``before`` (no longer read); how many."""
        c = forecast_windows.c
        with self.engine.begin() as conn:
            return conn.execute(forecast_windows.delete().where(
                c.org == org, c.as_of < before)).rowcount

    def runs(self, org: str, start: date, end: date) -> list[tuple[date, int]]:
        """``(planning date, row id)`` of the org's recorded runs from ``start`` to before
        ``end``, the latest run of each date only, newest date first."""
        c = forecast_windows.c
        query = sa.select(c.as_of, sa.func.max(c.id)).where(
            c.org == org, c.as_of >= start, c.as_of < end).group_by(c.as_of) \
            .order_by(c.as_of.desc())
        with self.engine.connect() as conn:
            return [(day, last) for day, last in conn.execute(query)]

    def read(self, ids: list[int]) -> pd.DataFrame:
        """The windows of those rows: sku, as_of (datetime64), horizon_days, horizon_mean,
        horizon_sd."""
        c = forecast_windows.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.as_of, c.skus, *(c[n] for n in _ARRAYS))
                                .where(c.id.in_(ids))).all() if ids else []
        parts = [pd.DataFrame({"sku": skus.split("\n"), "as_of": pd.Timestamp(as_of),
                               **{n: np.frombuffer(blob, dtype="<f8")
                                  for n, blob in zip(_ARRAYS, arrays, strict=True)}})
                 for as_of, skus, *arrays in rows]
        columns = ["sku", "as_of", *_ARRAYS]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
