"""The vectorised families against plain one-series recursions written out longhand."""

from __future__ import annotations

import numpy as np
import pytest

from restock.forecast import fast


def _ses_loop(x: np.ndarray, alpha: float) -> float:
    level = x[0]
    for value in x[1:]:
        level = level + alpha * (value - level)
    return level


def _holt_loop(x: np.ndarray, alpha: float, beta: float, phi: float) -> tuple[float, float]:
    level, trend = x[0], 0.0
    for value in x[1:]:
        forecast = level + phi * trend
        error = value - forecast
        level, trend = forecast + alpha * error, phi * trend + alpha * beta * error
    return level, trend


@pytest.fixture
def panel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    values = rng.gamma(2.0, 3.0, (6, 30)) * (rng.random((6, 30)) < 0.6)
    values[1, :7] = np.nan                       # starts later
    values[2, :29] = np.nan                      # one observation
    y, start = fast.backfill(values)
    return values, y, start


def test_backfill_holds_the_first_value_and_zeroes_gaps() -> None:
    values = np.array([[np.nan, np.nan, 2.0, np.nan, 5.0], [np.nan] * 5])
    y, start = fast.backfill(values)
    assert start.tolist() == [2, 5]
    assert y.tolist() == [[2.0, 2.0, 2.0, 0.0, 5.0], [0.0] * 5]


@pytest.mark.parametrize("alpha", [0.02, 0.3, 0.9])
def test_ses_levels_at_every_end_match_the_recursion(panel, alpha: float) -> None:
    values, y, start = panel
    ends = [10, 22, 30]
    levels = fast.ses(y, ends, [alpha])[:, :, 0]
    for i in range(len(y)):
        for k, end in enumerate(ends):
            observed = values[i, start[i]:end]
            if len(observed):
                assert levels[i, k] == pytest.approx(_ses_loop(np.nan_to_num(observed), alpha),
                                                     rel=1e-12, abs=1e-12)


def test_holt_state_matches_the_recursion(panel) -> None:
    values, y, start = panel
    ends = [12, 30]
    weights = fast.holt_weights(y.shape[1], ends, 0.3, 0.1, 0.9)
    state = y @ weights
    for i in range(len(y)):
        for k, end in enumerate(ends):
            if end <= start[i]:
                continue
            level, trend = _holt_loop(np.nan_to_num(values[i, start[i]:end]), 0.3, 0.1, 0.9)
            assert state[i, 2 * k] == pytest.approx(level, abs=1e-10)
            assert state[i, 2 * k + 1] == pytest.approx(trend, abs=1e-10)


def test_croston_tsb_on_a_handmade_series() -> None:
    y, start = fast.backfill(np.array([[0.0, 0.0, 4.0, 0.0, 2.0]]))
    nz = fast.nonzero(y, start)
    assert nz.sizes.tolist() == [[4.0, 2.0]] and nz.intervals.tolist() == [[3.0, 2.0]]
    size, interval = 4 + 0.5 * (2 - 4), 3 + 0.5 * (2 - 3)
    assert fast.croston(nz, [5], 0.5)[0, 0] == pytest.approx(size / interval)
    assert fast.croston(nz, [5], 0.5, debias=0.95)[0, 0] == pytest.approx(0.95 * size / interval)
    # as of end 3 only the first demand is known; as of end 2 there is none
    assert fast.croston(nz, [2, 3], 0.5)[0].tolist() == [0.0, pytest.approx(4 / 3)]
    occurrence = _ses_loop(np.array([0, 0, 1, 0, 1.0]), 0.5)
    assert fast.tsb(y, nz, [5], [0.5], [0.5])[0, 0, 0, 0] == pytest.approx(occurrence * size)


def test_golden_alpha_finds_the_minimum_inside_the_bounds() -> None:
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.normal(size=(4, 60)), axis=1) + 50
    alpha = fast.golden_alpha(x, 0.1, 0.3)
    grid = np.linspace(0.1, 0.3, 2001)
    for i in range(len(x)):
        sse = [fast.ses_sse(x[i:i + 1], a)[0] for a in grid]
        assert fast.ses_sse(x[i:i + 1], alpha[i])[0] <= min(sse) + 1e-9


def test_adida_buckets_by_the_mean_interval() -> None:
    # demand every 2 periods → buckets of 2, each summing to 6 → 3 per period
    y, start = fast.backfill(np.array([[0.0, 6.0] * 10]))
    nz = fast.nonzero(y, start)
    assert fast.adida(y, start, nz, [20])[0, 0] == pytest.approx(3.0)
    level_one = _ses_loop(y[0], fast.grid_alpha(y)[0])      # aggregation level 1: the raw series
    assert fast.adida(y, start, nz, [20], imapa=True)[0, 0] == pytest.approx((level_one + 3) / 2)


def test_seasonal_naive_and_profile_repeat_the_season() -> None:
    y = np.tile(np.arange(1.0, 8.0), 4)[None, :]
    assert fast.seasonal_naive(y, [28], 7, 10)[0, 0].tolist() == \
        [1, 2, 3, 4, 5, 6, 7, 1, 2, 3]
    assert fast.seasonal_profile(y, 28, 7, 3)[0].tolist() == [1, 2, 3, 4, 5, 6, 7]
