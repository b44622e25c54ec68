"""Data behind a stored run's charts: the demand history of the charted items, read again from
the org's inventory source, and their forecast with its interval.

The stored RunSummary keeps numbers, not series; a report written later (``restock report``,
``restock runs show --format html``) asks the source for the history of the few items it
charts and forecasts them as of the run's planning date. Charts without this data still show
the projected stock with the order's arrival.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from restock.config import OrgConfig
from restock.connectors import Scope, open_connector
from restock.domain import RunSummary
from restock.log import get_logger
from restock.report.charts import pick_items

log = get_logger("restock.report")
QUANTILES = (0.05, 0.95)


def chart_frames(config: OrgConfig, summary: RunSummary, *, limit: int = 6
                 ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(history, forecasts)`` of the items the report charts, or ``(None, None)`` when the
    source cannot say (the report is still written, with what the summary knows)."""
    skus = sorted({item.sku for item in pick_items(summary, limit * 2)})
    if not skus:
        return None, None
    try:
        history = _history(config, summary, skus)
    except Exception as err:  # noqa: BLE001 - a chart's data must never stop the report
        log.warning("report.history_unavailable", org=summary.org, error=str(err))
        return None, None
    return history, _forecasts(history, summary)


def _history(config: OrgConfig, summary: RunSummary, skus: list[str]) -> pd.DataFrame:
    as_of = summary.as_of or summary.started_at.date()
    scope = Scope(skus=tuple(skus), since=as_of - timedelta(days=config.forecast.history_days))
    with open_connector(config, "source") as source:
        history = source.pull(scope).history
    history = history[history["sku"].isin(skus)]      # a source may ignore the scope's SKUs
    return history[pd.to_datetime(history["date"]).dt.date <= as_of]


def _forecasts(history: pd.DataFrame, summary: RunSummary) -> pd.DataFrame | None:
    from restock.forecast import forecast

    lines = [ln for o in (*summary.orders, *summary.held) for ln in o.lines]
    horizon = int(max([ln.lead_time_days + (ln.review_period_days or 0) for ln in lines],
                      default=28))
    as_of = pd.Timestamp(summary.as_of or summary.started_at.date())
    daily = history.assign(date=pd.to_datetime(history["date"])) \
        .groupby(["sku", "date"], as_index=False, observed=True)["quantity"].sum()  # locations
    try:
        return forecast(daily.rename(columns={"sku": "item_id"}), max(horizon, 7),
                        quantiles=QUANTILES, end=as_of)
    except Exception as err:  # noqa: BLE001 - history alone still makes a useful chart
        log.warning("report.forecast_unavailable", org=summary.org, error=str(err))
        return None
