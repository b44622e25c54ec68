"""A run summary as an email: a plain-text part and a light HTML part (inline styles only,
as mail clients drop style sheets), plus a subject line."""

from __future__ import annotations

from restock.domain import RunSummary
from restock.report.facts import count, headline
from restock.report.html import environment, report_context
from restock.report.markdown import render_markdown


def email_subject(summary: RunSummary) -> str:
    """``restock acme 2026-11-25: 12 lines ordered, 2 held, 1 at risk``."""
    h = headline(summary)
    when = (summary.as_of or summary.started_at.date()).isoformat()
    return (f"restock {summary.org} {when}: {count(h.lines_ordered, 'line')} ordered, "
            f"{h.lines_held} held, {h.at_risk} at risk")


def render_email(summary: RunSummary, *, report_url: str | None = None) -> tuple[str, str]:
    """``(text, html)`` bodies of the summary email; the HTML has no charts and no scripts."""
    text = render_markdown(summary)
    if report_url:
        text += f"\nFull report: {report_url}\n"
    context = report_context(summary, max_charts=0)
    html = environment().get_template("email.html.j2").render(**context, report_url=report_url)
    return text, html
