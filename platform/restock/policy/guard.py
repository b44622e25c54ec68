"""Line-level guardrails: what makes a planned line wait for a person even in auto mode.

- ``above_usual``: the quantity is more than ``guard.max_multiple_of_usual`` times the item's usual
  order size (``usual_order_qty``), which usually means a data error upstream;
- ``low_confidence``: the forecast's confidence is below ``guard.min_forecast_confidence``.

The order-level limit (``policy.max_order_value``) and the org's mode are the cycle's to apply.
"""

from __future__ import annotations

import pandas as pd

from restock.config import Guard
from restock.domain import Reason
from restock.policy.explain import num, records


def holds_for(lines: pd.DataFrame, guard: Guard) -> dict[str, list[Reason]]:
    """SKU → reasons its line must be approved first (only SKUs with a reason appear)."""
    holds: dict[str, list[Reason]] = {}
    usual = lines["usual_order_qty"]
    large = usual.notna() & (usual > 0) & (lines["quantity"] > guard.max_multiple_of_usual * usual)
    for row in records(lines.loc[large, ["sku", "quantity", "usual_order_qty"]]):
        multiple = row["quantity"] / row["usual_order_qty"]
        holds.setdefault(row["sku"], []).append(Reason(
            code="above_usual", message=f"{num(row['quantity'])} is {multiple:.1f} times the "
            f"usual order of {num(row['usual_order_qty'])} (limit "
            f"{guard.max_multiple_of_usual:g}x)",
            data={"quantity": row["quantity"], "usual_order_qty": row["usual_order_qty"],
                  "multiple": multiple, "limit": guard.max_multiple_of_usual}))
    confidence = lines["forecast_confidence"]
    low = confidence.notna() & (confidence < guard.min_forecast_confidence)
    for row in records(lines.loc[low, ["sku", "forecast_confidence"]]):
        holds.setdefault(row["sku"], []).append(Reason(
            code="low_confidence", message=f"forecast confidence {row['forecast_confidence']:.2f}"
            f" is below {guard.min_forecast_confidence:g}",
            data={"forecast_confidence": row["forecast_confidence"],
                  "limit": guard.min_forecast_confidence}))
    return holds
