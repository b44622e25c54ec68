"""Noise in choosing and reporting: the demand's own, non-collapsing tails, season indices,
sporadic backtest windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from restock.forecast import Panel, fast, forecast_panel
from restock.forecast.quantiles import demand_quantiles
from restock.forecast.select import Backtest, candidates, demand_noise


def test_demand_noise_is_the_variance_of_occasional_sized_demand() -> None:
    every_fourth = np.tile([0.0, 0.0, 0.0, 5.0], 25)                 # p = 1/4, size 5
    two_sizes = np.tile([2.0, 0.0, 6.0, 0.0], 25)                    # p = 1/2, sizes 2 and 6
    late = np.concatenate([np.full(40, np.nan), np.tile([0.0, 3.0], 30)])  # starts at 40
    y, start = fast.backfill(np.vstack([every_fourth, two_sizes, late]))
    rate = np.array([1.25, 2.0, 1.5])
    expected = [0.25 * 25 - 1.25 ** 2, 0.5 * (4 + 36) / 2 - 2.0 ** 2, 0.5 * 9 - 1.5 ** 2]
    np.testing.assert_allclose(demand_noise(y, start, rate), expected)
    assert demand_noise(np.zeros((1, 30)), np.zeros(1, dtype=int), np.ones(1))[0] == 0.0


def test_a_quiet_backtest_does_not_shrink_the_spread_below_the_demand_noise() -> None:
    t = 300
    sizes = np.zeros(t)
    sizes[[20, 55, 90, 120, 150, 185, 215]] = [6, 5, 7, 6, 5, 6, 7]  # nothing in the last 80
    panel = Panel(ids=np.array(["quiet"]), values=sizes[None, :],
                  dates=pd.date_range("2024-01-01", periods=t, freq="D"))
    result = forecast_panel(panel, 14, season_length=1, calibrate=False)
    rate = result.point.mean()
    assert result.demand_class[0] in ("intermittent", "lumpy") and rate > 0
    size_moment = (sizes ** 2).sum() / sizes.sum()
    assert result.sigma[0] ** 2 >= rate * size_moment - rate ** 2 - 1e-12


def test_upper_quantiles_never_fall_as_the_variance_grows() -> None:
    for counts in (False, True):
        for mean in (0.3, 2.0, 40.0):
            var = mean * np.logspace(0, 4, 300)
            q = demand_quantiles(np.full(len(var), mean), var, [0.9, 0.95], counts)
            assert (np.diff(q, axis=0) >= 0).all()
            assert q[-1, 1] > mean                                   # not piled up at zero


def test_small_forecast_with_a_wide_backtest_keeps_a_positive_safety_quantile() -> None:
    # mean 0.57 and variance 27 over a year: the matched negative binomial puts 95.5% at zero
    q = demand_quantiles(np.array([0.57]), np.array([27.0]), [0.95], True)
    assert q[0, 0] >= 2
    # where the shape is not extreme, the quantiles are the distribution's own
    mean, var = np.array([6.0]), np.array([12.0])
    gamma = demand_quantiles(mean, var, [0.5, 0.95], False)[0]
    k, theta = 36.0 / 12.0, 12.0 / 6.0
    np.testing.assert_allclose(gamma, special.gammaincinv(k, [0.5, 0.95]) * theta, rtol=2e-3)
    count = demand_quantiles(mean, var, [0.5, 0.95], True)[0]
    r, p = 36.0 / 6.0, 0.5
    np.testing.assert_array_equal(count, stats.nbinom.ppf([0.5, 0.95], r, p))


def _season_index(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The SeasonalIndex (4 seasons' level) forecast of each row as of the end, (n, 7), and
    whether the row is offered seasonal models."""
    y, start = fast.backfill(np.vstack(rows))
    plan = Backtest.plan(y.shape[1], 14)
    pool = candidates(y, start, fast.nonzero(y, start), plan, sporadic=True, season=7)
    index = next(c for c in pool if c.name == "SeasonalIndex" and c.params["level_cycles"] == 4)
    return index.paths(7)[:, -1], index.allowed


def test_season_indices_keep_a_real_season_and_drop_a_chance_one() -> None:
    t = 364
    saturday = np.arange(t) % 7 == 5
    rng = np.random.default_rng(5)
    saturdays = np.where(saturday, rng.integers(3, 6, t), 0).astype(float)
    weekly = rng.poisson(np.tile([20, 22, 21, 20, 25, 40, 5], t // 7)).astype(float)
    rng = np.random.default_rng(7)
    faint = (rng.random(t) < 0.2) * rng.integers(1, 4, t).astype(float)
    faint[saturday] += 2.0 * (rng.random(saturday.sum()) < 0.5)   # a weak Saturday lean
    paths, allowed = _season_index([saturdays, weekly, faint])
    assert allowed.all()                             # each passes the season test
    assert paths[0].max() > 0 and np.sort(paths[0])[-2] < 0.05 * paths[0].max()
    assert paths[1].max() > 5 * paths[1].min()       # a clear weekly pattern stays
    assert paths[2].max() < 1.1 * paths[2].mean()    # mostly the weekdays that happened to sell


def test_sporadic_backtest_windows_do_not_overlap_and_long_histories_get_more() -> None:
    daily = Backtest.plan(1913, 28)
    sparse = daily.sparse()
    assert sparse.horizon == daily.horizon == 28 and sparse.final == 1913
    assert np.all(np.diff(sparse.ends) == -28)                   # whole windows apart
    assert len(sparse.ends) == (1913 - 56) // 112 > len(daily.ends)
    two_years = Backtest.plan(730, 28)
    assert len(two_years.sparse().ends) == len(two_years.ends)  # the same work there
    short = Backtest.plan(39, 12)                                # three windows do not fit
    assert short.sparse() is short
