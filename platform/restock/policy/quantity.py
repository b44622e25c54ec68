"""Order quantities under pack size, MOQ, price-break and maximum-quantity constraints.

Rules, per candidate offer (vectorised over all of them):

- the need ``S - position`` is rounded **up** to whole packs, so the target is met;
- an MOQ that is not a whole number of packs is itself rounded up to whole packs (one cannot buy
  part of a pack) — recorded as ``moq_rounded_to_pack``;
- the quantity is never below that MOQ (``raised_to_moq``);
- a price break (``min_qty`` > 0) applies only when the quantity reaches it, except a supplier's
  lowest break, which then acts as a minimum (``raised_to_price_break``);
- a maximum order quantity caps the quantity down to whole packs (``capped_max_quantity``); when
  the cap is below what the offer demands at least, the offer cannot be used (``feasible`` false).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from restock.policy.inputs import with_columns

_EPS = 1e-9


def whole_packs(quantity, pack_size) -> np.ndarray:
    """``quantity`` rounded up to a whole number of packs (0 stays 0)."""
    quantity = np.maximum(np.asarray(quantity, dtype=float), 0.0)
    pack = np.asarray(pack_size, dtype=float)
    return np.ceil(quantity / pack - _EPS) * pack


def order_minimums(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate row: its MOQ in whole packs, and the supplier's lowest price break in whole
    packs where that row is it (it then acts as a minimum; 0 elsewhere)."""
    pack = rows["pack_size"].to_numpy(dtype=float)
    moq = whole_packs(rows["moq"], pack)
    breaks = rows["min_qty"].to_numpy(dtype=float)
    if not (breaks > 0).any():
        return moq, np.zeros(len(rows))
    lowest = rows.groupby(["sku", "supplier"])["min_qty"].transform("min").to_numpy()
    return moq, np.where(breaks <= lowest, whole_packs(breaks, pack), 0.0)


def order_quantities(rows: pd.DataFrame,
                     minimums: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """Adds quantity, moq_effective, least_quantity (the least an order can be: MOQ or lowest
    price break), the constraint flags and ``feasible`` to candidate rows (``minimums``: the
    rows' :func:`order_minimums`, if already known)."""
    pack = rows["pack_size"].to_numpy(dtype=float)
    need = rows["need"].to_numpy(dtype=float)
    moq, floor_break = order_minimums(rows) if minimums is None else minimums
    packed = whole_packs(need, pack)
    quantity = np.where(need > 0, np.maximum.reduce([packed, moq, floor_break]), 0.0)
    cap = np.floor(rows["max_quantity"].to_numpy(dtype=float) / pack + _EPS) * pack
    capped = quantity > cap
    quantity = np.minimum(quantity, cap)
    least = np.maximum.reduce([moq, floor_break, pack])
    feasible = (cap >= least) & (quantity + _EPS >= rows["min_qty"].to_numpy())
    return with_columns(
        rows,
        quantity=quantity, moq_effective=moq, least_quantity=np.maximum(moq, floor_break),
        packs=np.round(quantity / pack, 6),
        moq_adjusted=np.abs(moq - rows["moq"].to_numpy(dtype=float)) > _EPS,
        raised_to_moq=(need > 0) & (moq > packed + _EPS) & (moq >= floor_break),
        raised_to_break=(need > 0) & (floor_break > np.maximum(packed, moq) + _EPS),
        capped=(need > 0) & capped,
        feasible=feasible | (need <= 0))
