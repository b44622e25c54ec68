"""Slack-compatible incoming webhook: the run summary as a chat message with blocks.

YAML::

    summary_sinks:
      - connector: slack
        url: ${SLACK_WEBHOOK_URL}     # the webhook URL is a credential: a reference, never literal

Works with Slack and with chats that accept Slack's incoming-webhook format (Mattermost,
Rocket.Chat). The message holds the headline numbers, held orders and risks.
"""

from __future__ import annotations

from typing import Any

from restock.config import SecretRef
from restock.connectors import ConnectorContext, SummarySink
from restock.domain import RunSummary
from restock.errors import ConfigError
from restock.http import HttpClient, HttpOptions, client

_MAX_ITEMS = 10
# Slack refuses (HTTP 400 invalid_blocks) a message over these; a refused summary is never seen.
_MAX_BLOCKS, _MAX_TEXT, _MAX_HEADER = 50, 3000, 150


class SlackSettings(HttpOptions):
    url: SecretRef


class SlackSummarySink(SummarySink):
    """Posts ``{"text": ..., "blocks": [...]}`` to an incoming-webhook URL."""

    Settings = SlackSettings
    name = "slack"
    settings: SlackSettings

    def __init__(self, settings: SlackSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        url = settings.url.get_secret_value()
        if not url.startswith(("https://", "http://")):
            raise ConfigError("the webhook URL must start with https://", field="url")
        self._url = url
        self.http: HttpClient = client(settings.http_settings(url), "slack", hide_paths=True)

    def post(self, summary: RunSummary) -> None:
        self.http.request("POST", self._url, json=within_limits(message(summary)))

    def close(self) -> None:
        self.http.close()


def message(summary: RunSummary) -> dict[str, Any]:
    """The webhook body: restock.report's blocks when available, a plain fallback otherwise."""
    try:
        from restock.report import render_slack_blocks
    except ImportError:
        return {"text": headline(summary), "blocks": _fallback_blocks(summary)}
    rendered = render_slack_blocks(summary)
    if isinstance(rendered, dict):            # a whole message: {"text": ..., "blocks": [...]}
        return {"text": headline(summary), **rendered}
    return {"text": headline(summary), "blocks": list(rendered)}


def within_limits(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` cut to what Slack accepts: at most 50 blocks, texts of at most 3,000 characters."""
    blocks = [_clip_block(b) for b in body.get("blocks", [])]
    if len(blocks) > _MAX_BLOCKS:
        left = len(blocks) - _MAX_BLOCKS + 1
        blocks = blocks[:_MAX_BLOCKS - 1] + [{"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"… {left} more blocks in the full report"}]}]
    return {**body, "blocks": blocks}


def _clip_block(block: dict[str, Any]) -> dict[str, Any]:
    text = block.get("text")
    if not isinstance(text, dict) or not isinstance(text.get("text"), str):
        return block
    limit = _MAX_HEADER if block.get("type") == "header" else _MAX_TEXT
    if len(text["text"]) <= limit:
        return block
    return {**block, "text": {**text, "text": text["text"][:limit - 1] + "…"}}


def headline(summary: RunSummary) -> str:
    spend = f"{summary.spend:,.2f} {summary.currency}".strip()
    budget = f" of {summary.budget:,.2f}" if summary.budget else ""
    return (f"restock {summary.org}: {summary.status.value}, {len(summary.orders)} orders "
            f"({spend}{budget}), {len(summary.held)} held, {len(summary.skipped)} skipped")


def _fallback_blocks(summary: RunSummary) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"restock · {summary.org}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": headline(summary)}}]
    held = [f"• {po.supplier}: {po.total:,.2f} {po.currency} — "
            + "; ".join(r.message for r in po.held_reasons) for po in summary.held[:_MAX_ITEMS]]
    if held:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": "*Held for approval*\n" + "\n".join(held)}})
    risks = [f"• {r.message}" for r in summary.risks[:_MAX_ITEMS]]
    if risks:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": "*Risks*\n" + "\n".join(risks)}})
    if summary.errors:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Errors*\n"
                       + "\n".join(f"• {e}" for e in summary.errors[:_MAX_ITEMS])}})
    return blocks


summary_sink = SlackSummarySink
