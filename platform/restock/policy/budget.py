"""Spending a run's budget where it buys the most service.

Each line's benefit is the expected units short it avoids over its protection interval,
``n(position) - n(position + quantity)`` with ``n`` the loss function of demand over lead time +
review period (the normal of its spread, or the pooled past errors' where its level was read off
them); its cost is its value. When the lines cost more than the budget, they are taken
greedily by benefit per currency unit (the classic knapsack heuristic), skipping any line that no
longer fits so smaller, still-affordable ones are not lost; what is left then buys smaller
orders (whole packs, at least the offer's minimum) of the best lines that did not fit
(``reduced_by_budget``); the rest are cut.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from restock.policy.inputs import with_columns


def apply_budget(lines: pd.DataFrame, budget: float | None, short_after
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(kept lines, cut lines)``; every line is kept when it all fits. ``short_after``: the
    units short each line still leaves expected once its quantity arrives, by the same loss
    function as its ``expected_short`` (the planner's ``_expected_short``)."""
    lines = with_columns(lines, value=lines["quantity"] * lines["unit_price"])
    lines["benefit"] = lines["expected_short"] - np.asarray(short_after, dtype=float)
    lines["benefit_per_cost"] = lines["benefit"] / lines["value"]
    if budget is None or lines["value"].sum() <= budget:
        return lines, lines.iloc[:0]
    order = np.lexsort((lines["sku"].to_numpy(), -lines["benefit_per_cost"].to_numpy()))
    keep = _greedy(lines["value"].to_numpy()[order], float(budget))
    kept = np.zeros(len(lines), dtype=bool)
    kept[order[keep]] = True
    left = float(budget) - float(lines["value"].to_numpy()[kept].sum())
    lines["budget_reduced_from"] = np.nan
    lines, kept = _shrink_into(lines, kept, order[~keep], left)
    return lines[kept], lines[~kept]


def _shrink_into(lines: pd.DataFrame, kept: np.ndarray, ranked_cut: np.ndarray,
                 left: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Spend what the whole lines left over on smaller orders of the best cut lines: as many
    whole packs as fit, if that still meets the offer's minimum."""
    quantity = lines["quantity"].to_numpy(dtype=float).copy()
    reduced = lines["budget_reduced_from"].to_numpy(dtype=float).copy()
    price, pack = lines["unit_price"].to_numpy(), lines["pack_size"].to_numpy()
    least = np.maximum.reduce([lines["moq_effective"].to_numpy(), pack,
                               lines["min_qty"].to_numpy()])
    for i in ranked_cut:
        affordable = np.floor(left / (price[i] * pack[i]) + 1e-9) * pack[i]
        if affordable >= least[i] - 1e-9 and affordable > 0:
            reduced[i], quantity[i] = quantity[i], affordable
            kept[i] = True
            left -= affordable * price[i]
    lines = with_columns(lines, quantity=quantity, budget_reduced_from=reduced,
                         packs=np.round(quantity / pack, 6), value=quantity * price)
    return lines, kept


def _greedy(values: np.ndarray, budget: float) -> np.ndarray:
    """Which of ``values`` (already ranked) to take without exceeding ``budget``."""
    take = np.zeros(len(values), dtype=bool)
    fits = np.cumsum(values) <= budget + 1e-9
    head = int(fits.sum()) if fits.all() else int(np.argmin(fits))
    take[:head] = True
    left = budget - float(values[:head].sum())
    for i in range(head, len(values)):   # past the first miss only the cheaper ones can fit
        if values[i] <= left + 1e-9:
            take[i] = True
            left -= values[i]
    return take
