"""A believable demo warehouse, generated from a seed, so restock can be tried on a fresh machine.

``generate(folder, seed=7)`` writes what the ``files`` inventory source reads: ``catalog.csv``,
``offers.csv`` (several suppliers, price breaks, lead times, MOQ, pack sizes), ``positions.csv``,
``open_orders.csv`` and two years of daily consumption in ``history.csv.gz``.

The shapes follow real industrial and retail demand: a mix of smooth, seasonal, intermittent
(mostly zero days, small sizes) and lumpy (rare, large and erratic) series; unit costs spread
log-normally from cents to a few thousand euros; lead times from one week to four months; MOQs and
pack sizes the way spare-part suppliers set them. Nothing here is copied from a real data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DEMAND_CLASSES = ("smooth", "seasonal", "intermittent", "lumpy")
_CLASS_SHARES = (0.40, 0.22, 0.26, 0.12)
_SLOW_CLASS_SHARES = (0.10, 0.10, 0.50, 0.30)
_CATEGORIES = {   # category: (SKU prefix, median unit cost in EUR, typical daily units when smooth)
    "fasteners": ("FST", 0.6, 25.0), "filters": ("FLT", 14.0, 3.0),
    "bearings": ("BRG", 18.0, 1.5), "electrical": ("ELC", 9.0, 4.0),
    "hydraulics": ("HYD", 85.0, 0.8), "consumables": ("CON", 3.0, 8.0),
    "safety": ("SAF", 6.0, 3.0), "drives": ("DRV", 420.0, 0.3),
}
_NOUNS = {
    "fasteners": ["Hex bolt M8x40", "Lock nut M10", "Washer M6", "Socket screw M5x20", "Rivet 4mm"],
    "filters": ["Oil filter", "Air filter cartridge", "Hydraulic return filter", "Fuel strainer"],
    "bearings": ["Deep groove bearing 6204", "Pillow block UCP205", "Needle bearing", "Bushing"],
    "electrical": ["Relay 24V", "Fuse 10A", "Cable gland M20", "Proximity sensor", "Contactor"],
    "hydraulics": ["Hydraulic hose 1/2in", "Quick coupling", "Pressure valve", "Seal kit"],
    "consumables": ["Cutting disc 125mm", "Grease cartridge", "Shop towel roll", "Marker paint"],
    "safety": ["Nitrile gloves", "Safety glasses", "Ear plugs", "FFP2 mask"],
    "drives": ["Gear motor 0.75kW", "Frequency inverter", "Timing belt pulley", "Servo coupling"],
}
_VARIANTS = ("", ", heavy duty", ", stainless", ", compact", ", long life", ", type B")
SUPPLIERS = (   # id, base lead time in days, price level relative to list
    ("nordwerk", 7, 1.00), ("brightline", 14, 0.95), ("kessler", 21, 0.92),
    ("atlas", 49, 0.85), ("meridian", 112, 0.80),
)
_PACKS = (1, 5, 10, 25, 50, 100)
_MOQS = (1, 5, 10, 20, 25, 50)


@dataclass(frozen=True)
class DemoWarehouse:
    """Where a generated warehouse went and what is in it."""

    folder: Path
    skus: int
    history_rows: int
    start: date
    end: date
    classes: dict[str, int]


def generate(folder: str | Path, *, seed: int = 7, skus: int = 300, days: int = 730,
             end: date | None = None) -> DemoWarehouse:
    """Write a demo warehouse to ``folder``; the same seed and end date give the same files."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).date() - timedelta(days=1)
    dates = pd.date_range(end=pd.Timestamp(end), periods=days, freq="D")
    catalog = _catalog(rng, skus)
    demand = _demand(rng, catalog, dates)
    offers = _offers(rng, catalog)
    positions, open_orders = _positions(rng, catalog, demand, offers, end)
    history = _tidy(catalog, demand, dates)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    catalog.drop(columns=["demand_class", "list_price", "rate"]).to_csv(out / "catalog.csv",
                                                                        index=False)
    offers.to_csv(out / "offers.csv", index=False, float_format="%.4g")
    positions.to_csv(out / "positions.csv", index=False)
    open_orders.to_csv(out / "open_orders.csv", index=False)
    history.to_csv(out / "history.csv.gz", index=False,
                   compression={"method": "gzip", "mtime": 0})
    (out / "demand_classes.csv").write_text(
        catalog[["sku", "demand_class"]].to_csv(index=False))
    return DemoWarehouse(out, skus, len(history), dates[0].date(), end,
                         catalog["demand_class"].value_counts().to_dict())


def _catalog(rng: np.random.Generator, skus: int) -> pd.DataFrame:
    names = list(_CATEGORIES)
    category = rng.choice(names, size=skus, p=_category_weights(names))
    # Expensive, slow parts (motors, valves) are rarely smooth sellers; cheap ones mostly are.
    slow = np.array([_CATEGORIES[c][2] < 1.0 for c in category])
    classes = np.where(slow, rng.choice(DEMAND_CLASSES, size=skus, p=_SLOW_CLASS_SHARES),
                       rng.choice(DEMAND_CLASSES, size=skus, p=_CLASS_SHARES))
    rows = []
    for i, (cat, cls) in enumerate(zip(category, classes, strict=True)):
        prefix, median_cost, median_rate = _CATEGORIES[cat]
        price = float(np.clip(median_cost * rng.lognormal(0.0, 0.9), 0.05, 2500.0))
        rate = median_rate * rng.lognormal(0.0, 0.7)
        rate = max(rate, 1.5) if cls in ("smooth", "seasonal") else rate * 0.35
        noun = _NOUNS[cat][i % len(_NOUNS[cat])] + _VARIANTS[(i // 3) % len(_VARIANTS)]
        rows.append({"sku": f"{prefix}-{1000 + i:04d}", "description": noun, "category": cat,
                     "unit": "each", "demand_class": cls, "list_price": round(price, 2),
                     "rate": rate})
    return pd.DataFrame(rows)


def _category_weights(names: list[str]) -> list[float]:
    share = {"fasteners": 0.22, "consumables": 0.2, "drives": 0.04, "hydraulics": 0.07}
    weights = np.array([share.get(n, 0.1) for n in names])
    return list(weights / weights.sum())


def _demand(rng: np.random.Generator, catalog: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """Daily units, one row per SKU; weekends are quiet as in a plant that runs weekdays."""
    t = np.arange(len(dates))
    weekday = np.where(dates.day_of_week >= 5, 0.25, 1.1)
    out = np.zeros((len(catalog), len(dates)))
    for row, item in enumerate(catalog.itertuples(index=False)):
        make = {"smooth": _smooth, "seasonal": _seasonal, "intermittent": _intermittent,
                "lumpy": _lumpy}[item.demand_class]
        out[row] = make(rng, item.rate, t, weekday)
    return out


def _smooth(rng, rate, t, weekday):
    trend = 1.0 + rng.uniform(-0.15, 0.25) * t / len(t)
    return rng.negative_binomial(8, 8 / (8 + rate * weekday * trend))


def _seasonal(rng, rate, t, weekday):
    amplitude, phase = rng.uniform(0.35, 0.8), rng.uniform(0, 2 * np.pi)
    season = 1.0 + amplitude * np.sin(2 * np.pi * t / 365.25 + phase)
    return rng.negative_binomial(6, 6 / (6 + rate * weekday * season))


def _intermittent(rng, rate, t, weekday):
    p = np.clip(rng.uniform(0.03, 0.18) * weekday, 0, 1)
    sizes = 1 + rng.poisson(max(rate, 0.3) * rng.uniform(0.5, 2.0), size=len(t))
    return np.where(rng.random(len(t)) < p, sizes, 0)


def _lumpy(rng, rate, t, weekday):
    p = np.clip(rng.uniform(0.01, 0.07) * weekday, 0, 1)
    mean_size = max(rate, 0.5) * rng.uniform(4, 15)
    sizes = np.ceil(rng.lognormal(np.log(mean_size), 1.0, size=len(t)))
    return np.where(rng.random(len(t)) < p, sizes, 0)


def _offers(rng: np.random.Generator, catalog: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for item in catalog.itertuples(index=False):
        pack = int(rng.choice(_PACKS, p=_pack_weights(item.list_price)))
        moq = int(np.ceil(max(int(rng.choice(_MOQS, p=(.35, .09, .37, .1, .05, .04))), pack)
                          / pack) * pack)
        picks = rng.choice(len(SUPPLIERS), size=1 + int(rng.random() < 0.3), replace=False)
        for pick in picks:
            rows += _supplier_rows(rng, item, SUPPLIERS[pick], pack, moq)
    return pd.DataFrame(rows)


def _pack_weights(price: float) -> tuple[float, ...]:
    if price > 100:
        return (0.8, 0.15, 0.05, 0, 0, 0)
    if price > 10:
        return (0.35, 0.2, 0.3, 0.1, 0.05, 0)
    return (0.1, 0.1, 0.25, 0.2, 0.2, 0.15)


def _supplier_rows(rng, item, supplier, pack: int, moq: int) -> list[dict]:
    name, lead, level = supplier
    price = round(item.list_price * level * rng.uniform(0.93, 1.07), 2) or 0.01
    base = {"sku": item.sku, "supplier": name, "lead_time_days": int(lead + rng.integers(0, 6)),
            "moq": moq, "pack_size": pack, "supplier_sku": f"{name[:3].upper()}-{item.sku}",
            "currency": "EUR"}
    rows = [{**base, "unit_price": price, "min_qty": 0}]
    if rng.random() < 0.4:   # volume breaks at 5x and 20x the MOQ
        rows.append({**base, "unit_price": round(price * 0.95, 2) or 0.01, "min_qty": moq * 5})
        rows.append({**base, "unit_price": round(price * 0.90, 2) or 0.01, "min_qty": moq * 20})
    return rows


def _positions(rng, catalog: pd.DataFrame, demand: np.ndarray, offers: pd.DataFrame,
               end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    recent = demand[:, -90:].mean(axis=1)
    # Stock covers 0.3-2.5 times each item's cheapest lead time + a week: some items are due.
    base = offers[offers["min_qty"] == 0].sort_values("unit_price").groupby("sku").first()
    lead = catalog["sku"].map(base["lead_time_days"]).to_numpy(dtype=float)
    cover_days = rng.uniform(0.3, 2.5, size=len(catalog)) * (lead + 7)
    on_hand = np.floor(recent * cover_days + rng.integers(0, 3, size=len(catalog)))
    on_order = np.where(rng.random(len(catalog)) < 0.15, np.ceil(recent * 30), 0)
    allocated = np.where(rng.random(len(catalog)) < 0.1, np.floor(on_hand * 0.2), 0)
    backorders = np.where(on_hand == 0, np.ceil(recent * rng.uniform(0, 3, len(catalog))), 0)
    positions = pd.DataFrame({"sku": catalog["sku"], "location": "main", "on_hand": on_hand,
                              "allocated": allocated, "on_order": on_order,
                              "backorders": backorders}).astype({c: int for c in (
                                  "on_hand", "allocated", "on_order", "backorders")})
    pending = positions[positions["on_order"] > 0]
    open_orders = pd.DataFrame({
        "reference": [f"PO-{4100 + i}" for i in range(len(pending))], "sku": pending["sku"],
        "supplier": pending["sku"].map(offers.groupby("sku")["supplier"].first()),
        "quantity": pending["on_order"],
        "expected_date": [(end + timedelta(days=int(d))).isoformat()
                          for d in rng.integers(3, 20, size=len(pending))]})
    return positions, open_orders


def _tidy(catalog: pd.DataFrame, demand: np.ndarray, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per SKU and day with consumption (days without use are absent, as in a WMS log)."""
    rows, cols = np.nonzero(demand)
    return pd.DataFrame({"sku": catalog["sku"].to_numpy()[rows], "location": "main",
                         "date": dates[cols].strftime("%Y-%m-%d"),
                         "quantity": demand[rows, cols].astype(int)})
