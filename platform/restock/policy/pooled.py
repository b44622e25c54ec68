"""Pooled service levels: a group of items meets its target on average, at the least stock value.

With ``service_scope: pooled`` the org's (or a category's) service level is the average over its
items rather than every item's own. :func:`restock.policy.levels.pooled_cycle_z` and
:func:`restock.policy.levels.pooled_fill_z` share the target out so that cheap, steady items get
more of it and dear, erratic ones less; the backtest (``bench/policy_backtest.py``) measures the
same rule. Each pooled item is priced at its chosen offer: the spread of demand over that offer's
lead time + review, its unit price, and how far one order of its MOQ (or lowest price break)
and packs exceeds a review cycle's demand (a cycle target, as :mod:`restock.policy.exposure`
counts it) or how many review cycles that order lasts (a fill rate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from restock.policy.exposure import cycles_per_order, excess_width
from restock.policy.inputs import with_columns
from restock.policy.levels import cycle_short_share, pooled_cycle_z, pooled_fill_z
from restock.policy.loss import standard_normal_loss

POOLED_COLUMNS = ("safety_factor", "item_level", "pool_items")


def pooled_settings(settings: pd.DataFrame, skus: pd.Series,
                    chosen: pd.DataFrame) -> pd.DataFrame:
    """``settings`` with a safety factor, own service level and pool size per pooled item.

    ``chosen`` holds each item's chosen offer row (sd over its lead time + review, unit price,
    pack size, least order: MOQ or lowest price break). Items of a pool without a usable offer
    or without expected demand keep their own level: nothing can be ordered for them, or they
    have no service to count.
    """
    settings = with_columns(settings, safety_factor=np.nan, item_level=np.nan, pool_items=0)
    members = chosen[chosen["pool"].notna() & (chosen["mean"] > 0)]
    where = pd.Series(np.arange(len(skus)), index=skus.to_numpy())
    columns = [settings.columns.get_loc(c) for c in POOLED_COLUMNS]
    for (_, level, fill), group in members.groupby(["pool", "service_level", "fill_rate"]):
        factor, own = _pool_factors(group, float(level), bool(fill))
        rows = where[group["sku"].to_numpy()].to_numpy()
        settings.iloc[rows, columns[0]] = factor
        settings.iloc[rows, columns[1]] = own
        settings.iloc[rows, columns[2]] = len(group)
    return settings


def with_pool_shares(rows: pd.DataFrame, settings: pd.DataFrame,
                     skus: pd.Series) -> pd.DataFrame:
    """Candidate ``rows`` (one per item and offer) with their items' pooled columns."""
    where = pd.Index(skus.to_numpy()).get_indexer(rows["sku"])
    return with_columns(rows, **{column: settings[column].to_numpy()[where]
                          for column in POOLED_COLUMNS})


def _pool_factors(group: pd.DataFrame, level: float,
                  fill_rate: bool) -> tuple[np.ndarray, np.ndarray]:
    """Safety factors for one pool and the service each item then gets on its own."""
    sd, price = group["sd"].to_numpy(dtype=float), group["unit_price"].to_numpy(dtype=float)
    cycle_demand = (group["demand_rate"] * group["review_days"]).to_numpy(dtype=float)
    pack = group["pack_size"].to_numpy(dtype=float)
    moq = group["least_quantity"].to_numpy(dtype=float)   # MOQ or a lowest price break
    if fill_rate:
        orders = cycles_per_order(cycle_demand, pack, moq)
        factor = pooled_fill_z(level, sd, cycle_demand, price, orders)
        with np.errstate(divide="ignore", invalid="ignore"):
            short = sd * standard_normal_loss(factor) / orders / cycle_demand
        return factor, np.clip(1.0 - np.nan_to_num(short), 0.0, 1.0)
    excess = excess_width(cycle_demand, sd, pack, moq)
    factor = pooled_cycle_z(level, sd, price, excess=excess)
    return factor, 1.0 - cycle_short_share(factor, excess)
