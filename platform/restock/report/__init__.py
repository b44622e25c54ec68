"""Run summaries for people: Markdown, a self-contained HTML report with charts, Slack blocks and
email. Every renderer reads the same numbers (``restock.report.facts``), so every format agrees.
"""

from __future__ import annotations

from restock.report.email import email_subject, render_email
from restock.report.facts import explain_line, headline
from restock.report.html import render_html
from restock.report.markdown import render_markdown
from restock.report.slack import render_slack_blocks

__all__ = ["email_subject", "explain_line", "headline", "render_email", "render_html",
           "render_markdown", "render_slack_blocks"]
