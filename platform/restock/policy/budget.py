"""Spending a run's budget where it buys the most service.

Each line's benefit is the expected units short it avoids over its protection interval,
``n(position) - n(position + quantity)`` with ``n`` the loss function of demand over lead time +
review period; its cost is its value. When the lines cost more than the budget, they are taken
greedily by benefit per currency unit (the classic knapsack heuristic), skipping any line that no
longer fits so smaller, still-affordable ones are not lost; the rest are cut.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from restock.policy.explain import records
from restock.policy.loss import normal_loss


def apply_budget(lines: pd.DataFrame, budget: float | None) -> tuple[pd.DataFrame, list[dict]]:
    """``(kept lines, cut lines as records)``; every line is kept when it all fits."""
    lines = lines.assign(value=lines["quantity"] * lines["unit_price"])
    lines["benefit"] = lines["expected_short"] - normal_loss(
        lines["position"] + lines["quantity"], lines["mean"], lines["sd"])
    lines["benefit_per_cost"] = lines["benefit"] / lines["value"]
    if budget is None or lines["value"].sum() <= budget:
        return lines, []
    order = np.lexsort((lines["sku"].to_numpy(), -lines["benefit_per_cost"].to_numpy()))
    keep = _greedy(lines["value"].to_numpy()[order], float(budget))
    kept = np.zeros(len(lines), dtype=bool)
    kept[order[keep]] = True
    return lines[kept], records(lines[~kept])


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
