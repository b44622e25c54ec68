"""Catalogue-wide order-up-to levels: buffers, normal and gamma shapes, whole units, quantities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from restock.policy import discrete_level, normal_loss, stock_levels, whole_packs
from restock.policy.levels import discrete_levels, gamma_levels, gamma_loss


def test_each_item_gets_its_own_buffer_kind():
    levels = stock_levels([10, 10, 10, 10], [4, 4, 4, 4], 5, 2,
                          service_level=[0.95, 0.95, 0.9, 0.95],
                          fill_rate=[False, False, False, True],
                          buffer_units=[25, np.nan, np.nan, np.nan],
                          cover_periods=[np.nan, 3, np.nan, np.nan])
    sigma = 4 * np.sqrt(7)
    assert list(levels.method) == ["units", "days_of_cover", "normal", "normal"]
    assert levels.safety_stock[:3] == pytest.approx([25, 30, stats.norm.ppf(0.9) * sigma])
    assert normal_loss(levels.order_up_to[3], 70, sigma) == pytest.approx(0.05 * 20, rel=1e-9)
    assert levels.order_up_to == pytest.approx(70 + levels.safety_stock)


def test_slow_movers_match_the_scalar_discrete_level():
    mean = np.array([0.4, 3.0, 8.0, 15.0])
    variance = np.array([0.4, 3.0, 40.0, 200.0])
    for fill in (False, True):
        fast, kinds = discrete_levels(mean, variance, np.full(4, 0.95), np.full(4, fill),
                                      mean / 3)
        slow = discrete_level(mean, variance, **({"fill_rate": 0.95, "cycle_demand": mean / 3}
                                                 if fill else {"cycle_service": 0.95}))
        assert list(fast) == list(slow)
    assert list(kinds) == ["poisson", "poisson", "negative_binomial", "negative_binomial"]


def test_gamma_levels_are_gamma_quantiles_or_meet_the_fill_rate():
    mean, variance = np.array([10.0, 100.0, 50.0]), np.array([400.0, 900.0, 0.0])
    shape, scale = mean[:2] ** 2 / variance[:2], variance[:2] / mean[:2]
    cycle = gamma_levels(mean, variance, 0.95, False, 5.0)
    assert cycle[:2] == pytest.approx(stats.gamma.ppf(0.95, shape, scale=scale))
    assert cycle[2] == 50.0   # no spread: exactly the mean
    fill = gamma_levels(mean, variance, 0.95, True, np.array([5.0, 50.0, 1.0]))
    assert gamma_loss(fill[:2], shape, scale) == pytest.approx([0.25, 2.5], rel=1e-9)


def test_gamma_loss_matches_numeric_expectation():
    for shape, scale, x in ((0.25, 40.0, 107.2), (3.0, 2.0, 5.0)):
        expected = stats.gamma(shape, scale=scale).expect(lambda d, x=x: d - x, lb=x)
        assert gamma_loss(x, shape, scale) == pytest.approx(expected, rel=1e-7)


def test_gamma_shape_applies_to_service_buffers_only():
    levels = stock_levels([5, 5], [3, 3], 4, 1, service_level=0.95,
                          buffer_units=[np.nan, 7.0], distribution="gamma", discrete=False)
    assert list(levels.method) == ["gamma", "units"] and levels.safety_stock[1] == 7.0


def test_whole_packs_round_up_and_keep_zero():
    assert list(whole_packs([0, 1, 120, 121, 239.9999999999], 120)) == [0, 120, 120, 240, 240]


def test_pooled_fill_rate_meets_the_aggregate_at_less_stock_value_than_one_factor():
    from restock.policy import pooled_fill_z, standard_normal_loss

    sd = np.array([5.0, 5.0, 20.0, 8.0])
    cycle = np.array([20.0, 20.0, 60.0, 30.0])
    cost = np.array([1.0, 50.0, 5.0, 0.0])
    z = pooled_fill_z(0.95, sd, cycle, cost)
    short = (sd * standard_normal_loss(z)).sum()
    assert short == pytest.approx(0.05 * cycle.sum(), rel=1e-6)
    assert z[0] > z[2] > z[1] >= 0.0 and z[3] == pytest.approx(stats.norm.ppf(0.9999))
    # One factor for all items with the same units short costs more.
    from scipy.optimize import brentq

    uniform = brentq(lambda k: (sd * standard_normal_loss(k)).sum() - short, -5, 10)
    assert (cost * sd * z).sum() < (cost * sd * uniform).sum()


def test_pooled_cycle_service_counts_an_item_once_per_order():
    from restock.policy import pooled_cycle_z

    sd, cost, orders = np.array([4.0, 4.0]), np.array([1.0, 1.0]), np.array([1.0, 5.0])
    z = pooled_cycle_z(0.95, sd, cost, orders)
    service = 1 - stats.norm.sf(z) / orders
    assert service.mean() == pytest.approx(0.95, abs=1e-9)
    assert z[1] < z[0]   # the item exposed once in five cycles needs less
