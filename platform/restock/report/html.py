"""The HTML report: one self-contained file (inline CSS and SVG, no internet asset).

The first screen answers "what did it order, what needs me, what is at risk"; below come every
order line explained in plain words, held and skipped lines with why, quarantined data, accuracy,
the comparison with the previous run and charts for the items that matter most.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from restock.domain import PurchaseOrder, RunSummary
from restock.report import charts
from restock.report.facts import (
    SERVICE_NOTE,
    Headline,
    accuracy_text,
    common_horizon,
    compare,
    count,
    explain_line,
    explain_skipped,
    explain_stockout,
    fmt_money,
    fmt_pct,
    fmt_qty,
    headline,
    held_reason_text,
    service_text,
    sku_changes,
)

_FIRST_SCREEN_ITEMS = 5


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment of restock's templates (reports and the review page)."""
    env = Environment(loader=PackageLoader("restock.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(qty=fmt_qty, money=fmt_money, pct=fmt_pct, count=count)
    return env


def render_html(summary: RunSummary, *, history: pd.DataFrame | None = None,
                forecasts: pd.DataFrame | None = None, previous: RunSummary | None = None,
                max_charts: int = 6, actions: bool = False) -> str:
    """The report as one HTML document.

    ``history`` (sku or item_id, date, quantity) and ``forecasts`` (the frame
    ``restock.forecast.forecast`` returns) feed the charts; without them the charts show what the
    summary alone knows (projected stock). ``previous`` adds the comparison section.
    """
    return environment().get_template("report.html.j2").render(
        **report_context(summary, history=history, forecasts=forecasts, previous=previous,
                         max_charts=max_charts))


def report_context(summary: RunSummary, *, history: pd.DataFrame | None = None,
                   forecasts: pd.DataFrame | None = None, previous: RunSummary | None = None,
                   max_charts: int = 6) -> dict[str, Any]:
    """Everything the report template shows (the review page reuses it)."""
    h = headline(summary)
    added, dropped = sku_changes(summary, previous)
    return {
        "s": summary, "h": h, "cur": h.currency,
        "when": (summary.as_of or summary.started_at.date()).isoformat(),
        "budget_pct": _budget_pct(h),
        "held_top": [(o, held_reason_text(o)) for o in h.held_orders[:_FIRST_SCREEN_ITEMS]],
        "risk_top": _risk_rows(h)[:_FIRST_SCREEN_ITEMS], "risk_rows": _risk_rows(h),
        "stockout_rows": [(r.sku, r.description, explain_stockout(r)) for r in h.stockouts],
        "held": [_order_view(o, h.currency) for o in h.held_orders],
        "orders": [_order_view(o, h.currency) for o in h.ordered_orders],
        "skipped": [(s, explain_skipped(s)) for s in h.skipped],
        "accuracy": accuracy_text(summary), "changes": compare(summary, previous),
        "service": [(s.group, service_text(s)) for s in summary.service],
        "service_note": SERVICE_NOTE,
        "previous": previous, "added": added, "dropped": dropped,
        "charts": _charts(summary, history, forecasts, max_charts),
    }


def _budget_pct(h: Headline) -> float | None:
    return None if h.budget_used is None else min(h.budget_used * 100, 100.0)


def _risk_rows(h: Headline) -> list[tuple[str, str, str]]:
    rows = [(r.sku, r.description, explain_stockout(r)) for r in h.stockouts]
    rows += [(s.sku, "", explain_skipped(s)) for s in h.skipped if (s.shortfall_risk or 0) > 0]
    rows += [("", "", message) for message in h.risk_messages]
    return rows


def _order_view(order: PurchaseOrder, currency: str) -> dict[str, Any]:
    cur = order.currency or currency
    shared = common_horizon(order.lines)
    rows = [(ln.sku, ln.description, fmt_qty(ln.quantity), fmt_money(ln.unit_price),
             fmt_money(ln.value), explain_line(ln, short=True, horizon=shared is None))
            for ln in order.lines]
    return {"order": order, "currency": cur, "total": fmt_money(order.total, cur), "rows": rows,
            "why": held_reason_text(order) if order.held_reasons else "", "shared": shared}


def _charts(summary: RunSummary, history: pd.DataFrame | None, forecasts: pd.DataFrame | None,
            limit: int) -> list[dict[str, str]]:
    if limit <= 0:
        return []
    candidates = charts.pick_items(summary, limit * 2)
    skus = [item.sku for item in candidates]
    hist, fc = charts.tidy_by_sku(history, skus), charts.tidy_by_sku(forecasts, skus)
    items = charts.pick_items(summary, limit, lambda item: item.line is not None
                              or item.sku in hist or item.sku in fc)
    as_of = summary.as_of or summary.started_at.date()
    return [{"sku": item.sku, "why": item.why,
             "explain": explain_line(item.line) if item.line else "",
             "svg": charts.render_chart(item, as_of, hist.get(item.sku), fc.get(item.sku))}
            for item in items]
