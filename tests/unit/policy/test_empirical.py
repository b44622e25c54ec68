"""Levels read from past forecast errors (restock.policy.empirical)."""

from __future__ import annotations

import numpy as np
import pytest

from restock.policy.empirical import ErrorPool, error_levels, pooled_error_levels


def test_cycle_level_is_the_quantile_of_the_pooled_errors():
    errors = np.tile(np.arange(1.0, 101.0)[:, None], (1, 2))   # 1..100 for both items
    level = error_levels(errors, np.array([10.0, 50.0]), np.array([1.0, 2.0]), 0.9,
                         tail_prior=np.inf)
    assert level == pytest.approx([10.0 + 90.0, 50.0 + 2 * 90.0], abs=1e-6)


def test_an_item_with_enough_tail_follows_its_own_errors():
    rng = np.random.default_rng(3)
    wide = rng.normal(0, 3.0, 2000)
    narrow = rng.normal(0, 0.5, 2000)
    errors = np.column_stack([wide, narrow])
    mean, sd = np.zeros(2), np.ones(2)
    own = error_levels(errors, mean, sd, 0.9, tail_prior=2.0)
    pooled = error_levels(errors, mean, sd, 0.9, tail_prior=np.inf)
    assert own[0] == pytest.approx(np.quantile(wide, 0.9), abs=0.1)
    assert own[1] == pytest.approx(np.quantile(narrow, 0.9), abs=0.1)
    assert pooled[0] == pytest.approx(pooled[1])


def test_missing_errors_are_ignored_and_no_errors_means_the_mean():
    errors = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan], [4.0, np.nan]])
    level = error_levels(errors, np.array([5.0, 7.0]), np.array([1.0, 1.0]), 0.75,
                         tail_prior=np.inf)
    assert level == pytest.approx([8.0, 10.0], abs=1e-6)
    empty = error_levels(np.full((3, 2), np.nan), np.array([5.0, 7.0]), np.ones(2), 0.9)
    assert list(empty) == [5.0, 7.0]


def test_fill_rate_level_meets_the_expected_shortage_per_cycle():
    errors = np.linspace(-2.0, 2.0, 401)[:, None]
    mean, sd, cycle = np.array([100.0]), np.array([10.0]), np.array([50.0])
    level = error_levels(errors, mean, sd, 0.98, fill_rate=True, cycle_demand=cycle,
                         tail_prior=np.inf)
    k = (level[0] - mean[0]) / sd[0]
    shortage = sd[0] * np.maximum(errors[:, 0] - k, 0).mean()
    assert shortage == pytest.approx(0.02 * cycle[0], rel=1e-3)
    assert error_levels(errors, mean, sd, 0.9, fill_rate=True, cycle_demand=cycle,
                        tail_prior=np.inf)[0] < level[0]


def test_the_pooled_quantile_is_the_least_error_covering_the_level_and_matches_the_search():
    errors = np.array([[4.0, np.nan], [1.0, 3.0], [2.0, np.nan], [5.0, np.nan]])  # pool 1..5
    mean, scale = np.array([10.0, 20.0]), np.array([2.0, 3.0])
    # 0.6 of 5 errors: the 3rd (3.0); 0.61 needs a 4th (4.0); an item's own level broadcasts
    assert pooled_error_levels(errors, mean, scale, 0.6).tolist() == [16.0, 29.0]
    assert pooled_error_levels(errors, mean, scale, np.array([0.61, 0.2])).tolist() == \
        [18.0, 23.0]
    assert pooled_error_levels(errors, mean, np.array([0.0, -1.0]), 0.9).tolist() == [10.0, 20.0]
    rng = np.random.default_rng(5)
    many = rng.standard_t(3, size=(60, 40))
    many[rng.random(many.shape) < 0.3] = np.nan
    mean, scale = rng.random(40) * 9, rng.random(40) * 3
    for level in (0.5, 0.9, 0.95, np.linspace(0.5, 0.99, 40)):
        assert pooled_error_levels(many, mean, scale, level) == pytest.approx(
            error_levels(many, mean, scale, level, tail_prior=np.inf), abs=1e-9)
    assert list(pooled_error_levels(np.full((2, 2), np.nan), mean[:2], scale[:2], 0.9)) == \
        list(mean[:2])


def test_the_pools_risk_and_expected_shortage_are_its_tail_share_and_its_mean_excess():
    rng = np.random.default_rng(6)
    errors = rng.standard_t(3, 500)
    pool = ErrorPool(np.append(errors, [np.nan, -np.inf]))
    assert len(pool) == 500
    k = np.array([-50.0, -1.3, 0.0, errors[7], 2.5, 60.0])
    assert pool.exceeds(k) == pytest.approx([(errors > x).mean() for x in k], abs=1e-12)
    assert pool.loss(k) == pytest.approx([np.maximum(errors - x, 0).mean() for x in k],
                                         abs=1e-9)
    assert pool.loss(60.0) == 0.0 and pool.exceeds(-50.0) == 1.0
