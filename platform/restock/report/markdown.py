"""A run summary as Markdown, for chat messages and summary files."""

from __future__ import annotations

from restock.domain import PurchaseOrder, RunSummary
from restock.report.facts import (
    SERVICE_NOTE,
    accuracy_text,
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
)


def render_markdown(summary: RunSummary, *, previous: RunSummary | None = None) -> str:
    """The whole run in Markdown: headline first, then orders, held, skipped, risks, data."""
    sections = [_title(summary), _headline(summary), _held(summary), _risks(summary),
                _orders(summary), _skipped(summary), _quarantined(summary),
                _accuracy(summary), _service(summary), _comparison(summary, previous),
                _errors(summary)]
    return "\n\n".join(s for s in sections if s) + "\n"


def _title(summary: RunSummary) -> str:
    when = summary.as_of.isoformat() if summary.as_of else summary.started_at.date().isoformat()
    return (f"# restock run {summary.run_id} · {summary.org} · {when}\n\n"
            f"Status **{summary.status.value}**, mode {summary.mode.value}.")


def _headline(summary: RunSummary) -> str:
    h = headline(summary)
    budget = f" of budget {fmt_money(h.budget, h.currency)} ({fmt_pct(h.budget_used)})" \
        if h.budget else ""
    rows = [
        f"- **Ordered:** {count(h.lines_ordered, 'line')} in "
        f"{count(len(h.ordered_orders), 'order')}, "
        f"spend {fmt_money(h.spend, h.currency)}{budget}",
        f"- **Needs you:** {count(h.lines_held, 'line')} in "
        f"{count(len(h.held_orders), 'held order')} "
        f"({fmt_money(h.held_value, h.currency)})",
        f"- **At risk:** {count(h.at_risk, 'item')} "
        f"({count(len(h.stockouts), 'projected stockout')}, "
        f"{count(len(h.skipped), 'line')} not ordered)",
        f"- **Data quarantined:** {count(h.quarantined, 'record')}",
    ]
    return "## At a glance\n\n" + "\n".join(rows)


def _order_block(order: PurchaseOrder, currency: str) -> str:
    head = (f"### {order.supplier} · {order.order_id} · {order.status} · "
            f"{fmt_money(order.total, order.currency or currency)}")
    rows = [f"- **{line.sku}** {_escape(line.description)} — {explain_line(line)} "
            f"({fmt_money(line.value, order.currency or currency)})" for line in order.lines]
    return head + "\n\n" + "\n".join(rows)


def _orders(summary: RunSummary) -> str:
    h = headline(summary)
    if not h.ordered_orders:
        return "## Orders\n\nNothing was ordered."
    return "## Orders\n\n" + "\n\n".join(_order_block(o, h.currency) for o in h.ordered_orders)


def _held(summary: RunSummary) -> str:
    h = headline(summary)
    if not h.held_orders:
        return ""
    blocks = [_order_block(o, h.currency) + f"\n\n  Held because: {held_reason_text(o)}"
              for o in h.held_orders]
    return "## Waiting for your approval\n\n" + "\n\n".join(blocks)


def _risks(summary: RunSummary) -> str:
    h = headline(summary)
    rows = [f"- **{r.sku}** {_escape(r.description)} — {explain_stockout(r)}" for r in h.stockouts]
    rows += [f"- {_escape(message)}" for message in h.risk_messages]
    return "## At risk\n\n" + "\n".join(rows) if rows else ""


def _skipped(summary: RunSummary) -> str:
    h = headline(summary)
    if not h.skipped:
        return ""
    rows = [f"- **{s.sku}** ({s.supplier or 'no supplier'}) — {explain_skipped(s)}"
            for s in h.skipped]
    return "## Not ordered\n\n" + "\n".join(rows)


def _quarantined(summary: RunSummary) -> str:
    if not summary.quarantined:
        return ""
    rows = [f"- `{q.record}` ({q.dataset}): {q.reason}" for q in summary.quarantined]
    return "## Data set aside\n\n" + "\n".join(rows)


def _accuracy(summary: RunSummary) -> str:
    text = accuracy_text(summary)
    rows = [f"- {c.sku}: {c.previous or 'none'} → {c.current}"
            + (f" ({c.reason})" if c.reason else "") for c in summary.model_changes]
    if text is None and not rows:
        return ""
    body = f"Latest: {text}." if text else ""
    if len(summary.accuracy) > 1:
        body += "\n\n| run | as of | MASE | bias |\n|---|---|---|---|\n" + "\n".join(
            f"| {p.run_id} | {p.as_of or ''} | {_num(p.mase)} | {_bias(p.bias)} |"
            for p in summary.accuracy)
    if rows:
        body += "\n\nModel changes:\n\n" + "\n".join(rows)
    return "## Forecast accuracy\n\n" + body.strip()


def _service(summary: RunSummary) -> str:
    if not summary.service:
        return ""
    rows = [f"- **{_escape(s.group)}** — {service_text(s)}" for s in summary.service]
    return "## Service delivered\n\n" + "\n".join(rows) + f"\n\n_{SERVICE_NOTE}._"


def _comparison(summary: RunSummary, previous: RunSummary | None) -> str:
    changes = compare(summary, previous)
    if not changes:
        return ""
    currency = headline(summary).currency
    def show(value: float, money: bool) -> str:
        return fmt_money(value, currency) if money else fmt_qty(value)
    rows = [f"| {c.label} | {show(c.now, c.money)} | {show(c.before, c.money)} |" for c in changes]
    assert previous is not None
    return (f"## Compared with run {previous.run_id}\n\n| | now | before |\n|---|---|---|\n"
            + "\n".join(rows))


def _errors(summary: RunSummary) -> str:
    if not summary.errors:
        return ""
    return "## Errors\n\n" + "\n".join(f"- {_escape(e)}" for e in summary.errors)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _bias(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


def _escape(text: str) -> str:
    return text.replace("*", r"\*").replace("_", r"\_").replace("`", r"\`")
