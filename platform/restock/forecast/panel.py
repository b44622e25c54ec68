"""Dense panels and a baseline forecaster (SES / SBA by demand class), vectorised over series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_FREQ_OFFSETS = {"D": "D", "W": "W-MON", "M": "MS"}


@dataclass
class Panel:
    """Series × periods array of demand, with the ids and the period start dates."""

    ids: np.ndarray          # (n,) series ids
    dates: pd.DatetimeIndex  # (t,) period starts
    values: np.ndarray       # (n, t) float64, NaN = not observed (before a series starts)
    freq: str = "D"


@dataclass
class PanelForecast:
    """Point forecasts per series and step, the model chosen and an error scale per series."""

    ids: np.ndarray
    dates: pd.DatetimeIndex        # (h,) forecast period starts
    point: np.ndarray              # (n, h) >= 0
    model: np.ndarray              # (n,) model name per series
    sigma: np.ndarray              # (n,) sd of one-period forecast error
    demand_class: np.ndarray       # (n,) smooth / erratic / intermittent / lumpy / new / dead
    info: dict = field(default_factory=dict)

    def demand_over(self, periods: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of total demand over the next ``periods`` (per series, may be fractional)."""
        periods = np.broadcast_to(np.asarray(periods, dtype=float), self.ids.shape)
        rate = self.point.mean(axis=1) if self.point.shape[1] else np.zeros(len(self.ids))
        mean = np.maximum(rate * periods, 0.0)
        sd = self.sigma * np.sqrt(np.maximum(periods, 0.0))
        return mean, sd


def to_panel(history: pd.DataFrame, *, freq: str = "D", id_col: str = "item_id",
             date_col: str = "date", value_col: str = "quantity",
             end: pd.Timestamp | None = None) -> Panel:
    """Tidy rows → dense panel; missing periods inside a series are zero demand."""
    offset = _FREQ_OFFSETS[freq]
    dates = pd.to_datetime(history[date_col]).dt.to_period(offset[0]).dt.start_time
    ids, id_index = np.unique(history[id_col].astype(str).to_numpy(), return_inverse=True)
    start = dates.min()
    last = dates.max() if end is None else max(dates.max(), pd.Timestamp(end))
    grid = pd.period_range(start, last, freq=offset[0]).start_time
    col = grid.get_indexer(dates)
    values = np.zeros((len(ids), len(grid)))
    np.add.at(values, (id_index, col), history[value_col].to_numpy(dtype=float))
    first = np.full(len(ids), len(grid))
    np.minimum.at(first, id_index, col)
    values[np.arange(len(grid))[None, :] < first[:, None]] = np.nan
    return Panel(ids=ids, dates=pd.DatetimeIndex(grid), values=values, freq=freq)


def forecast_panel(panel: Panel, horizon: int, *, season_length: int | None = None,
                   alpha: float = 0.1) -> PanelForecast:
    """Baseline: SES for smooth series, SBA for intermittent ones (ADI > 1.32)."""
    y = np.nan_to_num(panel.values, nan=0.0)
    observed = ~np.isnan(panel.values)
    nonzero = (y > 0) & observed
    n_obs = observed.sum(axis=1)
    adi = np.where(nonzero.sum(axis=1) > 0, n_obs / np.maximum(nonzero.sum(axis=1), 1), np.inf)
    level = _ses_levels(y, observed, alpha)
    sba = _sba(y, observed, alpha)
    intermittent = adi > 1.32
    point_1 = np.where(intermittent, sba, level)
    residual = np.where(observed, y - point_1[:, None], np.nan)
    with np.errstate(all="ignore"):
        sigma = np.nan_to_num(np.nanstd(residual, axis=1), nan=0.0)
    model = np.where(intermittent, "SBA", "SES")
    model = np.where(nonzero.sum(axis=1) == 0, "Zero", model)
    demand_class = np.where(nonzero.sum(axis=1) == 0, "dead",
                            np.where(intermittent, "intermittent", "smooth"))
    dates = pd.date_range(panel.dates[-1], periods=horizon + 1,
                          freq=_FREQ_OFFSETS[panel.freq])[1:] if len(panel.dates) else \
        pd.DatetimeIndex([])
    point = np.repeat(np.maximum(point_1, 0.0)[:, None], horizon, axis=1)
    return PanelForecast(ids=panel.ids, dates=dates, point=point, model=model, sigma=sigma,
                         demand_class=demand_class)


def _ses_levels(y: np.ndarray, observed: np.ndarray, alpha: float) -> np.ndarray:
    level = np.full(y.shape[0], np.nan)
    for t in range(y.shape[1]):
        obs = observed[:, t]
        start = obs & np.isnan(level)
        level = np.where(start, y[:, t], level)
        update = obs & ~start
        level = np.where(update, level + alpha * (y[:, t] - level), level)
    return np.nan_to_num(level, nan=0.0)


def _sba(y: np.ndarray, observed: np.ndarray, alpha: float) -> np.ndarray:
    size = np.full(y.shape[0], np.nan)
    interval = np.full(y.shape[0], np.nan)
    gap = np.zeros(y.shape[0])
    for t in range(y.shape[1]):
        gap = gap + observed[:, t]
        hit = observed[:, t] & (y[:, t] > 0)
        first = hit & np.isnan(size)
        size = np.where(first, y[:, t], np.where(hit, size + alpha * (y[:, t] - size), size))
        interval = np.where(first, gap,
                            np.where(hit, interval + alpha * (gap - interval), interval))
        gap = np.where(hit, 0.0, gap)
    with np.errstate(all="ignore"):
        return np.nan_to_num(0.95 * size / interval, nan=0.0)


def forecast(history: pd.DataFrame, horizon: int, *, freq: str = "D",
             season_length: int | None = None, quantiles: Sequence[float] = (),
             id_col: str = "item_id", date_col: str = "date",
             value_col: str = "quantity") -> pd.DataFrame:
    """Forecast every series of a tidy frame; returns item_id, step, date, forecast, model, q*."""
    from scipy.stats import norm

    panel = to_panel(history, freq=freq, id_col=id_col, date_col=date_col, value_col=value_col)
    result = forecast_panel(panel, horizon, season_length=season_length)
    n, h = result.point.shape
    frame = pd.DataFrame({
        "item_id": np.repeat(result.ids, h),
        "step": np.tile(np.arange(1, h + 1), n),
        "date": np.tile(result.dates.to_numpy(), n),
        "forecast": result.point.ravel(),
        "model": np.repeat(result.model, h),
    })
    for q in quantiles:
        spread = np.repeat(result.sigma, h) * norm.ppf(q)
        frame[f"q{q:g}"] = np.maximum(frame["forecast"] + spread, 0.0)
    return frame
