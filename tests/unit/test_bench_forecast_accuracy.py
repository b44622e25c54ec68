"""The accuracy benchmark's held-out windows and its rolling comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bench import forecast_accuracy as accuracy

from restock.forecast import Panel, forecast_panel
from restock.forecast.quantiles import demand_quantiles


def _monthly(n: int = 12, months: int = 60, seed: int = 3) -> Panel:
    rng = np.random.default_rng(seed)
    values = rng.poisson(rng.uniform(0.5, 8.0, n)[:, None], (n, months)).astype(float)
    values[0, :40] = np.nan          # starts late: no history before the oldest window's cut
    return Panel(ids=np.array([f"s{i}" for i in range(n)]),
                 dates=pd.date_range("2020-01-01", periods=months, freq="MS"), values=values,
                 freq="M")


def test_window_k_holds_out_the_h_periods_ending_k_h_before_the_end() -> None:
    whole = _monthly()
    h = accuracy.SETS["carparts"][2]
    panel, actual, _ = accuracy.split("carparts", 1, whole)
    assert panel.values.shape[1] == 60 - 2 * h and len(panel.dates) == 60 - 2 * h
    assert panel.dates[-1] == whole.dates[60 - 2 * h - 1]
    # the series with nothing before the cut is left out, with its actuals
    assert list(panel.ids) == list(whole.ids[1:])
    np.testing.assert_array_equal(actual, whole.values[1:, 60 - 2 * h:60 - h])
    latest, latest_actual, _ = accuracy.split("carparts", 0, whole)
    assert latest.values.shape[1] == 60 - h and len(latest.ids) == 12
    np.testing.assert_array_equal(latest_actual[0], np.nan_to_num(whole.values[0, -h:]))


def test_rolling_scores_every_window_against_the_peers(monkeypatch) -> None:
    whole = _monthly()
    h = accuracy.SETS["carparts"][2]

    def peers(panel, name, with_ets):
        assert not with_ets                       # AutoETS is not refitted per window
        same = forecast_panel(panel, h, calibrate=False).point
        return {"Same": (same, 0.0), "Zero": (np.zeros_like(same), 0.0)}

    monkeypatch.setattr(accuracy, "statsforecast_points", peers)
    out = accuracy.run_rolling("carparts", whole, 2)
    assert out["windows"] == 2 and out["series_windows"] == 11 + 12
    # the peer that forecasts what restock does is the best one here, and ties it exactly
    for measure in ("mase", "rmsse"):
        row = out[f"restock_minus_best_{measure}"]
        assert row == {"best": "Same", "mean": 0.0, "standard_error": 0.0}
    assert out["mean"]["Same"] == out["mean"]["restock"]
    # the zero forecast's MASE and restock's quantiles, worked out here from the windows
    expected, covered, losses = [], {"restock": [], "model_alone": []}, []
    levels = np.array(accuracy.QUANTILES)
    for window in (0, 1):
        panel, actual, scale = accuracy.split("carparts", window, whole)
        expected.append(np.abs(actual).mean(axis=1) / scale[0])
        result = forecast_panel(panel, h, calibrate=False)
        total = actual.sum(axis=1)[:, None]
        quantiles = result.demand_quantiles(float(h), accuracy.QUANTILES)
        covered["restock"].append(total <= quantiles + 1e-9)
        losses.append(np.where(total > quantiles, levels * (total - quantiles),
                               (1 - levels) * (quantiles - total)) / (scale[0][:, None] * h))
        mean, sd = result.demand_over(float(h))      # the model's distribution alone
        alone = demand_quantiles(mean, sd ** 2, accuracy.QUANTILES, result.counts)
        covered["model_alone"].append(total <= alone + 1e-9)
    assert out["mean"]["Zero"]["mase"] == pytest.approx(np.concatenate(expected).mean(),
                                                        abs=1e-4)
    judged = out["quantiles_total_not_dead"]
    for rule, hits in covered.items():
        assert judged[rule]["coverage"] == pytest.approx(np.concatenate(hits).mean(axis=0),
                                                         abs=1e-3)
    assert judged["restock"]["scaled_pinball"] == pytest.approx(
        np.concatenate(losses).mean(axis=0), abs=1e-4)
    assert judged["restock"]["scaled_pinball"] != judged["model_alone"]["scaled_pinball"]


def test_rolling_without_statsforecast_says_so(monkeypatch) -> None:
    monkeypatch.setattr(accuracy, "statsforecast_points", lambda *a, **k: None)
    out = accuracy.run_rolling("carparts", _monthly(), 1)
    assert set(out["mean"]) == {"restock"} and "not installed" in out["skipped"]
