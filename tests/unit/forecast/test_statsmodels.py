"""ETS / Theta / ARIMA compete with the fast choice on long regular series, within a budget."""

from __future__ import annotations

import json
from functools import cache
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from restock.forecast import Panel, forecast_panel
from restock.forecast.models import _adopt, _past_gate, fit_series
from restock.forecast.select import model_key
from tests.unit.forecast.test_families import _ses_loop


def _seasonal(n: int, t: int = 160, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    week = np.array([1, 1.2, 1.1, 1, 1.4, 2.2, 0.2])
    level = 20 * np.tile(week, t // 7 + 1)[:t] * (1 + 0.004 * np.arange(t))
    return np.stack([rng.poisson(level).astype(float) for _ in range(n)])


def test_each_model_is_scored_on_the_backtest_origins() -> None:
    series = _seasonal(1)[0]
    fitted = fit_series(series, [132, 125, 118], 14, 21, 7)
    assert set(fitted) == {"ETS", "Theta", "ARIMA"}
    for out in fitted.values():
        assert out["point"].shape == (21,) and np.isfinite(out["point"]).all()
        assert out["origins"] == 3 and out["mse"] > 0 and out["mae"] > 0
        json.dumps(out["params"])


def test_too_short_for_any_origin_competes_with_nothing() -> None:
    assert fit_series(np.arange(10.0), [3], 3, 3, 7) == {}


@pytest.mark.slow
def test_slow_models_replace_the_fast_choice_only_where_they_backtest_better() -> None:
    values = _seasonal(2)
    panel = Panel(ids=np.array(["a", "b"]), dates=pd.date_range("2024-01-01", periods=160),
                  values=values, freq="D")
    fast_only = forecast_panel(panel, 14)
    both = forecast_panel(panel, 14, time_budget_seconds=120)
    report = both.info["statsmodels"]
    assert report["eligible"] == 2 and report["fitted"] == 2
    assert (both.point >= 0).all() and np.isfinite(both.point).all()
    for i in range(2):
        if both.model[i] in ("ETS", "Theta", "ARIMA"):
            assert both.rmsse[i] < fast_only.rmsse[i]
        else:
            np.testing.assert_allclose(both.point[i], fast_only.point[i])


SES = ("SES", {"alpha": 0.2})


def _held_fast(score: float) -> SimpleNamespace:
    """One series whose fast choice is SES(0.2) with backtest RMSSE ``score``."""
    return SimpleNamespace(point=np.ones((1, 21)), model=np.array([SES[0]], dtype=object),
                           params=[dict(SES[1])], mase=np.array([score]),
                           rmsse=np.array([score]), sigma=np.ones(1), confidence=np.ones(1),
                           chosen_by=np.array(["backtest"], dtype=object))


def _fitted(scores: dict[str, float]) -> dict:
    """``fit_series``' output for a real fit, its errors set so each model's RMSSE is given."""
    return {name: {**_real_fit()[name], "mse": score ** 2, "mae": score}
            for name, score in scores.items()}


@cache
def _real_fit() -> dict:
    return fit_series(_seasonal(1)[0], [132, 125, 118], 14, 21, 7)


@pytest.mark.parametrize(("previous", "scores", "fast", "kept", "by"), [
    ("ETS", {"ETS": 1.0, "Theta": 0.95, "ARIMA": 2.0}, 0.97, "ETS", "previous"),  # in the margin
    ("ETS", {"ETS": 1.0, "Theta": 0.85, "ARIMA": 2.0}, 0.97, "Theta", "backtest"),  # beaten
    ("ETS", {"ETS": 1.0, "Theta": 1.2, "ARIMA": 2.0}, 0.85, "SES", "backtest"),  # by the fast
    ("ARIMA", {"ETS": 1.0, "Theta": 0.95, "ARIMA": 1.04}, 0.97, "ARIMA", "previous"),
    ("ETS", {"ETS": 0.9, "Theta": 0.95, "ARIMA": 2.0}, 0.97, "ETS", "backtest"),  # still best
    (None, {"ETS": 1.0, "Theta": 0.95, "ARIMA": 2.0}, 0.97, "Theta", "backtest"),  # best wins
    ("ETS", {"Theta": 0.95, "ARIMA": 2.0}, 0.97, "Theta", "backtest"),  # ETS failed to fit
])
def test_a_previous_statsmodels_model_stays_within_the_margin(previous, scores, fast,
                                                                 kept, by) -> None:
    result = _held_fast(fast)
    fitted = _fitted(scores)
    key = None if previous is None else model_key(previous, {"seasonal": True})
    assert _adopt(result, 0, fitted, 1.0, 1.0, "rmsse", key) == (kept != "SES")
    assert result.model[0] == kept and result.chosen_by[0] == by
    if kept != "SES":
        assert result.rmsse[0] == pytest.approx(scores[kept])
        np.testing.assert_allclose(result.point[0], np.maximum(fitted[kept]["point"], 0.0))


@pytest.mark.parametrize(("previous", "theta", "kept", "by"), [
    (model_key(*SES), 0.95, "SES", "previous"),          # better by less than the margin
    (model_key(*SES), 1.05, "SES", "backtest"),          # not better at all
    (model_key(*SES), 0.85, "Theta", "backtest"),        # better by more
    (model_key("SES", {"alpha": 0.1}), 0.95, "Theta", "backtest"),  # not what it holds now
])
def test_a_fast_incumbent_gives_way_only_beyond_the_margin(previous, theta, kept, by) -> None:
    result = _held_fast(1.0)
    _adopt(result, 0, _fitted({"ETS": 1.2, "Theta": theta}), 1.0, 1.0, "rmsse", previous)
    assert result.model[0] == kept and result.chosen_by[0] == by


@pytest.mark.slow
def test_forecast_panel_keeps_the_previous_model_through_the_slow_pass() -> None:
    # Third seed-1 series: ETS backtests best, Theta 4% behind it, the fast SeasonalIndex 6.5%.
    panel = Panel(ids=np.array(["a"]), dates=pd.date_range("2024-01-01", periods=160),
                  values=_seasonal(3)[2:], freq="D")
    fresh = forecast_panel(panel, 14, time_budget_seconds=120)
    fast_only = forecast_panel(panel, 14)
    assert fresh.model[0] == "ETS" and fast_only.model[0] not in ("ETS", "Theta", "ARIMA")
    theta = forecast_panel(panel, 14, time_budget_seconds=120,
                           previous={"a": model_key("Theta", {"theta": 2.0})})
    assert theta.model[0] == "Theta" and theta.rmsse[0] > fresh.rmsse[0]
    held = model_key(fast_only.model[0], fast_only.params[0])
    fast = forecast_panel(panel, 14, time_budget_seconds=120, previous={"a": held})
    assert fast.model[0] == fast_only.model[0]
    np.testing.assert_allclose(fast.point[0], fast_only.point[0])


def _steady_scores(series: np.ndarray, ends: list[int], h: int) -> np.ndarray:
    """SES(0.05)'s mean squared error at each origin, by the recursion itself."""
    return np.array([float(((_ses_loop(series[:end], 0.05) - series[end:end + h]) ** 2).mean())
                     for end in ends])


def test_on_daily_data_a_slow_model_must_be_clearly_better_than_the_steady_level() -> None:
    series = _seasonal(1)[0]
    steady = _steady_scores(series, [132, 125, 118], 14)
    base = _real_fit()["ETS"]
    fitted = {   # per-origin squared errors set against the steady level's
        "ETS": {**base, "mse_origins": list(steady * 0.5)},             # better at every origin
        "Theta": {**base, "mse_origins": list(steady * [0.1, 1.6, 0.2])},  # on average only
        "ARIMA": {**base, "mse_origins": list(steady * 1.1)},           # worse
    }
    kept, out = _past_gate(fitted, series, 14, (1.0, 1.0), "auto", None)
    assert set(kept) == {"ETS"} and out == 1
    # the rule: mean difference above two standard errors of the differences
    for name, fit in fitted.items():
        diff = steady - np.array(fit["mse_origins"])
        clear = diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(len(diff))
        assert clear == (name in kept)
    # a previous slow model that sticks is not asked again; the scale does not change the order
    kept, _ = _past_gate(fitted, series, 14, (3.0, 7.0), "rmsse", model_key("Theta", {}))
    assert set(kept) == {"ETS", "Theta"}
    assert _past_gate({"ETS": fitted["ETS"]}, series, 14, (1.0, 1.0), "auto", None)[1] == 0


@pytest.mark.slow
def test_the_slow_pass_on_daily_data_keeps_out_what_is_not_clearly_better() -> None:
    # Flat daily demand: a slow model may backtest a little better than the fast choice, never
    # clearly better than the steady level at every origin; weekly data has no such gate.
    rng = np.random.default_rng(4)
    values = rng.poisson(20, (6, 160)).astype(float)
    for freq in ("D", "W"):
        panel = Panel(ids=np.array(list("abcdef")), values=values, freq=freq,
                      dates=pd.date_range("2024-01-01", periods=160, freq=freq))
        fast_only = forecast_panel(panel, 14)
        both = forecast_panel(panel, 14, time_budget_seconds=120)
        report = both.info["statsmodels"]
        assert report["fitted"] == 6
        assert ("not_clearly_better" in report) == (freq == "D")
        slow = np.isin(both.model, ("ETS", "Theta", "ARIMA"))
        assert (both.rmsse[slow] < fast_only.rmsse[slow]).all()
        np.testing.assert_allclose(both.point[~slow], fast_only.point[~slow])
