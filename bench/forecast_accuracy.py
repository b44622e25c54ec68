"""Forecast accuracy on the real demand sets, next to statsforecast computed in the same run.

For each set in ../shared/data/sets the last h periods are held out (carparts h=12 monthly,
man h=12 weekly, pasta h=28 daily, the M5 sample h=28 daily). restock's automatic choice and
statsforecast's CrostonClassic, CrostonSBA, TSB(0.1, 0.1), ADIDA, SES(0.1) and AutoETS see the
same dense training panel (each series from its first observation; missing periods are zero).

MASE and RMSSE per series are scaled by the training part's one-step naive error; series whose
training part is constant (the 1,510 all-zero MAN parts, say) have no scale and are left out of
the means (counted in ``unscaled``). Calibration: the share of held-out actuals at or below
restock's quantiles, per period and for the total over the h periods (also without the series
classed dead, which are forecast zero with no spread).

One held-out window is a small sample: on the M5 sample it is 8 series, and a level shift in
those h periods can decide it. So each set is also scored over ``ROLLING`` windows: window k
holds out the h periods that end k·h periods before the end (k = 0 is the split above), the
model sees only what came before, and the means run over every scaled series-window. There
restock is compared with the fixed statsforecast models (AutoETS is left out: refitting it per
window would take most of the run), with the paired difference's standard error.

statsforecast is a benchmark-only extra (``pip install -e '.[bench]'``); without it the
comparison columns are skipped and say so. Results: bench/results/forecast_accuracy.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench._common import save_result

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RESTOCK_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = Path(__file__).parent / "results" / "forecast_accuracy.json"
SETS = {  # name: (file, freq, horizon, statsforecast freq, AutoETS season)
    "carparts": ("carparts.csv.gz", "M", 12, "MS", 12),
    "man": ("man.csv.gz", "W", 12, "W-MON", 1),
    "pasta": ("pasta.csv.gz", "D", 28, "D", 7),
    "m5_foods1_small": ("m5_foods1_small.csv.gz", "D", 28, "D", 7),
}
ROLLING = {"carparts": 3, "man": 6, "pasta": 10, "m5_foods1_small": 20}   # windows of h
QUANTILES = (0.5, 0.9, 0.95)
CRITERIA = ("auto", "rmsse", "mase", "both")
PER_SERIES_UP_TO = 20


def read_set(name: str):
    """The whole set as a panel."""
    from restock.forecast import to_panel

    file, freq = SETS[name][:2]
    return to_panel(pd.read_csv(DATA / "sets" / file, dtype={"item_id": str}), freq=freq)


def split(name: str, window: int = 0, whole=None) -> tuple:
    """(train panel, held-out actuals (n, h), scales) for one set: the h periods held out end
    ``window``·h periods before the end of the data (``whole``: the set's panel, if read)."""
    h = SETS[name][2]
    whole = read_set(name) if whole is None else whole
    end = whole.values.shape[1] - window * h
    train_values = whole.values[:, :end - h]
    actual = np.nan_to_num(whole.values[:, end - h:end])
    keep = ~np.isnan(train_values).all(axis=1)
    panel = dataclasses.replace(whole, ids=whole.ids[keep], values=train_values[keep],
                                dates=whole.dates[:end - h])
    return panel, actual[keep], _scales(panel.values)


def _scales(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = np.diff(train, axis=1)
    with np.errstate(all="ignore"):
        return np.nanmean(np.abs(diff), axis=1), np.nanmean(diff ** 2, axis=1)


def scores(point: np.ndarray, actual: np.ndarray, scale: tuple) -> dict:
    """Mean MASE and RMSSE over the series that have a scale (and each one's, on a small set)."""
    ok = (scale[0] > 0) & np.isfinite(point).all(axis=1)
    mase, rmsse = _scaled_errors(point, actual, scale, ok)
    out = {"mase": round(float(mase.mean()), 4), "rmsse": round(float(rmsse.mean()), 4),
           "series": int(ok.sum())}
    if len(point) <= PER_SERIES_UP_TO:   # a mean over a few series is read series by series
        out["per_series"] = {name: _each(values, ok) for name, values in
                             (("mase", mase), ("rmsse", rmsse))}
    return out


def _scaled_errors(point: np.ndarray, actual: np.ndarray, scale: tuple,
                   ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MASE and RMSSE of each series in ``ok``."""
    return (np.abs(point - actual).mean(axis=1)[ok] / scale[0][ok],
            np.sqrt(((point - actual) ** 2).mean(axis=1)[ok] / scale[1][ok]))


def _each(values: np.ndarray, ok: np.ndarray) -> list[float | None]:
    """One value per series of the set, None where the series has no scale."""
    out: list[float | None] = [None] * len(ok)
    for row, value in zip(np.flatnonzero(ok), values, strict=True):
        out[row] = round(float(value), 3)
    return out


def run_restock(panel, actual: np.ndarray, scale: tuple, h: int, criterion: str) -> dict:
    from restock.forecast import forecast_panel
    from restock.forecast.quantiles import coverage

    start = time.perf_counter()
    result = forecast_panel(panel, h, criterion=criterion)
    seconds = time.perf_counter() - start
    out = scores(result.point, actual, scale) | {"seconds": round(seconds, 2)}
    step_q = result.step_quantiles(QUANTILES)
    total_q = result.demand_quantiles(float(h), QUANTILES)
    out["calibration_per_period"] = [round(float(v), 3) for v in coverage(actual, step_q)]
    out["calibration_total"] = [round(float(v), 3)
                                for v in coverage(actual.sum(axis=1), total_q)]
    live = result.demand_class != "dead"   # dead series are forecast 0 with no spread
    out["calibration_total_not_dead"] = [round(float(v), 3) for v in
                                         coverage(actual[live].sum(axis=1), total_q[live])]
    out["models"] = pd.Series(result.model).value_counts().to_dict()
    if len(result.ids) <= PER_SERIES_UP_TO:
        out["per_series_model"] = [f"{m} {json.dumps(p, sort_keys=True)}"
                                   for m, p in zip(result.model, result.params, strict=True)]
    out["classes"] = pd.Series(result.demand_class).value_counts().to_dict()
    return out


SKIPPED = {"skipped": "statsforecast is not installed (pip install -e '.[bench]')"}


def run_statsforecast(panel, actual: np.ndarray, scale: tuple, name: str) -> dict:
    points = statsforecast_points(panel, name, with_ets=True)
    if points is None:
        return SKIPPED
    return {model: scores(point, actual, scale) | {"seconds_all_models_in_call": seconds}
            for model, (point, seconds) in points.items()}


def statsforecast_points(panel, name: str, with_ets: bool) -> dict | None:
    """{model: ((n, h) point forecasts, seconds of its call)}; None without statsforecast."""
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import (
            ADIDA,
            TSB,
            AutoETS,
            CrostonClassic,
            CrostonSBA,
            SimpleExponentialSmoothing,
        )
    except ImportError:
        return None
    _, _, h, sf_freq, season = SETS[name]
    models = [CrostonClassic(), CrostonSBA(), TSB(alpha_d=0.1, alpha_p=0.1), ADIDA(),
              SimpleExponentialSmoothing(alpha=0.1)]
    out = _sf_run(StatsForecast, models, panel, h, sf_freq)
    if with_ets:
        out.update(_sf_run(StatsForecast, [AutoETS(season_length=season)], panel, h, sf_freq))
    return {("SES" if k == "SimpleExponentialSmoothing" else k): v for k, v in out.items()}


def _sf_run(engine, models, panel, h, sf_freq) -> dict:
    long = _long(panel)
    start = time.perf_counter()
    fc = engine(models=models, freq=sf_freq, n_jobs=1).forecast(df=long, h=h)
    seconds = round(time.perf_counter() - start, 2)
    fc = fc.set_index("unique_id").loc[panel.ids]
    out = {}
    for model in models:
        column = repr(model) if repr(model) in fc.columns else model.alias
        out[model.alias] = (fc[column].to_numpy(float).reshape(len(panel.ids), h), seconds)
    return out


def _long(panel) -> pd.DataFrame:
    observed = ~np.isnan(panel.values)
    rows, cols = np.nonzero(observed)
    return pd.DataFrame({"unique_id": panel.ids[rows], "ds": panel.dates[cols],
                         "y": panel.values[rows, cols]})


def run_set(name: str) -> dict:
    whole = read_set(name)
    panel, actual, scale = split(name, 0, whole)
    h = SETS[name][2]
    out = {"horizon": h, "freq": SETS[name][1], "series": len(panel.ids),
           "unscaled": int((scale[0] == 0).sum() + np.isnan(scale[0]).sum())}
    if len(panel.ids) <= PER_SERIES_UP_TO:
        out["ids"] = [str(i) for i in panel.ids]
    out["restock"] = {c: run_restock(panel, actual, scale, h, c) for c in CRITERIA}
    out["statsforecast"] = run_statsforecast(panel, actual, scale, name)
    _compare(out)
    out["rolling"] = run_rolling(name, whole, ROLLING[name])
    return out


def run_rolling(name: str, whole, windows: int) -> dict:
    """restock's automatic choice and the fixed statsforecast models over ``windows`` held-out
    windows: mean MASE / RMSSE over every scaled series-window, restock's paired difference
    from the best of them on each measure (mean ± standard error), and restock's quantiles of
    the held-out totals (series not classed dead): the share at or below each of QUANTILES and
    the mean scaled pinball loss, beside the same for the model's distribution alone (without
    the history mixed in, ``quantiles.with_history``)."""
    errors: dict[str, list[list[np.ndarray]]] = {}     # model: [MASEs, RMSSEs] per window
    judged: dict[str, list[list[np.ndarray]]] = {}     # rule: [hits, pinball losses]
    for window in range(windows):
        scaled, quantiles = _rolling_window(name, whole, window)
        _gather(errors, scaled)
        _gather(judged, quantiles)
    each = {model: [np.concatenate(e) for e in err] for model, err in errors.items()}
    out = {"windows": windows, "series_windows": len(each["restock"][0]),
           "mean": {model: {"mase": round(float(e[0].mean()), 4),
                            "rmsse": round(float(e[1].mean()), 4)} for model, e in each.items()},
           "quantiles_total_not_dead": {
               rule: {"coverage": _rounded(np.concatenate(j[0]).mean(axis=0), 3),
                      "scaled_pinball": _rounded(np.concatenate(j[1]).mean(axis=0), 4)}
               for rule, j in judged.items()}}
    if len(each) == 1:
        return out | SKIPPED
    for k, measure in enumerate(("mase", "rmsse")):
        best = min((m for m in each if m != "restock"), key=lambda m: each[m][k].mean())
        diff = each["restock"][k] - each[best][k]
        out[f"restock_minus_best_{measure}"] = {
            "best": best, "mean": round(float(diff.mean()), 4),
            "standard_error": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4)}
    return out


def _gather(into: dict[str, list[list[np.ndarray]]],
            window: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Appends one window's pair of arrays per key to that key's two lists."""
    for key, (first, second) in window.items():
        lists = into.setdefault(key, [[], []])
        lists[0].append(first)
        lists[1].append(second)


def _rounded(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _rolling_window(name: str, whole, window: int) -> tuple:
    """One held-out window: each model's (MASE, RMSSE) per scaled series, and for restock's
    quantiles of the live series' totals, with and without the history, whether each total is
    at or below each quantile and (scaled series) its pinball loss over h × the MASE scale."""
    from restock.forecast import forecast_panel

    h = SETS[name][2]
    panel, actual, scale = split(name, window, whole)
    ours = forecast_panel(panel, h, calibrate=False)
    model_alone = dataclasses.replace(ours, history_mean=np.zeros(0), history_var=np.zeros(0))
    live = ours.demand_class != "dead"
    total, per = actual.sum(axis=1), scale[0] * h
    scaled_live = live & (scale[0] > 0)
    quantiles = {}
    for rule, result in (("restock", ours), ("model_alone", model_alone)):
        q = result.demand_quantiles(float(h), QUANTILES)
        quantiles[rule] = (total[live, None] <= q[live] + 1e-9,
                           pinball(total[scaled_live], q[scaled_live]) /
                           per[scaled_live, None])
    points = {"restock": ours.point}
    theirs = statsforecast_points(panel, name, with_ets=False)
    points.update({k: v[0] for k, v in (theirs or {}).items()})
    ok = scale[0] > 0          # one mask for every model: the differences are paired
    return {model: _scaled_errors(point, actual, scale, ok)
            for model, point in points.items()}, quantiles


def pinball(actual: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """(n, len(QUANTILES)) pinball loss of each quantile against the actual: q × the shortfall
    when the actual is above it, (1 - q) × the excess when below."""
    miss = actual[:, None] - quantiles
    levels = np.asarray(QUANTILES)
    return np.maximum(levels * miss, (levels - 1.0) * miss)


def _compare(out: dict) -> None:
    sf = {k: v for k, v in out["statsforecast"].items() if isinstance(v, dict)}
    if not sf:
        return
    ours = out["restock"]["auto"]
    best_mase = min(sf, key=lambda k: sf[k]["mase"])
    best_rmsse = min(sf, key=lambda k: sf[k]["rmsse"])
    out["comparison"] = {
        "best_statsforecast_by_mase": [best_mase, sf[best_mase]["mase"]],
        "best_statsforecast_by_rmsse": [best_rmsse, sf[best_rmsse]["rmsse"]],
        "restock_mase": ours["mase"], "restock_rmsse": ours["rmsse"],
        "restock_no_worse_on_both": ours["mase"] <= sf[best_mase]["mase"]
        and ours["rmsse"] <= sf[best_rmsse]["rmsse"]}


def main(names: list[str] | None = None) -> dict:
    if not (DATA / "sets").is_dir():
        print(f"forecast_accuracy: skipped, no data sets at {DATA}")
        return {}
    result = {"sets": {}, "quantiles": list(QUANTILES), "default_criterion": "auto"}
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() and names else {"sets": {}}
    for name in names or list(SETS):
        result["sets"][name] = run_set(name)
        print(f"forecast_accuracy {name}: {json.dumps(result['sets'][name].get('comparison'))}")
    result["sets"] = previous.get("sets", {}) | result["sets"]
    save_result(RESULTS, result)
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1:] or None)
