"""Consumption forecasting: classify each series, choose a model, forecast with uncertainty.

The contract the rest of restock relies on:

- ``forecast_panel(panel, horizon, ...) -> PanelForecast`` on a dense ``Panel`` (series × periods).
- ``forecast(history, horizon, ...) -> DataFrame`` the library/CLI face on a tidy frame
  (item_id, date, quantity) giving item_id, step, date, forecast, model and one column per quantile.
- ``PanelForecast.demand_over(periods)`` → mean and standard deviation of total demand over the
  next ``periods`` periods per series (what safety stock needs), never negative.
"""

from __future__ import annotations

from restock.forecast.panel import Panel, PanelForecast, forecast, forecast_panel, to_panel

__all__ = ["Panel", "PanelForecast", "forecast", "forecast_panel", "to_panel"]
