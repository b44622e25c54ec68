"""Consumption forecasting: classify each series, choose a model, forecast with uncertainty.

The contract the rest of restock relies on:

- ``to_panel(history, freq=, id_col=, date_col=, value_col=, end=, start=) -> Panel``: tidy rows
  to a dense series × periods array (NaN before a series starts); the input rules it applied are
  counted in ``Panel.notes``.
- ``forecast_panel(panel, horizon, *, season_length=None, time_budget_seconds=0, ...)
  -> PanelForecast``: demand class, model chosen by rolling-origin backtest, point forecast
  (never negative), ``params``, ``mase``, ``rmsse``, ``confidence``, ``sigma`` and
  ``chosen_by`` (why that model: ``select.CHOSEN_BY``) per series; ``PanelForecast.catalog()``
  gives them as one row per series.
- ``PanelForecast.demand_over(periods)`` → mean and sd of total demand over the next
  ``periods``; ``PanelForecast.demand_quantiles(periods, qs)`` → its quantiles.
- ``forecast(history, horizon, ...) -> DataFrame`` the library face on a tidy frame
  (item_id, date, quantity) giving item_id, step, date, forecast, model and one column per
  quantile (``q0.95``).

Modules: fast (the vectorised families), classify, select (backtest and choice), quantiles,
models (statsmodels under a time budget), io and run (files in chunks, the CLI's engine).
docs/forecasting.md describes the methods and every rule for odd input.
"""

from __future__ import annotations

from restock.forecast.panel import (
    Panel,
    PanelForecast,
    forecast,
    forecast_frame,
    forecast_panel,
    to_panel,
)

__all__ = ["Panel", "PanelForecast", "forecast", "forecast_frame", "forecast_panel", "to_panel"]
