"""ETS / Theta / ARIMA compete with the fast choice on long regular series, within a budget."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from restock.forecast import Panel, forecast_panel
from restock.forecast.models import fit_series


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
