"""How long a 100,000-SKU plan takes on one core (positions and forecasts given).

Synthetic catalogue: a mix of fast and slow movers (a fifth under 20 units per protection
interval, planned in whole units), two suppliers per SKU plus a price break on a third of them,
packs, MOQs, a max bid that rules out every offer of about a tenth of the SKUs, 2% of SKUs
without any offer, and a budget that cuts a fifth of the spend; the cycle targets read their
levels off a pool of 5.2M past errors (52 windows per SKU), as a live run with a year of closed
windows does. Target: <= 5 s. The plan is also timed without building the OrderLine objects
(skipped lines and holds still built).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bench._common import best_of, save_result
from bench.machine import describe

RESULTS = Path(__file__).parent / "results" / "policy_plan.json"


def catalogue(n: int, seed: int = 7, cover_days: tuple[float, float] = (0, 40)
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` items with positions and forecasts (on hand: ``cover_days`` of demand), and offers."""
    rng = np.random.default_rng(seed)
    rate = np.where(rng.random(n) < 0.2, rng.gamma(0.5, 0.1, n), rng.gamma(2.0, 5.0, n))
    skus = np.array([f"SKU-{i:06d}" for i in range(n)])
    items = pd.DataFrame({
        "sku": skus, "category": rng.choice(["a", "b", "c", "d"], n), "description": "",
        "on_hand": np.floor(rate * rng.uniform(*cover_days, n)), "allocated": 0.0,
        "on_order": np.where(rng.random(n) < 0.3, np.floor(rate * 14), 0.0), "backorders": 0.0,
        "demand_rate": rate, "demand_sd": rate * rng.uniform(0.3, 1.5, n) + 0.05,
        "usual_order_qty": rate * 21, "forecast_confidence": rng.uniform(0.1, 1.0, n),
        # the forecast's model and why, which a live run's reasons name
        "model": rng.choice(["SES", "TSB", "SBA", "SeasonalIndex"], n),
        "chosen_by": rng.choice(["backtest", "steady", "previous"], n)})
    pack = rng.choice([1, 6, 12, 24], n).astype(float)
    first = pd.DataFrame({"sku": skus, "supplier": "north", "unit_price": rng.uniform(1, 50, n),
                          "lead_time_days": rng.choice([7, 14, 21], n).astype(float),
                          "moq": pack * rng.choice([1, 2, 5], n), "pack_size": pack,
                          "min_qty": 0.0, "currency": "EUR"})
    second = first.assign(supplier="south", unit_price=first["unit_price"] * 0.9,
                          lead_time_days=first["lead_time_days"] + 14)
    cut = first.iloc[: n // 3].assign(unit_price=first["unit_price"].iloc[: n // 3] * 0.85,
                                      min_qty=500.0)
    offers = pd.concat([first, second, cut], ignore_index=True)
    return items, offers[~offers["sku"].isin(skus[::50])]   # 2% of SKUs have no offer


def past_errors(n: int, windows: int = 52, seed: int = 11) -> np.ndarray:
    """A year of weekly windows' standardised errors per SKU, as a live run pools them for
    the cycle targets' levels (heavy-tailed, unsorted, a few unknown)."""
    rng = np.random.default_rng(seed)
    errors = rng.standard_t(4, windows * n)
    errors[rng.random(errors.size) < 0.01] = np.nan
    return errors


def timed_plan(items: pd.DataFrame, offers: pd.DataFrame, budget: float | None) -> dict:
    """CPU seconds for the whole plan and for the plan without its OrderLine objects."""
    import importlib

    from pydantic import TypeAdapter

    from restock.config import Policy
    from restock.policy import plan

    plan_module = importlib.import_module("restock.policy.plan")
    policy = Policy(review_period_days=7, max_bid={"default": 40}, budget=budget,
                    overrides={"categories": {"b": {"service_measure": "fill_rate"},
                                              "c": {"buffer": {"days_of_cover": 5}}}})
    errors = past_errors(len(items))
    total, result = best_of(lambda: plan(items, offers, policy, horizon_errors=errors))
    original = plan_module._order_lines, plan_module._LINES
    plan_module._order_lines = lambda frame, as_of: [None] * len(frame)
    plan_module._LINES = TypeAdapter(list[None])
    try:
        arithmetic, _ = best_of(lambda: plan(items, offers, policy, horizon_errors=errors))
    finally:
        plan_module._order_lines, plan_module._LINES = original
    return {"seconds_total": round(total, 3),
            "seconds_without_order_line_objects": round(arithmetic, 3),
            "seconds_building_lines": round(max(total - arithmetic, 0.0), 3),
            "lines": len(result.lines), "skipped": len(result.skipped),
            "held": len(result.holds), "spend": round(result.spend, 2)}


def run(n: int = 100_000) -> dict:
    from restock.config import Policy
    from restock.policy import plan

    small, small_offers = catalogue(200)
    plan(small, small_offers, Policy())   # imports and first-call costs, once
    typical, offers = catalogue(n, cover_days=(20, 120))
    every, _ = catalogue(n, cover_days=(0, 5))
    unlimited = timed_plan(typical, offers, budget=None)
    budget = round(0.8 * unlimited["spend"], 2)
    return {"skus": n, "offer_rows": len(offers), "target_seconds": 5.0,
            "seconds_are": "CPU seconds of the planning process (best of 2), one core",
            "load_average_1min": os.getloadavg()[0], "versions": _versions(),
            "machine": describe(),
            "typical_run": unlimited,
            "typical_run_budget_80pct": {"budget": budget, **timed_plan(typical, offers, budget)},
            "every_sku_orders": timed_plan(every, offers, budget=None)}


def _versions() -> dict:
    # pandas 3 stores text as Arrow strings and moves this plan by about 10%: say which ran.
    import platform

    import pydantic
    return {"python": platform.python_version(), "pandas": pd.__version__,
            "numpy": np.__version__, "pydantic": pydantic.__version__}


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = run()
    save_result(RESULTS, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
