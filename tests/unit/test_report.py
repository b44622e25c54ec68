"""The renderers: plain-words explanations, numbers that match the summary in every format,
self-contained HTML, Slack's limits, and the published JSON schema."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from restock.domain import OrderLine, Reason, ServiceDelivered
from restock.report import (
    email_subject,
    explain_line,
    headline,
    render_email,
    render_html,
    render_markdown,
    render_slack_blocks,
)
from restock.report.facts import fmt_money, fmt_qty, service_text
from restock.report.schema import schema_text
from tests.support.summaries import make_history, make_summary

ROOT = Path(__file__).resolve().parents[2]


def issue_line(**changes) -> OrderLine:
    base = dict(sku="A12", supplier="acme", quantity=240, unit_price=2.5, pack_size=120,
                lead_time_days=21, review_period_days=7, service_level=0.95,
                forecast_lead_review=180.2, safety_stock=95.4, inventory_position=30,
                order_up_to=275.6, on_hand=30, on_order=0)
    return OrderLine(**{**base, **changes})


def test_explain_line_says_the_whole_sentence():
    assert explain_line(issue_line()) == (
        "ordered 240 = 2 packs of 120: forecast 180 over 21 days lead time + 7 days review, "
        "safety stock 95 for 95% service, on hand 30, on order 0")


def test_explain_line_says_when_the_spread_was_learnt_from_past_windows():
    line = issue_line(reasons=[Reason(code="forecast", message="forecast 180 over 21 days lead "
                                      "time + 7 days review, spread 31 learnt from 9 closed "
                                      "windows of earlier runs", data={"spread_windows": 9})])
    assert explain_line(line) == (
        "ordered 240 = 2 packs of 120: forecast 180 over 21 days lead time + 7 days review, "
        "safety stock 95 for 95% service (spread learnt from 9 past windows), on hand 30, "
        "on order 0")
    assert "(spread learnt from 1 past window)" in explain_line(
        issue_line(reasons=[Reason(code="forecast", message="f", data={"spread_windows": 1})]),
        horizon=False)


def test_explain_line_names_the_forecasts_model_and_why_it_was_kept():
    def line(**data) -> OrderLine:
        return issue_line(reasons=[Reason(code="forecast", message="f", data=data)])

    assert explain_line(line(model="TSB", chosen_by="backtest")).startswith(
        "ordered 240 = 2 packs of 120: forecast 180 by TSB over 21 days lead time")
    assert explain_line(line(model="SES", chosen_by="steady"), horizon=False).startswith(
        "ordered 240 = 2 packs of 120: forecast 180 by SES (no other model clearly better), "
        "safety stock 95,")
    assert "forecast 180 by Croston (last run's model) over" in explain_line(
        line(model="Croston", chosen_by="previous"))
    for older in (line(), line(model="none")):       # a summary from before, or no forecast
        assert "forecast 180 over 21 days" in explain_line(older)


def test_explain_line_adds_other_reasons_and_position_when_it_differs():
    line = issue_line(quantity=500, inventory_position=20,
                      reasons=[Reason(code="moq", message="raised to the minimum order of 500")])
    text = explain_line(line, short=True)
    assert text.endswith("inventory position 20; raised to the minimum order of 500")
    assert not text.startswith("ordered")


def test_explain_line_reads_review_and_service_from_reasons_when_fields_are_absent():
    line = issue_line(review_period_days=None, service_level=None, pack_size=1, reasons=[
        Reason(code="forecast", message="f", data={"review_period_days": 14}),
        Reason(code="safety_stock", message="s", data={"service_level": 0.975})])
    assert explain_line(line) == ("ordered 240: forecast 180 over 21 days lead time + 14 days "
                                  "review, safety stock 95 for 97.5% service, on hand 30, "
                                  "on order 0")


class _Tables(HTMLParser):
    """Collects data-metric values and the rows of every order-line table."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._order: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-metric" in attrs:
            self.metrics[attrs["data-metric"]] = attrs["data-value"]
        if tag == "table" and "data-order" in attrs:
            self._order = attrs["data-order"]
            self.rows[self._order] = []
        elif tag == "tr" and self._order and self._cell is None:
            self._cell = []
        elif tag == "tr" and self._order:
            self.rows[self._order].append(self._cell)
            self._cell = []
        elif tag == "td" and self._cell is not None:
            self._cell.append("")

    def handle_endtag(self, tag):
        if tag == "tbody" and self._order:
            if self._cell:
                self.rows[self._order].append(self._cell)
            self._order, self._cell = None, None
        elif tag == "thead":
            self._cell = None

    def handle_data(self, data):
        if self._cell:
            self._cell[-1] += data.strip("\n")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_every_number_in_the_html_report_matches_the_summary():
    summary = make_summary(60, held_orders=2)
    parser = _Tables()
    parser.feed(render_html(summary, max_charts=0))
    h = headline(summary)
    assert float(parser.metrics["spend"]) == pytest.approx(summary.spend)
    assert float(parser.metrics["budget"]) == pytest.approx(summary.budget)
    assert int(parser.metrics["lines_ordered"]) == sum(len(o.lines) for o in summary.orders)
    assert int(parser.metrics["lines_held"]) == sum(len(o.lines) for o in summary.held) > 0
    assert float(parser.metrics["held_value"]) == pytest.approx(sum(o.total for o in summary.held))
    assert int(parser.metrics["quarantined"]) == len(summary.quarantined)
    assert int(parser.metrics["at_risk"]) == h.at_risk == 1
    assert summary.spend == pytest.approx(sum(o.total for o in summary.orders), abs=0.01)
    for order in (*summary.orders, *summary.held):
        rows = parser.rows[order.order_id]
        assert [r[0] for r in rows] == [line.sku for line in order.lines]
        for row, line in zip(rows, order.lines):
            sku, _desc, qty, price, value, why = row
            assert _number(qty) == line.quantity
            assert _number(price) == pytest.approx(line.unit_price)
            assert _number(value) == pytest.approx(line.value, abs=0.005)
            _check_explanation(why, line)


def _check_explanation(why: str, line: OrderLine) -> None:
    packs = re.match(r"(\d+) packs? of ([\d,]+):", why)
    if packs:
        assert int(packs[1]) * _number(packs[2]) == line.quantity
    found = dict(re.findall(r"(forecast|safety stock|on hand|on order) ([\d,.]+)", why))
    assert _number(found["forecast"]) == round(line.forecast_lead_review)
    assert _number(found["safety stock"]) == round(line.safety_stock)
    assert _number(found["on hand"]) == line.on_hand
    assert _number(found["on order"]) == line.on_order
    # The quantity closes the gap to the order-up-to level (or is raised by the MOQ).
    assert line.inventory_position + line.quantity >= line.order_up_to - 1e-6


def test_markdown_slack_and_email_say_the_same_numbers():
    summary = make_summary(30)
    h = headline(summary)
    spend = fmt_money(h.spend, "EUR")
    markdown = render_markdown(summary)
    slack = json.dumps(render_slack_blocks(summary), ensure_ascii=False)
    text, html = render_email(summary)
    for body in (markdown, slack, text, html):
        assert spend in body
        assert f"{h.lines_ordered} lines" in body
    for order in (*summary.orders, *summary.held):
        for line in order.lines:
            assert explain_line(line) in markdown
    assert f"{h.lines_ordered} lines ordered" in email_subject(summary)


def test_html_report_is_self_contained_and_has_charts_from_history_and_forecast():
    from restock.forecast import forecast

    summary = make_summary(12)
    history = make_history(summary, days=90)
    forecasts = forecast(history.rename(columns={"sku": "item_id"}), 28, quantiles=(0.05, 0.95))
    html = render_html(summary, history=history, forecasts=forecasts, max_charts=3)
    assert html.count("<svg") == 3
    assert "q0.05–q0.95" in html and "order arrives" in html
    assert not re.search(r"<script|<link|<img|@import|url\((?!#)", html)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "inline charts must not share element ids"
    external = set(re.findall(r'(?:src|href)="(https?:[^"]*)"', html))
    assert external == set()
    assert 'name="viewport"' in html and "@media print" in html


def test_a_skipped_item_without_data_gets_no_empty_chart():
    summary = make_summary(4, held_orders=0)
    html = render_html(summary, max_charts=10)
    assert html.count("<svg") == 4   # one per ordered line; SKU-90001 has nothing to draw


def test_report_compares_with_the_previous_run():
    now, before = make_summary(20, seed=1), make_summary(16, seed=2, run_id="run-0000")
    html = render_html(now, previous=before, max_charts=0)
    section = html[html.index('id="compare"'):]
    assert "Compared with run run-0000" in section
    assert fmt_money(before.spend, "EUR") in section and fmt_money(now.spend, "EUR") in section
    assert "SKU-00016" in section   # ordered now (20 lines), not before (16)
    assert "Compared with run run-0000" in render_markdown(now, previous=before)


def test_text_from_data_is_escaped_everywhere():
    summary = make_summary(4)
    evil = "<script>alert(1)</script> & *bold*"
    summary.held[0].held_reasons.append(Reason(code="x", message=evil))
    summary.service = [ServiceDelivered(group=evil, measure="cycle", target=0.95)]
    assert "<script>alert" not in render_html(summary, max_charts=0)
    assert "<script>alert" not in render_email(summary)[1]
    slack = json.dumps(render_slack_blocks(summary))
    assert "<script>" not in slack and "&lt;script&gt;" in slack


SPARES = "cycle service, target 95%: 91.2% delivered over 412 item-cycles in 12 closed cycles " \
    "of the last year → safety factor +0.31"
YOUNG = "fill rate, target 97.5%: no closed cycle yet"


def with_service(summary):
    summary.service = [
        ServiceDelivered(group="category:spares", measure="cycle", target=0.95, delivered=0.912,
                         item_cycles=412, cycles=12, shift=0.3071),
        ServiceDelivered(group="item:fill:0.975", measure="fill_rate", target=0.975)]
    return summary


def test_every_format_shows_the_service_each_group_delivered():
    summary = with_service(make_summary(6))
    markdown = render_markdown(summary)
    html = render_html(summary, max_charts=0)
    slack = render_slack_blocks(summary)
    text, mail = render_email(summary)
    section = markdown[markdown.index("## Service delivered"):]
    assert markdown.index("## Forecast accuracy") < markdown.index("## Service delivered")
    assert f"- **category:spares** — {SPARES}\n- **item:fill:0.975** — {YOUNG}\n" in section
    assert section in text
    for page in (html[html.index('<section id="service">'):], mail):
        assert f"<b>category:spares</b> — {SPARES}</li>" in page
        assert f"<b>item:fill:0.975</b> — {YOUNG}</li>" in page
    block = next(b["text"]["text"] for b in slack["blocks"]
                 if "Service delivered" in b.get("text", {}).get("text", ""))
    assert block.splitlines()[1:] == [f"• *category:spares* {SPARES}",
                                      f"• *item:fill:0.975* {YOUNG}"]


def test_a_run_without_service_groups_shows_no_service_section():
    summary = make_summary(6)
    assert summary.service == []
    bodies = (render_markdown(summary), render_html(summary, max_charts=0),
              json.dumps(render_slack_blocks(summary), ensure_ascii=False), *render_email(summary))
    for body in bodies:
        assert "Service delivered" not in body and "safety factor" not in body


def test_service_text_says_what_little_a_young_or_unshifted_group_has():
    def group(**fields):
        return service_text(ServiceDelivered(group="org", measure="cycle", target=0.9, **fields))
    assert group(cycles=2) == ("cycle service, target 90%: no item-cycle counted in 2 closed "
                               "cycles of the last year → safety factor unchanged")
    assert group(delivered=0.9, item_cycles=1, cycles=1) == (
        "cycle service, target 90%: 90% delivered over 1 item-cycle in 1 closed cycle of the "
        "last year → safety factor unchanged")
    assert group(delivered=0.99, item_cycles=80, cycles=3, shift=-0.0021).endswith(
        "→ safety factor -0.002")
    assert group(delivered=0.8, item_cycles=90, cycles=3, shift=0.42, applied=False) == (
        "cycle service, target 90%: 80% delivered over 90 item-cycles in 3 closed cycles of the "
        "last year; not applied (service_feedback is off): the safety factor would be +0.42")
    assert service_text(ServiceDelivered(
        group="item:fill:0.97", measure="fill_rate", target=0.97, item_cycles=40, cycles=2)) == (
        "fill rate, target 97%: no unit asked over 40 item-cycles in 2 closed cycles of the "
        "last year → safety factor unchanged")


def test_slack_payload_stays_within_slack_limits():
    summary = make_summary(400, suppliers=120, held_orders=100)
    payload = render_slack_blocks(summary, report_url="http://127.0.0.1:8080/runs/x")
    assert len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        assert len(block.get("text", {}).get("text", "")) <= 3000
        assert len(block.get("fields", [])) <= 10
    held = payload["blocks"][2]["text"]["text"]
    assert "… and 90 more in the report" in held


def test_quantities_are_written_as_people_write_them():
    assert [fmt_qty(v) for v in (1240.0, 12.5, 0.1 + 0.2, 1e6)] == ["1,240", "12.5", "0.3",
                                                                    "1,000,000"]


def test_published_schema_is_current():
    path = ROOT / "docs" / "summary-schema.json"
    assert path.read_text(encoding="utf-8") == schema_text(), (
        "docs/summary-schema.json is out of date with RunSummary: run "
        "`python -m restock.report.schema docs/summary-schema.json` and commit it")


def test_an_empty_run_reads_plainly():
    summary = make_summary(0, suppliers=0, held_orders=0)
    summary.skipped.clear(), summary.stockouts.clear()
    html = render_html(summary)
    assert "Nothing was ordered." in html and "Nothing waits for approval." in html
    assert "No item is projected to run out." in html
    assert "Nothing was ordered." in render_markdown(summary)


def test_planner_reasons_the_numbers_already_say_are_not_repeated():
    line = issue_line(reasons=[
        Reason(code="inventory_position", message="inventory position 30 = on hand 30 + ..."),
        Reason(code="order_up_to", message="order up to 275.6, 245.6 below it"),
        Reason(code="offer", message="acme at 2.5 per unit, 21 days: cheapest offer"),
        Reason(code="rounded_to_pack", message="ordered 240 = 2 packs of 120"),
        Reason(code="raised_to_price_break", message="raised to the supplier's price break")])
    assert explain_line(line) == (
        "ordered 240 = 2 packs of 120: forecast 180 over 21 days lead time + 7 days review, "
        "safety stock 95 for 95% service, on hand 30, on order 0; raised to the supplier's "
        "price break")
