"""Turning rows from another system into the Snapshot's column contracts."""

from __future__ import annotations

import math
import numbers
from typing import Any

import pandas as pd

from restock.connectors import Scope
from restock.domain import (
    CATALOG_COLUMNS,
    HISTORY_COLUMNS,
    OFFER_COLUMNS,
    OPEN_ORDER_COLUMNS,
    POSITION_COLUMNS,
    PROMOTION_COLUMNS,
    Snapshot,
)
from restock.errors import ConnectorError

COLUMNS = {"catalog": CATALOG_COLUMNS, "offers": OFFER_COLUMNS, "positions": POSITION_COLUMNS,
           "history": HISTORY_COLUMNS, "open_orders": OPEN_ORDER_COLUMNS,
           "promotions": PROMOTION_COLUMNS}
REQUIRED = {"catalog": ("sku",), "offers": ("sku", "supplier", "unit_price"),
            "positions": ("sku", "location", "on_hand"),
            "history": ("sku", "location", "date", "quantity"),
            "open_orders": ("sku", "quantity"), "promotions": ("sku", "date")}
DEFAULTS: dict[str, Any] = {"description": "", "category": None, "unit": "each",
                            "lead_time_days": math.nan, "moq": 1.0, "pack_size": 1.0,
                            "min_qty": 1.0, "supplier_sku": None, "currency": None,
                            "allocated": 0.0, "on_order": 0.0, "backorders": 0.0,
                            "reference": None, "supplier": None, "expected_date": None,
                            "promotion": 1.0}   # a calendar row without the flag: on promotion


def conform(frame: pd.DataFrame, dataset: str, system: str) -> pd.DataFrame:
    """``frame`` with exactly the dataset's contract columns; missing required ones are errors."""
    missing = [c for c in REQUIRED[dataset] if c not in frame.columns]
    if missing:
        raise ConnectorError(system, f"{dataset}: missing column(s) {', '.join(missing)}")
    frame = frame.copy()
    for column in COLUMNS[dataset]:
        if column not in frame.columns:
            frame[column] = DEFAULTS[column]
    if dataset in ("history", "promotions") and not frame.empty:
        frame["date"] = _dates(frame["date"], dataset, system)
    return frame[list(COLUMNS[dataset])].reset_index(drop=True)


def _dates(values: pd.Series, dataset: str, system: str) -> pd.Series:
    """Calendar dates from ISO text, date objects, yyyymmdd numbers or Unix times.

    Numbers are never read as pandas' default nanoseconds, which would put every day in 1970.
    Text that is not a date becomes NaT, and the cleaning step quarantines that record.
    """
    if not _all_numbers(values):
        return pd.to_datetime(values, errors="coerce").dt.date
    stamps = pd.to_numeric(values)
    largest = stamps.abs().max()
    if 1e7 <= largest < 1e8:              # 20261102, as legacy ERPs store days
        text = stamps.map(lambda n: "" if pd.isna(n) else str(int(n)))
        return pd.to_datetime(text, format="%Y%m%d", errors="coerce").dt.date
    if 1e8 <= largest < 1e11:             # Unix seconds (1973-5138)
        return pd.to_datetime(stamps, unit="s", utc=True).dt.date
    if 1e11 <= largest < 1e14:            # the same span in milliseconds
        return pd.to_datetime(stamps, unit="ms", utc=True).dt.date
    raise ConnectorError(system, f"{dataset}: dates are numbers ({largest:g}) that are neither "
                         "yyyymmdd nor Unix seconds or milliseconds")


def _all_numbers(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    return bool(values.map(lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
                           or v is None).all()) and values.notna().any()


def empty(dataset: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(COLUMNS[dataset]))


def narrow(snapshot: Snapshot, scope: Scope) -> Snapshot:
    """Only the SKUs, locations and history dates the scope asks for."""
    for name in COLUMNS:
        frame = getattr(snapshot, name)
        if scope.skus is not None:
            frame = frame[frame["sku"].isin(scope.skus)]
        if scope.locations is not None and "location" in frame:
            frame = frame[frame["location"].isin(scope.locations)]
        if name == "history" and scope.since is not None and not frame.empty:
            frame = frame[frame["date"] >= pd.Timestamp(scope.since).date()]
        setattr(snapshot, name, frame.reset_index(drop=True))
    return snapshot
