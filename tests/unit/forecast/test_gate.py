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


def _sporadic(n: int = 300, t: int = 400, seed: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    occurs = rng.random((n, t)) < rng.uniform(0.05, 0.5, n)[:, None]
    return occurs * rng.gamma(1.5, 4.0, (n, t)).round()


@pytest.mark.parametrize("sporadic", [False, True])
def test_a_series_leaves_the_default_exactly_when_its_gain_is_clear(sporadic: bool) -> None:
    y = _sporadic() if sporadic else _wandering(n=300, step=0.4, seed=3)
    start = np.zeros(len(y), dtype=np.int64)
    plan = Backtest.plan(y.shape[1], 28)
    plan = plan.sparse() if sporadic else plan
    nz = fast.nonzero(y, start) if sporadic else None
    pool = candidates(y, start, nz, plan, sporadic=sporadic, season=7, daily=True)
    criterion = "both" if sporadic else "rmsse"
    choice = choose(y, start, plan, pool, 28, criterion=criterion)
    # the rule, worked out here from each candidate's windows
    actual = np.stack([y[:, e:e + plan.horizon] for e in plan.ends], axis=1)
    mae_scale, mse_scale = (s[:, None, None] for s in select.scales(y, start))
    errors = np.stack([c.paths(plan.horizon, ends=slice(0, len(plan.ends))) - actual
                       for c in pool], axis=1)             # (n, candidates, origins, h)
    mase, msse = np.abs(errors).mean(axis=3) / mae_scale, (errors ** 2).mean(axis=3) / mse_scale
    for c, cand in enumerate(pool):
        if cand.allowed is not None:
            mase[~cand.allowed, c] = msse[~cand.allowed, c] = np.nan
    if criterion == "rmsse":
        per_origin, whole = msse, msse.mean(axis=2)
    else:                # absolute error plus the root of the squared one
        per_origin = mase + np.sqrt(msse)
        whole = mase.mean(axis=2) + np.sqrt(msse.mean(axis=2))
    best = np.nan_to_num(whole, nan=np.inf).argmin(axis=1)
    default = next(i for i, c in enumerate(pool) if c.default)
    rows = np.arange(len(y))
    diff = per_origin[rows, default] - per_origin[rows, best]
    clear = diff.mean(axis=1) > select.GATE_STANDARD_ERRORS * \
        diff.std(axis=1, ddof=1) / np.sqrt(diff.shape[1])
    expected = np.where(clear | (best == default), best, default)
    keys = [select.model_key(pool[i].name, pool[i].params) for i in expected]
    assert [select.model_key(m, p) for m, p in zip(choice.model, choice.params,
                                                   strict=True)] == keys
    assert 0 < (expected != default).sum() < len(y)    # both outcomes occur here
    held = (expected == default) & (best != default)
    assert list(choice.chosen_by) == list(np.where(held, "steady", "backtest"))


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
    assert gated.info["kept_steady_level"] == 0
    pool = candidates(y, np.zeros(60, dtype=np.int64), None, Backtest.plan(200, 12),
                      sporadic=False, season=1)
    assert not any(c.default for c in pool)


def test_daily_groups_have_the_steady_default_and_weekly_ones_none() -> None:
    y = _wandering(n=20)
    start = np.zeros(len(y), dtype=np.int64)
    plan = Backtest.plan(y.shape[1], 28)
    nz = fast.nonzero(y, start)
    steady = [("SES", {"alpha": select.DAILY_DEFAULT_ALPHA})]
    for sporadic in (False, True):
        daily = candidates(y, start, nz, plan, sporadic=sporadic, season=7, daily=True)
        other = candidates(y, start, nz, plan, sporadic=sporadic, season=7)
        assert [(c.name, c.params) for c in daily if c.default] == steady
        assert not any(c.default for c in other)


def test_a_series_with_one_scored_window_keeps_the_default() -> None:
    # History for the last backtest window only: one window is no evidence either way.
    y = _wandering(n=30, t=70, seed=2)
    start = np.zeros(len(y), dtype=np.int64)
    start[:10] = 52
    plan = Backtest.plan(y.shape[1], 10, origins=3)
    choice = _choose(y, start=start, plan=plan, season=1)
    assert (choice.origins[:10] == 1).all() and (choice.origins[10:] == 3).all()
    assert _steady(choice)[:10].all()


def test_a_daily_run_counts_the_series_the_gate_held(monkeypatch) -> None:
    y = _wandering(n=80, t=300)
    dates = pd.date_range("2024-01-01", periods=300, freq="D")
    panel = Panel(ids=np.array([f"s{i}" for i in range(80)]), dates=dates, values=y, freq="D")
    result = forecast_panel(panel, 28, calibrate=False)
    start = np.zeros(80, dtype=np.int64)
    plan = Backtest.plan(300, 28)
    pool = candidates(y, start, None, plan, sporadic=False, season=7, daily=True)
    held = choose(y, start, plan, pool, 28).chosen_by == "steady"
    assert 0 < result.info["kept_steady_level"] == held.sum() <= _steady(result).sum()
    assert list(result.chosen_by) == list(np.where(held, "steady", "backtest"))
    monkeypatch.setattr(select, "GATE_STANDARD_ERRORS", 0.0)
    assert forecast_panel(panel, 28, calibrate=False).info["kept_steady_level"] == 0

