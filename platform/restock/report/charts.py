"""Charts for the items that matter most: demand history, forecast with its interval, and the
projected stock with this order's arrival. Drawn with matplotlib (Agg) as inline SVG."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from restock.domain import OrderLine, RunSummary
from restock.report.facts import headline

_HISTORY_DAYS = 180


@dataclass(frozen=True)
class ChartItem:
    """An item worth a chart and why it was picked."""

    sku: str
    why: str
    line: OrderLine | None = None


def pick_items(summary: RunSummary, limit: int = 6,
               drawable: Callable[[ChartItem], bool] = lambda item: True) -> list[ChartItem]:
    """Largest spend and highest risk first, alternating, without repeats, only those
    ``drawable`` accepts (an item with no order line and no data has nothing to show)."""
    h = headline(summary)
    lines = [ln for o in (*h.ordered_orders, *h.held_orders) for ln in o.lines]
    by_sku = {ln.sku: ln for ln in lines}
    spend = [ChartItem(ln.sku, f"largest spend ({ln.value:,.2f})", ln)
             for ln in sorted(lines, key=lambda ln: -ln.value)[:limit * 2]]
    risk = [ChartItem(r.sku, "projected stockout", by_sku.get(r.sku)) for r in h.stockouts]
    risk += [ChartItem(s.sku, "not ordered, at risk", None) for s in h.skipped
             if (s.shortfall_risk or 0) > 0]
    chosen: dict[str, ChartItem] = {}
    for item in _interleave(spend, risk):
        if len(chosen) >= limit:
            break
        if item.sku not in chosen and drawable(item):
            chosen[item.sku] = item
    return list(chosen.values())


def _interleave(a: list[ChartItem], b: list[ChartItem]) -> list[ChartItem]:
    out: list[ChartItem] = []
    for i in range(max(len(a), len(b))):
        out += [x[i] for x in (a, b) if i < len(x)]
    return out


def tidy_by_sku(frame: pd.DataFrame | None, skus: list[str]) -> dict[str, pd.DataFrame]:
    """Rows of a history or forecast frame (``sku`` or ``item_id`` column) for the given SKUs."""
    if frame is None or frame.empty:
        return {}
    key = "sku" if "sku" in frame.columns else "item_id"
    part = frame[frame[key].isin(skus)]   # before any conversion: history may be millions of rows
    return {str(sku): group for sku, group in part.groupby(key, observed=True)}


def render_chart(item: ChartItem, as_of: date, history: pd.DataFrame | None,
                 forecast: pd.DataFrame | None) -> str:
    """One item's chart as an inline ``<svg>`` element (no XML prolog, text kept as text)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = 2 if item.line is not None else 1
    # Fixed margins: constrained layout costs more than the drawing itself.
    fig = Figure(figsize=(7.2, 2.3 * rows))
    height = 2.3 * rows
    fig.subplots_adjust(left=0.09, right=0.98, top=1 - 0.28 / height, bottom=0.45 / height,
                        hspace=0.6)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    forecast = _within_cover(forecast, item.line, as_of)
    _demand_panel(axes[0], as_of, history, forecast)
    if item.line is not None:
        _stock_panel(axes[1], item.line, as_of, forecast)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": item.sku}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(buffer.getvalue(), prefix=re.sub(r"[^A-Za-z0-9_-]", "_", item.sku) + "-")


def _within_cover(forecast: pd.DataFrame | None, line: OrderLine | None,
                  as_of: date) -> pd.DataFrame | None:
    """The forecast over the days this order covers (lead time + review), not the whole run's
    longest horizon."""
    if forecast is None or forecast.empty:
        return forecast
    days = line.lead_time_days + (line.review_period_days or 0) if line is not None else 28
    end = pd.Timestamp(as_of) + pd.Timedelta(days=max(days, 7))
    return forecast[pd.to_datetime(forecast["date"]) <= end]


def _demand_panel(ax, as_of: date, history: pd.DataFrame | None,
                  forecast: pd.DataFrame | None) -> None:
    start = pd.Timestamp(as_of) - pd.Timedelta(days=_HISTORY_DAYS)
    if history is not None and not history.empty:
        daily = history.assign(date=pd.to_datetime(history["date"]))
        daily = daily[daily["date"] >= start].groupby("date")["quantity"].sum()
        # History lists days with use only: a day without one is a zero, not a gap to bridge.
        daily = daily.reindex(pd.date_range(start, pd.Timestamp(as_of)), fill_value=0)
        ax.fill_between(daily.index.to_numpy(), daily.to_numpy(), step="mid", color="#8da0b6",
                        lw=0, label="history")
    if forecast is not None and not forecast.empty:
        fc = forecast.assign(date=pd.to_datetime(forecast["date"])).sort_values("date")
        when = fc["date"].to_numpy()
        ax.plot(when, fc["forecast"].to_numpy(), color="#1f5fa8", lw=1.6, label="forecast")
        quantiles = sorted(c for c in fc.columns if re.fullmatch(r"q[0-9.]+", str(c)))
        if len(quantiles) >= 2:
            ax.fill_between(when, fc[quantiles[0]].to_numpy(), fc[quantiles[-1]].to_numpy(),
                            color="#1f5fa8", alpha=0.18, lw=0,
                            label=f"{quantiles[0]}–{quantiles[-1]}")
    ax.axvline(pd.Timestamp(as_of), color="#555", lw=0.8, ls=":")
    ax.set_ylabel("units / day", fontsize=8)
    _style(ax, "Demand: history and forecast")


def _stock_panel(ax, line: OrderLine, as_of: date, forecast: pd.DataFrame | None) -> None:
    cover = line.lead_time_days + (line.review_period_days or 0)
    horizon = int(max(cover * 1.5, 28))
    rate = _daily_rate(line, cover, forecast)
    days = np.arange(horizon + 1)
    arrival = round(line.lead_time_days)
    stock = line.inventory_position - rate * days + np.where(days >= arrival, line.quantity, 0.0)
    # numpy datetimes: matplotlib converts pandas' one Timestamp object at a time.
    dates = np.datetime64(as_of, "D") + days.astype("timedelta64[D]")
    without = line.inventory_position - rate * days
    ax.plot(dates, without, color="#b0413e", lw=1, ls="--", label="without this order")
    ax.step(dates, stock, where="post", color="#2e7d32", lw=1.6, label="with this order")
    ax.axhline(line.safety_stock, color="#c98a00", lw=0.8, ls=":", label="safety stock")
    ax.axhline(0, color="#333", lw=0.6)
    arrives = pd.Timestamp(as_of) + timedelta(days=arrival)
    ax.axvline(arrives, color="#2e7d32", lw=0.8, ls=":")
    # At the bottom: the legend sits at the top left.
    ax.annotate("order arrives", (arrives, ax.get_ylim()[0]), fontsize=7, color="#2e7d32",
                va="bottom", ha="left", xytext=(3, 2), textcoords="offset points")
    ax.set_ylabel("units", fontsize=8)
    _style(ax, "Projected stock")


def _daily_rate(line: OrderLine, cover: float, forecast: pd.DataFrame | None) -> float:
    if forecast is not None and not forecast.empty:
        return float(forecast["forecast"].mean())
    return line.forecast_lead_review / cover if cover > 0 else 0.0


def _style(ax, title: str) -> None:
    # An explicit y spares matplotlib measuring every tick label to place the title.
    ax.set_title(title, fontsize=9, loc="left", y=1.0, pad=4)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, frameon=False, loc="upper left", ncols=3)
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.xaxis.get_offset_text().set_fontsize(7)


def _inline(svg: str, prefix: str) -> str:
    """Drop the prolog and metadata, let the chart scale, and give its ids a prefix: several
    charts share one document, and matplotlib numbers ids from 1 in each."""
    svg = svg[svg.find("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'width="[0-9.]+pt" height="[0-9.]+pt"', 'width="100%"', svg, count=1)
    svg = re.sub(r'\bid="', f'id="{prefix}', svg)
    svg = svg.replace("url(#", f"url(#{prefix}")
    return re.sub(r'href="#', f'href="#{prefix}', svg)
