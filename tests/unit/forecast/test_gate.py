"""On daily data a regular series leaves the steadiest level only on clear backtest evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.forecast import Panel, fast, forecast_panel, select
from restock.forecast.select import Backtest, candidates, choose


def _wandering(n: int = 200, t: int = 400, step: float = 0.2, seed: int = 11) -> np.ndarray:
    """A level that wanders slowly under daily noise: the SES alphas fit it about equally."""
    rng = np.random.default_rng(seed)
    level = 20 + np.cumsum(rng.normal(0, step, (n, t)), axis=1)
    return rng.poisson(np.maximum(level, 1.0)).astype(float)


def _choose(y: np.ndarray, *, daily: bool = True, criterion: str = "rmsse", start=None,
            plan: Backtest | None = None, season: int = 7):
    start = np.zeros(len(y), dtype=np.int64) if start is None else start
    plan = plan or Backtest.plan(y.shape[1], 28)
    pool = candidates(y, start, None, plan, sporadic=False, season=season, daily=daily)
    return choose(y, start, plan, pool, plan.horizon, criterion=criterion)


def _steady(choice) -> np.ndarray:
    return np.array([m == "SES" and p == {"alpha": select.DAILY_DEFAULT_ALPHA}
                     for m, p in zip(choice.model, choice.params, strict=True)])


@pytest.mark.parametrize("criterion", ["rmsse", "both"])
def test_near_equal_candidates_keep_the_steady_level(monkeypatch, criterion: str) -> None:
    y = _wandering()
    gated = _steady(_choose(y, criterion=criterion)).mean()
    monkeypatch.setattr(select, "GATE_STANDARD_ERRORS", 0.0)   # the free choice, for contrast
    free = _steady(_choose(y, criterion=criterion)).mean()
    assert gated >= 0.95
    assert free <= 0.75          # without the gate the windows' noise picks the others often


def test_a_series_leaves_the_default_exactly_when_its_gain_is_clear() -> None:
    y = _wandering(n=300, step=0.4, seed=3)
    start = np.zeros(len(y), dtype=np.int64)
    plan = Backtest.plan(y.shape[1], 28)
    pool = candidates(y, start, None, plan, sporadic=False, season=7, daily=True)
    choice = choose(y, start, plan, pool, 28)
    # the rule, worked out here from each candidate's windows
    actual = np.stack([y[:, e:e + plan.horizon] for e in plan.ends], axis=1)
    scale = select.scales(y, start)[1][:, None]
    msse = np.stack([((c.paths(plan.horizon, ends=slice(0, len(plan.ends))) - actual) ** 2)
                     .mean(axis=2) / scale for c in pool], axis=1)      # (n, candidates, origins)
    best = msse.mean(axis=2).argmin(axis=1)
    default = next(i for i, c in enumerate(pool) if c.default)
    diff = msse[np.arange(len(y)), default] - msse[np.arange(len(y)), best]
    clear = diff.mean(axis=1) > select.GATE_STANDARD_ERRORS * \
        diff.std(axis=1, ddof=1) / np.sqrt(diff.shape[1])
    expected = np.where(clear, best, default)
    keys = [select.model_key(pool[i].name, pool[i].params) for i in expected]
    assert [select.model_key(m, p) for m, p in zip(choice.model, choice.params,
                                                   strict=True)] == keys
    assert 0 < (expected != default).sum() < len(y)    # both outcomes occur here


def test_a_clear_weekly_season_and_a_clear_trend_still_win() -> None:
    rng = np.random.default_rng(4)
    t = 400
    week = np.tile([0.2, 0.6, 1.0, 1.0, 1.2, 1.6, 1.4], t // 7 + 1)[:t]
    seasonal = rng.poisson(20 * week, (50, t)).astype(float)
    trend = rng.poisson(np.linspace(5, 300, t), (50, t)).astype(float)
    choice = _choose(np.vstack([seasonal, trend]))
    assert all(m.startswith("Seasonal") for m in choice.model[:50])
    assert not _steady(choice)[50:].any()


def test_weekly_and_monthly_data_keep_the_free_choice(monkeypatch) -> None:
    y = _wandering(n=60, t=200)
    dates = pd.date_range("2020-01-06", periods=200, freq="W-MON")
    panel = Panel(ids=np.array([f"s{i}" for i in range(60)]), dates=dates, values=y, freq="W")
    gated = forecast_panel(panel, 12, calibrate=False)
    monkeypatch.setattr(select, "GATE_STANDARD_ERRORS", 0.0)
    free = forecast_panel(panel, 12, calibrate=False)
    assert list(gated.model) == list(free.model) and gated.params == free.params
    pool = candidates(y, np.zeros(60, dtype=np.int64), None, Backtest.plan(200, 12),
                      sporadic=False, season=1)
    assert not any(c.default for c in pool)


def test_only_the_regular_group_has_a_default() -> None:
    y = _wandering(n=20)
    start = np.zeros(len(y), dtype=np.int64)
    plan = Backtest.plan(y.shape[1], 28)
    regular = candidates(y, start, None, plan, sporadic=False, season=7, daily=True)
    sporadic = candidates(y, start, fast.nonzero(y, start), plan.sparse(), sporadic=True,
                          season=7, daily=True)
    assert [(c.name, c.params) for c in regular if c.default] == \
        [("SES", {"alpha": select.DAILY_DEFAULT_ALPHA})]
    assert not any(c.default for c in sporadic)


def test_a_series_with_one_scored_window_keeps_the_default() -> None:
    # History for the last backtest window only: one window is no evidence either way.
    y = _wandering(n=30, t=70, seed=2)
    start = np.zeros(len(y), dtype=np.int64)
    start[:10] = 52
    plan = Backtest.plan(y.shape[1], 10, origins=3)
    choice = _choose(y, start=start, plan=plan, season=1)
    assert (choice.origins[:10] == 1).all() and (choice.origins[10:] == 3).all()
    assert _steady(choice)[:10].all()
