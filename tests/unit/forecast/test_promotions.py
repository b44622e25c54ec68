"""The promotion calendar in the forecast: flags on a panel's grid, the effect learnt from the
history, the history without it, and the effect put back on the periods ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.errors import ConfigError
from restock.forecast import forecast_panel, to_panel
from restock.forecast.promotions import PromotionEffect, calendar_flags, on_the_calendar


def test_calendar_flags_mark_a_period_when_any_of_its_days_is_on_promotion():
    calendar = pd.DataFrame({"sku": ["A", "A", "B", "Z"],
                             "date": ["2024-01-10", "2024-01-16", "2024-01-29", "2024-01-08"],
                             "promotion": [1, 0, 1, 1]})
    weeks = pd.date_range("2024-01-01", periods=5, freq="W-MON")   # the last two are ahead
    flags = calendar_flags(calendar, np.array(["A", "B", "C"]), weeks, "W", id_col="sku")
    assert flags.tolist() == [[False, True, False, False, False],   # Wednesday 10th: week 2
                              [False, False, False, False, True],   # a planned one ahead
                              [False] * 5]                          # not in the calendar
    # Z is not among the ids asked for; A's 0 on the 16th marks nothing


def test_a_flat_item_forecast_without_its_promotions_and_raised_where_one_lies_ahead():
    promoted = np.zeros((1, 56), dtype=bool)
    promoted[0, ::4] = True
    values = np.where(promoted, 30.0, 10.0)
    effect = PromotionEffect.learnt(values, promoted)
    assert effect.size == pytest.approx([3.0])            # one item: its own lift is the pool's
    usual = effect.remove(values, promoted)
    assert usual == pytest.approx(np.full((1, 56), 10.0))
    panel = to_panel(pd.DataFrame({"item_id": "A", "quantity": usual[0],
                                   "date": pd.date_range("2024-01-01", periods=56)}), freq="D")
    made = forecast_panel(panel, 4, season_length=1)
    base_mean, base_sd = made.demand_over(np.array([4.0]))
    ahead = np.array([[True, False, True, False]])
    mean, sd = effect.demand_over(made, np.array([4.0]), ahead)
    assert base_mean == pytest.approx([40.0], rel=1e-3)
    assert mean == pytest.approx(base_mean * 2.0)          # (30 + 10 + 30 + 10) / 40
    assert sd == pytest.approx(base_sd * 2.0)
    assert effect.periods_ahead(made, np.array([3.0]), ahead).tolist() == [2]
    short, _ = effect.demand_over(made, np.array([2.0]), ahead[:, :1])   # calendar ends: none
    assert short == pytest.approx(base_mean / 2 * 2.0)       # (30 + 10) / 20


def test_extra_units_are_added_per_period_ahead_and_the_spread_is_kept():
    promoted = np.zeros((1, 40), dtype=bool)
    promoted[0, ::5] = True
    values = np.where(promoted, 25.0, 5.0)
    effect = PromotionEffect.learnt(values, promoted, kind="extra")
    assert effect.size == pytest.approx([20.0])
    assert effect.remove(values, promoted) == pytest.approx(np.full((1, 40), 5.0))
    panel = to_panel(pd.DataFrame({"item_id": "A", "quantity": 5.0,
                                   "date": pd.date_range("2024-01-01", periods=40)}), freq="D")
    made = forecast_panel(panel, 3, season_length=1)
    base_mean, base_sd = made.demand_over(np.array([3.0]))
    mean, sd = effect.demand_over(made, np.array([3.0]), np.array([[True, True, False]]))
    assert mean == pytest.approx(base_mean + 40.0) and sd == pytest.approx(base_sd)


def test_an_unknown_effect_names_the_setting():
    with pytest.raises(ConfigError, match="lift or extra") as raised:
        PromotionEffect.learnt(np.zeros((1, 3)), np.zeros((1, 3), dtype=bool), kind="double")
    assert raised.value.field == "promotion_effect"


def test_only_the_items_the_calendar_puts_on_promotion_pool_their_promotions():
    promoted = np.zeros((2, 40), dtype=bool)
    promoted[0, ::10] = True                                   # a busy item, 4 promotions
    values = np.vstack([np.where(promoted[0], 300.0, 100.0), np.full(40, 1.0)])
    everyone = PromotionEffect.learnt(values, promoted)
    pooled = on_the_calendar(promoted)
    assert pooled.tolist() == [True, False]
    listed = PromotionEffect.learnt(values, promoted, pooled=pooled)
    assert everyone.size[0] > 4.0        # the slow item's usual level drags the pool's down
    assert listed.size == pytest.approx([3.0, 1.0])
    extra = PromotionEffect.learnt(values, promoted, "extra", pooled=pooled)
    assert extra.size == pytest.approx([200.0, 0.0])
