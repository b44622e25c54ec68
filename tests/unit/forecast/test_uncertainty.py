"""Noise in choosing and reporting: the demand's own, non-collapsing tails, season indices,
sporadic backtest windows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import special, stats

from restock.forecast import Panel, fast, forecast_panel
from restock.forecast.classify import classify
from restock.forecast.quantiles import HISTORY_WEIGHT, demand_quantiles, with_history
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


def _on_and_off(seed: int, n: int = 400, t: int = 160) -> np.ndarray:
    """Weekly series that switch between selling (1.5 a week) and near silence (0.02), staying
    about 15 weeks in one and 25 in the other: parts that go quiet and come back."""
    rng = np.random.default_rng(seed)
    selling = rng.random(n) < 0.5
    busy = np.empty((n, t), dtype=bool)
    for week in range(t):
        selling ^= rng.random(n) < np.where(selling, 1 / 15, 1 / 25)
        busy[:, week] = selling
    return rng.poisson(np.where(busy, 1.5, 0.02)).astype(float)


def test_quantiles_of_series_that_go_quiet_and_come_back_cover_the_revival() -> None:
    y, h, qs = _on_and_off(seed=2), 12, np.array([0.5, 0.9, 0.95])
    panel = Panel(ids=np.array([f"part{i}" for i in range(len(y))]), values=y[:, :-h],
                  dates=pd.date_range("2022-01-03", periods=y.shape[1] - h, freq="W-MON"),
                  freq="W")
    mixed = forecast_panel(panel, h, calibrate=False)
    model_only = dataclasses.replace(mixed, history_mean=np.zeros(0), history_var=np.zeros(0))
    held_out = y[:, -h:].sum(axis=1)
    covered, loss = {}, {}
    for name, result in (("mixed", mixed), ("model", model_only)):
        q = result.demand_quantiles(float(h), qs)
        covered[name] = (held_out[:, None] <= q).mean(axis=0)
        miss = held_out[:, None] - q
        loss[name] = np.maximum(qs * miss, (qs - 1) * miss).mean(axis=0)    # pinball
    assert covered["model"][2] < 0.87                     # the model alone misses revivals
    assert covered["mixed"][2] >= covered["model"][2] + 0.04
    assert abs(covered["mixed"][1] - 0.9) < abs(covered["model"][1] - 0.9)
    assert (loss["mixed"][1:] < 0.9 * loss["model"][1:]).all()
    assert loss["mixed"][0] <= loss["model"][0] * 1.02


def test_the_mixture_has_the_mean_and_variance_of_its_two_parts() -> None:
    # the model's demand: 2, 4 or 9 equally likely; the history's over 3 periods: the sum of 3
    # independent periods of 0 or 5 (each with chance 1/2)
    model = np.array([2.0, 4.0, 9.0])
    one = np.array([0.0, 5.0])
    three = (one[:, None, None] + one[None, :, None] + one[None, None, :]).ravel()
    values = np.concatenate([model, three])
    weights = np.concatenate([np.full(3, (1 - HISTORY_WEIGHT) / 3),
                              np.full(8, HISTORY_WEIGHT / 8)])
    expected_mean = np.average(values, weights=weights)
    expected_var = np.average((values - expected_mean) ** 2, weights=weights)
    mean, var = with_history(np.array([model.mean()]), np.array([model.var()]), 3.0,
                             np.array([one.mean()]), np.array([one.var()]))
    np.testing.assert_allclose([mean[0], var[0]], [expected_mean, expected_var])


def test_the_history_is_the_observed_periods_mean_and_variance() -> None:
    late = np.concatenate([np.full(30, np.nan), np.tile([0.0, 4.0, 1.0], 20)])
    early = np.tile([2.0, 0.0, 0.0, 7.0], 23)[:90]
    never = np.full(90, np.nan)
    y, start = fast.backfill(np.vstack([late, early, never]))
    classes = classify(y, start)
    for row, series in enumerate((late, early)):
        seen = series[~np.isnan(series)]
        np.testing.assert_allclose([classes.history_mean[row], classes.history_var[row]],
                                   [seen.mean(), seen.var()])
    assert classes.history_mean[2] == classes.history_var[2] == 0.0


def test_one_period_quantiles_agree_and_a_forecast_without_history_keeps_its_own() -> None:
    rng = np.random.default_rng(5)
    rows = np.vstack([rng.poisson(4, 200), (rng.random(200) < 0.2) * 6.0]).astype(float)
    panel = Panel(ids=np.array(["steady", "sporadic"]), values=rows,
                  dates=pd.date_range("2024-01-01", periods=200, freq="D"))
    result = forecast_panel(panel, 7, season_length=1, calibrate=False)
    qs = [0.5, 0.9, 0.95]
    flat = (result.point == result.point[:, :1]).all(axis=1)
    np.testing.assert_array_equal(result.step_quantiles(qs)[flat, 0],
                                  result.demand_quantiles(1.0, qs)[flat])
    bare = dataclasses.replace(result, history_mean=np.zeros(0), history_var=np.zeros(0))
    mean, sd = bare.demand_over(7.0)
    np.testing.assert_array_equal(bare.demand_quantiles(7.0, qs),
                                  demand_quantiles(mean, sd ** 2, qs, bare.counts))


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
