"""A run summary as a Slack incoming-webhook payload (Block Kit), within Slack's limits."""

from __future__ import annotations

from typing import Any

from restock.domain import RunSummary
from restock.report.facts import (
    count,
    explain_skipped,
    explain_stockout,
    fmt_money,
    fmt_pct,
    headline,
    held_reason_text,
    service_text,
)

# Slack refuses a section text over 3,000 characters and a message over 50 blocks.
_TEXT_LIMIT = 2900
_LIST_LIMIT = 10


def render_slack_blocks(summary: RunSummary, *, report_url: str | None = None) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [...]}``: headline numbers, held orders, risks."""
    h = headline(summary)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"restock · {summary.org} · run {summary.run_id}"[:150])},
        {"type": "section", "fields": _headline_fields(summary)},
    ]
    if h.held_orders:
        rows = [f"• *{_esc(o.supplier)}* {fmt_money(o.total, o.currency or h.currency)} "
                f"({count(len(o.lines), 'line')}): {_esc(held_reason_text(o))}"
                for o in h.held_orders]
        blocks.append(_list_section(":raised_hand: *Waiting for your approval*", rows))
    risks = [f"• *{_esc(r.sku)}* {_esc(explain_stockout(r))}" for r in h.stockouts]
    risks += [f"• *{_esc(s.sku)}* {_esc(explain_skipped(s))}" for s in h.skipped]
    risks += [f"• {_esc(m)}" for m in h.risk_messages]
    if risks:
        blocks.append(_list_section(":warning: *At risk*", risks))
    if summary.service:
        blocks.append(_list_section(":dart: *Service delivered*", [
            f"• *{_esc(s.group)}* {_esc(service_text(s))}" for s in summary.service]))
    if summary.errors:
        blocks.append(_list_section(":x: *Errors*", [f"• {_esc(e)}" for e in summary.errors]))
    blocks.append({"type": "context", "elements": [_mrkdwn(_context(summary, report_url))]})
    return {"text": _fallback(summary), "blocks": blocks}


def _headline_fields(summary: RunSummary) -> list[dict[str, str]]:
    h = headline(summary)
    spend = fmt_money(h.spend, h.currency)
    if h.budget:
        spend += f" of {fmt_money(h.budget, h.currency)} ({fmt_pct(h.budget_used)})"
    return [
        _mrkdwn(f"*Ordered*\n{count(h.lines_ordered, 'line')}, "
                f"{count(len(h.ordered_orders), 'order')}"),
        _mrkdwn(f"*Spend*\n{spend}"),
        _mrkdwn(f"*Needs you*\n{count(h.lines_held, 'line')} in "
                f"{count(len(h.held_orders), 'held order')}"),
        _mrkdwn(f"*At risk*\n{count(h.at_risk, 'item')}"),
        _mrkdwn(f"*Data quarantined*\n{count(h.quarantined, 'record')}"),
        _mrkdwn(f"*Status*\n{summary.status.value} ({summary.mode.value})"),
    ]


def _list_section(title: str, rows: list[str]) -> dict[str, Any]:
    shown = rows[:_LIST_LIMIT]
    if len(rows) > len(shown):
        shown.append(f"… and {len(rows) - len(shown)} more in the report")
    text = title + "\n" + "\n".join(shown)
    if len(text) > _TEXT_LIMIT:
        text = text[:_TEXT_LIMIT - 1] + "…"
    return {"type": "section", "text": _mrkdwn(text)}


def _fallback(summary: RunSummary) -> str:
    h = headline(summary)
    return (f"restock {summary.org}: {count(h.lines_ordered, 'line')} ordered "
            f"({fmt_money(h.spend, h.currency)}), {h.lines_held} held, {h.at_risk} at risk")


def _context(summary: RunSummary, report_url: str | None) -> str:
    when = summary.as_of.isoformat() if summary.as_of else summary.started_at.isoformat()
    text = f"as of {when}"
    return text + (f" · <{report_url}|full report>" if report_url else "")


def _esc(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}
