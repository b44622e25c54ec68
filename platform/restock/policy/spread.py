"""The spread of demand over lead time + review, learnt from the forecasts' own realised errors.

One period's error scaled by ``√(L + R)`` assumes independent errors; real errors persist (a level
missed one week is missed the next), so the spread over the protection interval is often wider.
Every earlier forecast whose interval has closed gives a known error over it. Each item's root
mean squared error over those windows is blended with a prior — the model's sd now, scaled by
the median ratio of realised to predicted error across items — weighted by how many windows the
item has (:data:`PRIOR_WEIGHT` windows count as much as the prior).

The replay (:func:`restock.simulate.horizon_spread`) and the live planner
(:func:`restock.forecast_windows.learn_from_windows`, from the forecasts each run records)
both come here, so the rule the backtest measures is the rule that orders.
"""

from __future__ import annotations

import numpy as np

PRIOR_WEIGHT = 4.0   # past windows an item needs before its own errors outweigh the pooled prior
MIN_ITEMS_FOR_RATIO = 10   # items with windows before their median ratio scales the prior


def learnt_sd(squared: np.ndarray, predicted: np.ndarray, count: np.ndarray,
              model_sd: np.ndarray) -> np.ndarray:
    """sd over the protection interval per item from its closed windows.

    ``squared``: sum of squared realised errors; ``predicted``: sum of the variances the
    forecasts claimed for those windows; ``count``: windows; ``model_sd``: the forecast's sd now.
    An item without windows keeps its model sd, scaled by the pooled ratio.
    """
    with np.errstate(all="ignore"):
        ratio = np.sqrt(squared / predicted)
    usable = (count > 0) & np.isfinite(ratio) & (predicted > 0)
    pooled = float(np.median(ratio[usable])) if usable.sum() >= MIN_ITEMS_FOR_RATIO else 1.0
    prior = (pooled * model_sd) ** 2
    return np.sqrt((squared + PRIOR_WEIGHT * prior) / (count + PRIOR_WEIGHT))
