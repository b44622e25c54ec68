"""statsmodels' ETS, Theta and ARIMA where they earn their cost, in parallel, under a time budget.

The fast families choose first (restock.forecast.select). Then, while the budget lasts, the
series that can pay back a slow fit — regular (smooth or erratic) demand with a long history,
and any marked ``high_value``, highest first — are sent to worker processes. Each worker fits
the three models as of the most recent SLOW_ORIGINS of the backtest origins the fast path used
and at the end of the data, and scores them the same way (same scales), against the fast
choice's score over all its origins. A series keeps a statsmodels model only when its backtest
score beats the fast choice. With ``previous`` the model a series had last time sticks as in the
fast path (``select.STICKY_MARGIN``): a statsmodels model, refitted every run and so known by its
name alone, stays while it scores within the margin of the best; a fast incumbent gives way only
to a statsmodels model better by more than the margin. Whatever is not finished when the budget
runs out keeps its fast forecast; ``info["statsmodels"]`` says how far it got.

On daily data the fast choice keeps SES(select.DAILY_DEFAULT_ALPHA) unless another model is
clearly better (``select.clearly_better``); a statsmodels model has to clear the same gate, on
its own backtest origins, before it competes at all (a previous statsmodels model that sticks
is not asked again, as in the fast path).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

import numpy as np

from restock.forecast import fast
from restock.forecast.select import (
    DAILY_DEFAULT_ALPHA,
    MIN_TRAIN,
    ORIGINS,
    Backtest,
    clearly_better,
    holds_on,
    model_key,
    scaled_score,
    scales,
)

MODELS = ("ETS", "Theta", "ARIMA")
MIN_LENGTH = 60               # observed periods before a slow model is worth trying
SLOW_ORIGINS = 3              # the most recent backtest origins only: each is a fit per model
FAST = "fast"                 # incumbent: last time's model is the fast choice held now


def improve_with_statsmodels(result, panel, plan: Backtest, season: int, budget: float, *,
                             criterion: str = "auto", high_value: np.ndarray | None = None,
                             workers: int | None = None,
                             previous: np.ndarray | None = None) -> None:
    """Let ETS / Theta / ARIMA replace the fast choice where they backtest better (in place).

    ``previous`` (aligned with the panel's rows): each series' last ``select.model_key`` or None.
    """
    started = time.monotonic()
    deadline = started + budget
    rows = _eligible(result, panel, season, high_value)
    report = {"budget_seconds": budget, "eligible": len(rows), "fitted": 0, "replaced": 0}
    gated = panel.freq == "D"
    if gated:
        report["not_clearly_better"] = 0
    result.info["statsmodels"] = report
    if not len(rows):
        return
    result.model = result.model.astype(object)    # room for the longer names
    y, start = fast.backfill(panel.values[rows])
    scale1, scale2 = scales(y, start)
    jobs = iter(range(len(rows)))
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_quiet)
    running: dict[Future, int] = {}
    try:
        while True:
            while len(running) < 2 * workers and time.monotonic() < deadline:
                i = next(jobs, None)
                if i is None:
                    break
                series = y[i, start[i]:]
                ends = [e - start[i] for e in plan.ends[:SLOW_ORIGINS]]
                running[pool.submit(fit_series, series, ends, plan.horizon,
                                    result.point.shape[1], season)] = i
            if not running:
                break
            done, _ = wait(running, timeout=max(deadline - time.monotonic(), 0.0),
                           return_when=FIRST_COMPLETED)
            if not done:
                break
            for future in done:
                i = running.pop(future)
                try:
                    fitted = future.result()
                except Exception as err:  # noqa: BLE001 - a lost worker ends the slow pass only
                    report["error"] = f"{err.__class__.__name__}: {err}".splitlines()[0]
                    running.clear()
                    break
                report["fitted"] += 1
                held = None if previous is None else previous[rows[i]]
                if gated:
                    fitted, out = _past_gate(fitted, y[i, start[i]:], plan.horizon,
                                             (scale1[i], scale2[i]), criterion, held)
                    report["not_clearly_better"] += out
                if _adopt(result, rows[i], fitted, scale1[i], scale2[i], criterion, held):
                    report["replaced"] += 1
            if "error" in report:
                break
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        result.model = result.model.astype(str)
    report["seconds"] = round(time.monotonic() - started, 2)


def _quiet() -> None:
    # statsmodels re-enables some of its warnings inside fit(); a worker has no one to tell.
    warnings.simplefilter("ignore")
    warnings.showwarning = lambda *args, **kwargs: None


def _context():
    # fork where there is one: spawn would re-run an unguarded __main__ script in each worker;
    # the workers only fit models, so they never touch what other threads hold.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _eligible(result, panel, season: int, high_value: np.ndarray | None) -> np.ndarray:
    observed = (~np.isnan(panel.values)).sum(axis=1)
    regular = np.isin(result.demand_class, ("smooth", "erratic"))
    long_enough = observed >= max(MIN_LENGTH, 3 * season)
    wanted = (regular & long_enough)
    priority = np.nan_to_num(np.nanmean(panel.values, axis=1)) if panel.values.size else \
        np.zeros(len(observed))
    if high_value is not None:
        marked = np.asarray(high_value, dtype=float)
        wanted |= (marked > 0) & (observed >= MIN_LENGTH)
        priority = priority + marked * (priority.max() + 1.0)
    rows = np.flatnonzero(wanted)
    return rows[np.argsort(-priority[rows], kind="stable")]


def _adopt(result, row: int, fitted: dict, scale1: float, scale2: float,
           criterion: str, previous: str | None = None) -> bool:
    scores = {name: _score(out["mae"] / scale1, np.sqrt(out["mse"] / scale2), criterion)
              for name, out in fitted.items()}
    current = _score(result.mase[row], result.rmsse[row], criterion)    # the fast choice's
    finite = {k: v for k, v in scores.items() if np.isfinite(v)}
    incumbent = _incumbent(previous, result, row)
    best = _winner(finite, current, incumbent)
    lowest = min([*finite.values(), current if np.isfinite(current) else np.inf])
    if best is None:
        if incumbent == FAST and lowest < current:    # a better slow model was turned down
            result.chosen_by[row] = "previous"
        return False
    result.chosen_by[row] = "previous" if best == incumbent and finite[best] > lowest else \
        "backtest"
    out = fitted[best]
    result.point[row] = np.maximum(out["point"], 0.0)
    result.model[row] = best
    result.params[row] = out["params"]
    result.mase[row], result.rmsse[row] = out["mae"] / scale1, np.sqrt(out["mse"] / scale2)
    result.sigma[row] = np.sqrt(out["mse"])
    share = min(out["origins"] / ORIGINS, 1.0)
    result.confidence[row] = share / (1.0 + result.rmsse[row])
    return True


def _past_gate(fitted: dict, series: np.ndarray, h_bt: int, scale: tuple[float, float],
               criterion: str, previous: str | None) -> tuple[dict, int]:
    """The fitted models clearly better than SES(DAILY_DEFAULT_ALPHA) over their backtest
    origins (and the previous model, which may stick without), and 1 if any was left out."""
    if not fitted:
        return fitted, 0
    ends = next(iter(fitted.values()))["ends"]          # every model is scored at the same ends
    level = fast.ses(series[None, :], ends, (DAILY_DEFAULT_ALPHA,))[0, :, 0]
    err = np.stack([level[k] - series[end:end + h_bt] for k, end in enumerate(ends)])
    steady = _origin_scores(np.abs(err).mean(axis=1), (err ** 2).mean(axis=1), scale, criterion)
    keep = {name: out for name, out in fitted.items() if name == _name_of(previous) or
            clearly_better((steady - _origin_scores(out["mae_origins"], out["mse_origins"],
                                                    scale, criterion))[None, :])[0]}
    return keep, int(len(keep) < len(fitted))


def _origin_scores(mae, mse, scale: tuple[float, float], criterion: str) -> np.ndarray:
    # slow models only compete on regular demand: "auto" is squared error, as in _score
    return scaled_score(np.asarray(mae) / scale[0], np.asarray(mse) / scale[1],
                        "rmsse" if criterion == "auto" else criterion)


def _name_of(previous: str | None) -> str | None:
    return previous.split(" ", 1)[0] if isinstance(previous, str) else None


def _incumbent(previous: str | None, result, row: int) -> str | None:
    """The model the series held last time, if it competes now: a statsmodels name, FAST or None."""
    if not isinstance(previous, str):
        return None
    name = _name_of(previous)
    if name in MODELS:                          # refitted every run: the name is the model
        return name
    return FAST if previous == model_key(result.model[row], result.params[row]) else None


def _winner(scores: dict[str, float], fast: float, incumbent: str | None) -> str | None:
    """The statsmodels model the series takes (None: it keeps the fast choice)."""
    if not scores:
        return None
    best = min(scores, key=scores.get)
    lowest = min(scores[best], fast) if np.isfinite(fast) else scores[best]
    if incumbent in scores and holds_on(scores[incumbent], lowest):
        return incumbent
    if not np.isfinite(fast):
        return best
    if incumbent == FAST and holds_on(fast, scores[best]):
        return None
    return best if scores[best] < fast else None


def _score(mase: float, rmsse: float, criterion: str) -> float:
    if criterion == "mase":
        return float(mase)
    if criterion in ("rmsse", "auto"):      # slow models only compete on regular demand
        return float(rmsse)
    return float(mase + rmsse)


def fit_series(series: np.ndarray, ends: list[int], h_bt: int, horizon: int,
               season: int) -> dict:
    """In a worker: each model's backtest errors at ``ends`` and its forecast at the end."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in MODELS:
            try:
                out[name] = _one_model(name, series, ends, h_bt, horizon, season)
            except Exception:  # noqa: BLE001, S112 - a model that fails to fit does not compete
                continue
    return out


def _one_model(name: str, series: np.ndarray, ends: list[int], h_bt: int, horizon: int,
               season: int) -> dict:
    used = [end for end in ends if end >= max(MIN_TRAIN, 2 * season + 2)]
    if not used:
        raise ValueError("no backtest origin")
    mae, mse = [], []
    for end in used:
        path, _ = _fit(name, series[:end], h_bt, season)
        err = np.maximum(path, 0.0) - series[end:end + h_bt]
        mae.append(float(np.abs(err).mean()))
        mse.append(float((err ** 2).mean()))
    point, params = _fit(name, series, horizon, season)
    return {"point": point, "params": params, "mae": float(np.mean(mae)),
            "mse": float(np.mean(mse)), "origins": len(used), "ends": used,
            "mae_origins": mae, "mse_origins": mse}


def _fit(name: str, y: np.ndarray, horizon: int, season: int) -> tuple[np.ndarray, dict]:
    seasonal = season > 1 and len(y) >= 2 * season + 2
    if name == "ETS":
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        fitted = ExponentialSmoothing(y, trend="add", damped_trend=True,
                                      seasonal="add" if seasonal else None,
                                      seasonal_periods=season if seasonal else None,
                                      initialization_method="estimated").fit()
        params = {k: float(fitted.params[k]) for k in
                  ("smoothing_level", "smoothing_trend", "damping_trend",
                   "smoothing_seasonal") if fitted.params.get(k) is not None}
        return np.asarray(fitted.forecast(horizon)), {"trend": "damped",
                                                       "seasonal": bool(seasonal), **params}
    if name == "Theta":
        from statsmodels.tsa.forecasting.theta import ThetaModel

        fitted = ThetaModel(y, period=season if seasonal else 1,
                            deseasonalize=seasonal).fit()
        return np.asarray(fitted.forecast(horizon)), {"theta": 2.0, "seasonal": bool(seasonal)}
    from statsmodels.tsa.arima.model import ARIMA

    fitted = ARIMA(y, order=(1, 1, 1)).fit()
    return np.asarray(fitted.forecast(horizon)), {
        "order": [1, 1, 1], **{str(k): float(v) for k, v in zip(fitted.param_names,
                                                                fitted.params, strict=True)}}
