"""Classification, model choice, uncertainty and the PanelForecast contract the cycle uses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from restock.errors import DataError
from restock.forecast import Panel, forecast, forecast_panel, to_panel
from restock.forecast.quantiles import coverage, demand_quantiles


def _panel(rows: dict[str, np.ndarray], freq: str = "D") -> Panel:
    width = max(len(v) for v in rows.values())
    values = np.full((len(rows), width), np.nan)
    for i, series in enumerate(rows.values()):
        values[i, width - len(series):] = series
    dates = pd.date_range("2024-01-01", periods=width, freq={"D": "D", "W": "W-MON",
                                                              "M": "MS"}[freq])
    return Panel(ids=np.array(list(rows)), dates=dates, values=values, freq=freq)


def _mixed(seed: int = 1, t: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    week = np.array([1.0, 1.2, 1.1, 1.0, 1.4, 2.2, 0.2])
    return {
        "smooth": rng.poisson(20, t).astype(float),
        "erratic": rng.gamma(0.6, 30, t).round() + 1,
        "intermittent": (rng.random(t) < 0.2) * rng.poisson(5, t).clip(4, 6).astype(float),
        "lumpy": (rng.random(t) < 0.15) * rng.gamma(0.5, 40, t).round(),
        "seasonal": rng.poisson(30 * np.tile(week, t // 7 + 1)[:t]).astype(float),
        "trend": 5 + 0.5 * np.arange(t) + rng.normal(0, 1, t),
        "new": rng.poisson(3, 10).astype(float),
        "one": np.array([4.0]),
        "zeros": np.zeros(t),
        "stopped": np.concatenate([rng.poisson(3, t - 190), np.zeros(190)]).astype(float),
    }


def test_demand_classes() -> None:
    result = forecast_panel(_panel(_mixed()), 28)
    classes = dict(zip(result.ids, result.demand_class, strict=True))
    assert classes["smooth"] == "smooth" and classes["erratic"] == "erratic"
    assert classes["intermittent"] == "intermittent" and classes["lumpy"] == "lumpy"
    assert classes["new"] == "new" and classes["one"] == "too_short"
    assert classes["zeros"] == "dead" and classes["stopped"] == "dead"
    # the class alone sets the model of new, too-short and dead series; a backtest the rest
    why = dict(zip(result.ids, result.chosen_by, strict=True))
    assert {k for k, v in why.items() if v == "class"} == {"new", "one", "zeros", "stopped"}
    assert {v for k, v in why.items() if v != "class"} <= {"backtest", "steady"}


def test_choice_follows_the_data() -> None:
    result = forecast_panel(_panel(_mixed()), 14)
    model = dict(zip(result.ids, result.model, strict=True))
    point = dict(zip(result.ids, result.point, strict=True))
    assert model["seasonal"] in ("SeasonalIndex", "SeasonalNaive")
    peak, low = (5 - 200) % 7, (6 - 200) % 7         # the series' 2.2 and 0.2 days of the week
    assert point["seasonal"][peak] > 5 * point["seasonal"][low]
    assert model["trend"] == "Holt" and point["trend"][-1] > point["trend"][0]
    assert model["intermittent"] in ("Croston", "SBA", "TSB", "ADIDA", "IMAPA", "SES")
    assert model["zeros"] == "Zero" and not point["zeros"].any()
    assert model["new"] == "Mean"


def test_a_series_shorter_than_the_horizon_is_forecast_by_its_mean() -> None:
    # Ten weeks ending in a spike, forecast 20 weeks ahead: a backtest on windows of 3 weeks
    # picked a damped trend from the spike (4.8 times the mean over the 20 weeks).
    spiky = np.array([0, 13, 2, 1, 2, 6, 2, 80, 0, 382], dtype=float)
    result = forecast_panel(_panel({"part": spiky}, freq="W"), 20)
    assert result.model[0] == "Mean" and result.demand_class[0] == "new"
    assert result.point[0] == pytest.approx(np.full(20, spiky.mean()))
    shorter = forecast_panel(_panel({"part": spiky}, freq="W"), 3)
    assert shorter.model[0] != "Mean"    # three weeks ahead the backtest still chooses


def test_a_trend_is_extrapolated_at_most_half_as_far_as_its_history() -> None:
    rng = np.random.default_rng(4)
    rising = 5 + 0.8 * np.arange(60) + rng.normal(0, 1, 60)
    near = forecast_panel(_panel({"rising": rising}), 14)
    assert near.model[0] == "Holt"                    # 60 periods of history, 14 ahead
    far = forecast_panel(_panel({"rising": rising}), 40)
    assert far.model[0] != "Holt"                     # 60 < 2 x 40
    assert far.point[0].max() <= rising.max() + 3     # a level, not the trend carried 40 ahead


def test_contract_fields_for_the_cycle() -> None:
    result = forecast_panel(_panel(_mixed()), 7)
    n = len(result.ids)
    assert result.point.shape == (n, 7) and (result.point >= 0).all()
    assert np.isfinite(result.point).all() and np.isfinite(result.sigma).all()
    assert len(result.params) == n
    json.dumps(result.params)
    assert result.mase.shape == result.rmsse.shape == result.confidence.shape == (n,)
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
    idx = {k: i for i, k in enumerate(result.ids)}
    assert np.isnan(result.mase[idx["new"]]) and result.confidence[idx["new"]] == 0
    assert result.confidence[idx["smooth"]] > 0.3
    assert result.info["backtest"]["horizon"] == 7 and result.info["code_version"]


def test_demand_over_and_its_quantiles() -> None:
    result = forecast_panel(_panel(_mixed()), 4)
    mean, sd = result.demand_over(np.full(len(result.ids), 2.5))
    expected = result.point[:, :2].sum(axis=1) + 0.5 * result.point[:, 2]
    np.testing.assert_allclose(mean, expected)
    beyond, _ = result.demand_over(6.0)
    np.testing.assert_allclose(beyond, result.point.sum(axis=1) + 2 * result.point.mean(axis=1))
    q = result.demand_quantiles(np.full(len(result.ids), 10.0), [0.5, 0.9, 0.95])
    assert q.shape == (len(result.ids), 3) and (q >= 0).all()
    assert (np.diff(q, axis=1) >= -1e-9).all()
    assert (sd >= 0).all()


def test_quantile_distributions_are_calibrated_when_the_model_is_right() -> None:
    rng = np.random.default_rng(2)
    mean = rng.uniform(0.2, 30, 4000)
    var = mean * rng.uniform(1.0, 4.0, 4000)
    r, p = mean ** 2 / (var - mean + 1e-12), mean / var
    draws = rng.negative_binomial(np.maximum(r, 1e-9), np.minimum(p, 1.0))
    shares = coverage(draws, demand_quantiles(mean, var, [0.5, 0.9, 0.95], True))
    assert shares[1] == pytest.approx(0.9, abs=0.03) and shares[2] >= 0.93
    gamma = rng.gamma(mean ** 2 / var, var / mean)
    shares = coverage(gamma, demand_quantiles(mean, var, [0.5, 0.9], False))
    np.testing.assert_allclose(shares, [0.5, 0.9], atol=0.03)


def test_backtest_calibration_is_reported() -> None:
    info = forecast_panel(_panel(_mixed(t=300)), 14).info["calibration"]
    assert info["quantiles"] == [0.5, 0.9, 0.95]
    assert all(0 <= v <= 1 for v in info["per_period"] + info["over_backtest_horizon"])


def _tidy(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "date", "quantity"])


def test_bad_input_is_handled_by_rule_and_reported() -> None:
    rows = [("a", "2024-01-0" + str(d), q) for d, q in zip(range(1, 10), [3, -2, 4, None, 5, 5,
                                                                          np.inf, 3, 2])]
    rows += [("a", "2024-01-05", 7), ("b", "2024-01-03 13:45", 1), ("zero", "2024-01-02", 0)]
    frame = forecast(_tidy(rows), 5, quantiles=(0.5, 0.95))
    notes = frame.attrs["forecast_info"]["input"]
    assert notes["negative_quantities"] == 1 and notes["missing_quantities"] == 2
    assert notes["duplicate_dates"] == 1 and notes["dates_moved_to_period_start"] == 1
    assert set(frame["item_id"]) == {"a", "b", "zero"}
    numbers = frame[["forecast", "q0.5", "q0.95"]].to_numpy(float)
    assert np.isfinite(numbers).all() and (numbers >= 0).all()


def test_monthly_dates_read_as_daily_are_flagged() -> None:
    rows = [("a", f"2023-{m:02d}-01", 10) for m in range(1, 13)]
    info = forecast(_tidy(rows), 3, freq="D").attrs["forecast_info"]
    assert "monthly data" in info["input"]["frequency_warning"]


@pytest.mark.parametrize(("rows", "message"), [
    ([("a", "not a date", 1)], "row 1: date 'not a date' is not a date"),
    ([("a", "2024-01-01", 1), ("a", "2024-01-02", "ten")], "row 2: quantity 'ten' is not a number"),
])
def test_unusable_records_are_one_line_errors(rows, message: str) -> None:
    with pytest.raises(DataError) as err:
        to_panel(_tidy(rows))
    assert str(err.value) == message


def test_missing_columns_and_unknown_freq() -> None:
    with pytest.raises(DataError, match="missing column.*quantity"):
        to_panel(pd.DataFrame({"item_id": ["a"], "date": ["2024-01-01"]}))
    with pytest.raises(DataError, match="unknown frequency 'Q'"):
        to_panel(_tidy([("a", "2024-01-01", 1)]), freq="Q")


def test_chunks_give_the_same_answer_as_one_pass() -> None:
    panel = _panel(_mixed(seed=4))
    whole = forecast_panel(panel, 10)
    chunked = forecast_panel(panel, 10, chunk_size=3)
    np.testing.assert_allclose(chunked.point, whole.point)
    assert chunked.model.tolist() == whole.model.tolist()


def test_totals_spread_at_least_as_fast_as_independent_errors() -> None:
    rng = np.random.default_rng(9)
    t = 300
    level = np.repeat(rng.uniform(5, 40, t // 30), 30)          # level shifts: errors persist
    result = forecast_panel(_panel({"shifty": rng.poisson(level).astype(float),
                                    "steady": rng.poisson(20, t).astype(float)}), 14)
    assert (result.spread >= 1).all()
    h_bt = result.info["backtest"]["horizon"]
    _, sd_one = result.demand_over(1.0)
    _, sd_window = result.demand_over(float(h_bt))
    np.testing.assert_allclose(sd_one, result.sigma)
    np.testing.assert_allclose(sd_window, result.sigma * np.sqrt(h_bt * result.spread))
    assert result.spread[0] > result.spread[1]


def test_a_series_keeps_its_previous_model_while_it_scores_within_the_margin() -> None:
    from restock.forecast import select
    from restock.forecast.select import model_key

    rng = np.random.default_rng(7)
    panel = _panel({"steady": rng.poisson(20, 200).astype(float)})
    free = forecast_panel(panel, 14)
    chosen = model_key(free.model[0], free.params[0])
    # A close runner-up (SES with the next alpha) is kept when it was the model last time ...
    other = "SES {\"alpha\": 0.05}" if chosen != "SES {\"alpha\": 0.05}" else \
        "SES {\"alpha\": 0.1}"
    kept = forecast_panel(panel, 14, previous={"steady": other})
    assert model_key(kept.model[0], kept.params[0]) == other
    assert kept.chosen_by[0] == "previous" and free.chosen_by[0] in ("backtest", "steady")
    again = forecast_panel(panel, 14, previous={"steady": chosen})   # it chose that anyway
    assert _first(again) == _first(free) and again.chosen_by[0] == free.chosen_by[0]
    # ... but not once the margin is gone, nor when the previous model is unknown here.
    original = select.STICKY_MARGIN
    try:
        select.STICKY_MARGIN = 0.0
        assert model_key(*_first(forecast_panel(panel, 14, previous={"steady": other}))) == \
            chosen
    finally:
        select.STICKY_MARGIN = original
    unknown = forecast_panel(panel, 14, previous={"steady": "Croston {\"alpha\": 0.9}"})
    assert model_key(*_first(unknown)) == chosen


def test_a_much_better_model_replaces_the_previous_one() -> None:
    from restock.forecast.select import model_key

    rng = np.random.default_rng(8)
    rising = 5 + 0.8 * np.arange(120) + rng.normal(0, 1, 120)
    panel = _panel({"rising": rising})
    # A flat SES with a slow alpha lags a clean trend by far more than the margin.
    result = forecast_panel(panel, 14, previous={"rising": "SES {\"alpha\": 0.05}"})
    assert model_key(*_first(result)) != "SES {\"alpha\": 0.05}"
    assert result.model[0] == "Holt" and result.chosen_by[0] == "backtest"


def _first(result):
    return result.model[0], result.params[0]


def test_the_catalog_frame_has_a_row_per_series_with_its_model_and_why() -> None:
    import json

    result = forecast_panel(_panel(_mixed()), 14)
    frame = result.catalog()
    assert list(frame["item_id"]) == list(result.ids)
    assert list(frame["model"]) == list(result.model)
    assert list(frame["chosen_by"]) == list(result.chosen_by)
    assert [json.loads(p) for p in frame["params"]] == result.params
    assert frame.loc[frame["item_id"] == "zeros", "chosen_by"].item() == "class"
    assert frame["window_end"].nunique() == 1 and frame["code_version"].notna().all()


def _without_long_run(monkeypatch) -> None:
    import importlib
    panel_module = importlib.import_module("restock.forecast.panel")
    monkeypatch.setattr(panel_module, "_lean_on_long_run", lambda *args, **kwargs: None)


def test_daily_forecasts_lean_a_fifth_of_the_way_to_the_long_run_mean(monkeypatch) -> None:
    from restock.forecast.select import DAILY_LONG_RUN_SHARE, LONG_RUN_PERIODS

    rng = np.random.default_rng(11)
    t = 900                                  # longer than the long run: only its tail counts
    week = np.tile([1.0, 1.2, 1.1, 1.0, 1.4, 2.2, 0.2], t // 7 + 1)[:t]
    rows = {"dropped": np.concatenate([rng.poisson(12, t - 60), rng.poisson(4, 60)]),
            "seasonal": rng.poisson(20 * week),
            "late": rng.poisson(6, 400),     # starts inside the long run's window
            "new": rng.poisson(3, 10),
            "gone": np.concatenate([rng.poisson(5, t - 300), np.zeros(300)])}
    panel = _panel({k: v.astype(float) for k, v in rows.items()})
    leaning = forecast_panel(panel, 14, season_length=7, calibrate=False)
    _without_long_run(monkeypatch)
    model_only = forecast_panel(panel, 14, season_length=7, calibrate=False)
    at = {name: i for i, name in enumerate(leaning.ids)}
    for name in ("dropped", "seasonal", "late"):
        i, series = at[name], rows[name]
        long_run = series[-LONG_RUN_PERIODS:].mean()
        own = model_only.point[i]
        expected = (1 - DAILY_LONG_RUN_SHARE) * own.mean() + DAILY_LONG_RUN_SHARE * long_run
        assert leaning.point[i].mean() == pytest.approx(expected, rel=1e-9)
        # the path is scaled: the weekly shape stays
        np.testing.assert_allclose(leaning.point[i] / leaning.point[i].mean(),
                                   own / own.mean(), rtol=1e-9)
    assert leaning.point[at["dropped"]].mean() > model_only.point[at["dropped"]].mean() + 1
    for name in ("new", "gone"):          # their class sets their forecast: left as it was
        np.testing.assert_array_equal(leaning.point[at[name]], model_only.point[at[name]])
    assert leaning.info["long_run_share"] == DAILY_LONG_RUN_SHARE


def test_weekly_and_monthly_forecasts_do_not_lean_on_the_long_run(monkeypatch) -> None:
    for freq in ("W", "M"):
        panel = _panel(_mixed(t=200), freq=freq)
        leaning = forecast_panel(panel, 6, calibrate=False)
        assert leaning.info["long_run_share"] == 0.0
        with monkeypatch.context() as patched:
            _without_long_run(patched)
            np.testing.assert_array_equal(forecast_panel(panel, 6, calibrate=False).point,
                                          leaning.point)
