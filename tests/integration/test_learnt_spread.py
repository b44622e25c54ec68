"""The live planner learns each SKU's spread over lead time + review from the windows its own
earlier runs forecast, as the replay does: recorded in a real store, learnt from real history."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from restock import forecast_windows
from restock.config import load_org
from restock.cycle import run_org
from restock.forecast_windows import _totals, closed_windows, learn_from_windows, learn_spread
from restock.policy.spread import PRIOR_WEIGHT, learnt_sd
from tests.integration.test_cycle import AS_OF, org_dir, store, warehouse_template, write_org

__all__ = ["org_dir", "store", "warehouse_template"]   # fixtures, used by name


def test_an_items_own_errors_outweigh_the_prior_as_its_windows_add_up():
    model_sd = np.full(12, 2.0)
    predicted, count = np.full(12, 4.0), np.ones(12)        # each item: one window, sd 2 claimed
    squared = np.full(12, 16.0)                             # realised error 4: twice the claim
    one = learnt_sd(squared, predicted, count, model_sd)
    # prior: the model's sd times the median realised / claimed ratio (2) -> 4, and so is its own
    assert one == pytest.approx(np.full(12, 4.0))
    squared[0], predicted[0], count[0] = 36.0 * 20, 4.0 * 20, 20    # item 0: error 6, 20 windows
    many = learnt_sd(squared, predicted, count, model_sd)
    assert many[0] == pytest.approx(np.sqrt((720 + PRIOR_WEIGHT * 16) / (20 + PRIOR_WEIGHT)))
    assert many[1] == pytest.approx(4.0)


def test_with_fewer_than_ten_items_learnt_the_prior_is_the_models_own_sd():
    out = learnt_sd(np.array([100.0, 0.0]), np.array([4.0, 0.0]), np.array([1.0, 0.0]),
                    np.array([2.0, 5.0]))
    assert out[1] == pytest.approx(5.0)                     # no windows, no pooled ratio: as is
    assert out[0] == pytest.approx(np.sqrt((100 + PRIOR_WEIGHT * 4) / (1 + PRIOR_WEIGHT)))


@pytest.mark.parametrize("cells", [1 << 24, 100], ids=["one block", "a block per sku"])
def test_window_totals_are_the_history_summed_over_each_span(monkeypatch, cells):
    monkeypatch.setattr(forecast_windows, "CELLS_PER_BLOCK", cells)
    rng = np.random.default_rng(3)
    days = pd.date_range("2026-01-01", periods=90, freq="D")
    history = pd.DataFrame({"sku": rng.choice(["A", "B", "C"], 400),
                            "date": rng.choice(days, 400), "quantity": rng.integers(0, 9, 400)})
    sku = np.array(["A", "C", "B", "Z"])
    start = np.array(["2026-01-05", "2026-02-01", "2026-01-01", "2026-01-01"],
                     dtype="datetime64[D]").astype(np.int64)
    end = start + np.array([14, 30, 90, 10])
    index = pd.Index(["A", "B", "C"])
    got, selling = _totals(history, index, index.get_indexer(sku), start, end)
    stamp = pd.to_datetime(history["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    want = [history["quantity"][(history["sku"] == s) & (stamp >= a) & (stamp < b)].sum()
            for s, a, b in zip(sku, start, end, strict=True)]
    assert got.tolist() == pytest.approx(want) and got[-1] == 0.0
    # days with a sale before each window opened (several rows of one day count once)
    sold = [len(set(stamp[(history["sku"] == s) & (stamp < a) & (history["quantity"] > 0)]))
            for s, a in zip(sku, start, strict=True)]
    assert selling.tolist() == sold and sold[0] > 0
    row = history.index[history["sku"] == "B"][0]         # B's span is the whole history
    lost = history.loc[row, "quantity"]
    history["quantity"] = history["quantity"].astype(float)
    history.loc[row, "quantity"] = np.nan                  # counts as nothing, spoils nothing
    assert _totals(history, index, index.get_indexer(sku), start, end)[0].tolist() == \
        pytest.approx([want[0], want[1], want[2] - lost, 0.0])


def test_weekly_runs_record_their_windows_and_later_runs_learn_from_them(org_dir, store):
    runs = [run_org(load_org(write_org(org_dir, mode="dry_run", as_of=AS_OF - timedelta(weeks=w))),
                    store=store) for w in range(10, -1, -1)]
    recorded = store.windows.runs("acme", AS_OF - timedelta(weeks=20), AS_OF + timedelta(days=1))
    assert [day for day, _ in recorded][-1] == AS_OF - timedelta(weeks=10) and len(recorded) == 11
    first = store.windows.read([recorded[-1][1]])
    assert len(first) == 30 and (first["horizon_days"] > 0).all()
    assert (first["horizon_mean"] >= 0).all() and (first["horizon_sd"] >= 0).all()
    assert runs[0].stats["skus_with_learnt_spread"] == 0        # nothing closed yet
    # ten weeks after the first run, every SKU whose lead time + review fits in them has learnt
    fits = int((first["horizon_days"] <= 70).sum())
    assert 20 <= fits < 30                                       # long lead times stay open
    assert runs[-1].stats["skus_with_learnt_spread"] == fits
    # and the lines say so, with the windows counted
    reasons = [r for order in runs[-1].orders + runs[-1].held for line in order.lines
               for r in line.reasons if r.code == "forecast"]
    learnt = [r for r in reasons if "spread_windows" in r.data]
    assert learnt and all(f"learnt from {r.data['spread_windows']} closed window" in r.message
                          for r in learnt)
    first_reasons = [r for order in runs[0].orders + runs[0].held for line in order.lines
                     for r in line.reasons if r.code == "forecast"]
    assert first_reasons and not any("learnt" in r.message for r in first_reasons)
    # the pooled errors of those windows set the cycle targets' levels, once there are any

    def methods(run):
        return {r.data["method"] for order in run.orders + run.held for line in order.lines
                for r in line.reasons if r.code == "safety_stock"}
    assert "error_quantile" in methods(runs[-1]) and "error_quantile" not in methods(runs[0])
    assert runs[0].stats["pooled_forecast_errors"] == 0
    assert runs[-1].stats["pooled_forecast_errors"] >= 10


def test_a_sku_whose_past_forecasts_missed_gets_a_wider_spread(org_dir, store):
    for w in range(10, 0, -1):
        run_org(load_org(write_org(org_dir, mode="dry_run", as_of=AS_OF - timedelta(weeks=w))),
                store=store)
    windows = closed_windows(store.windows, "acme", AS_OF, 7, AS_OF - timedelta(days=730))
    history = pd.read_csv(org_dir / "warehouse" / "history.csv.gz")
    history = history[pd.to_datetime(history["date"]) < pd.Timestamp(AS_OF)]
    items = pd.DataFrame({"sku": sorted(set(windows["sku"])), "lead_time_days": 7.0,
                          "review_period_days": 7.0, "demand_rate": 1.0, "demand_sd": 0.5})
    honest = learn_spread(items, history, windows).set_index("sku")
    sku = honest["spread_windows"].idxmax()
    assert honest.loc[sku, "spread_windows"] >= 8          # a short lead time: weekly windows
    missed = windows.assign(horizon_mean=np.where(windows["sku"] == sku,
                                                  windows["horizon_mean"] * 10 + 50,
                                                  windows["horizon_mean"]))
    wrong = learn_spread(items, history, missed).set_index("sku")
    assert wrong.loc[sku, "demand_sd"] > 3 * honest.loc[sku, "demand_sd"]


def test_a_sku_reviewed_monthly_learns_from_one_window_a_month_of_weekly_runs():
    runs = pd.Timestamp("2026-01-05") + pd.to_timedelta(np.arange(12) * 7, unit="D")
    day = runs.to_numpy().astype("datetime64[D]").astype(np.int64)
    windows = pd.DataFrame({"sku": np.repeat(["weekly", "monthly"], 12),
                            "start": np.tile(day, 2), "end": np.tile(day, 2) + 7,
                            "horizon_days": 7.0, "horizon_mean": 7.0, "horizon_sd": 2.0})
    history = pd.DataFrame({"sku": np.repeat(["weekly", "monthly"], 100),
                            "date": np.tile(pd.date_range("2026-01-01", periods=100), 2),
                            "quantity": 1.0})
    items = pd.DataFrame({"sku": ["weekly", "monthly"], "lead_time_days": 0.0,
                          "review_period_days": [7.0, 28.0], "demand_rate": 1.0,
                          "demand_sd": 1.0})
    learnt = learn_spread(items, history, windows).set_index("sku")["spread_windows"]
    assert learnt.to_dict() == {"weekly": 12, "monthly": 3}   # of runs 0-11: 11, 7 and 3
    kept = windows[windows["sku"] == "monthly"]["start"].to_numpy()
    every = learn_spread(items.assign(review_period_days=7.0), history, windows)
    assert every.set_index("sku").loc["monthly", "spread_windows"] == len(kept)


def _windows_of(skus, start="2026-02-01", days=7, forecast=5.0):
    day = np.datetime64(start, "D").astype(np.int64)
    return pd.DataFrame({"sku": skus, "start": day, "end": day + days, "horizon_days": days,
                         "horizon_mean": forecast, "horizon_sd": 2.0})


def test_settled_skus_windows_pool_their_errors_in_square_root_units():
    sold = [f"S{i:02d}" for i in range(11)]
    history = pd.DataFrame({"sku": np.repeat(sold, 100),
                            "date": np.tile(pd.date_range("2026-01-01", periods=100), 11),
                            "quantity": 1.0})
    late = pd.DataFrame({"sku": "late", "date": pd.date_range("2026-01-30", periods=40),
                         "quantity": 1.0})          # two days of sales before its window opens
    history = pd.concat([history, late], ignore_index=True)
    skus = [*sold, "late"]
    items = pd.DataFrame({"sku": skus, "lead_time_days": 0.0, "review_period_days": 7.0,
                          "demand_rate": 1.0, "demand_sd": 1.0})
    learnt = learn_from_windows(items, history, _windows_of(skus))
    # 7 consumed where 5 were forecast: (7 - 5) / sqrt(5), one per settled SKU
    assert learnt.errors == pytest.approx(np.full(11, 2 / np.sqrt(5)))
    assert learnt.items.set_index("sku").loc["late", "spread_windows"] == 1   # spread: counted
    assert learnt.items["demand_sd"].tolist() == learn_spread(
        items, history, _windows_of(skus))["demand_sd"].tolist()
    # fewer than ten SKUs with settled windows: no pool yet
    assert learn_from_windows(items, history, _windows_of(sold[:9] + ["late"])).errors.size == 0
    assert learn_from_windows(items, history, _windows_of(skus).iloc[:0]).errors.size == 0
