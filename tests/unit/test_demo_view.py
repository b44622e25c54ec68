"""What ``restock run`` prints: a table on a wide terminal, a heading and its reason per line on
a narrow one (where the table's "why" column wrapped each line over thirty rows)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from restock.commands import demo_view
from restock.report.facts import explain_line
from tests.support.samples import run_summary


def _printed(monkeypatch: pytest.MonkeyPatch, width: int, summary=None) -> list[str]:
    out = io.StringIO()
    monkeypatch.setattr(demo_view, "_console",
                        Console(file=out, width=width, highlight=False, soft_wrap=True))
    demo_view.print_run(summary or run_summary())
    return out.getvalue().splitlines()


def _long_reason_summary():
    summary = run_summary()
    line = summary.orders[0].lines[0]
    summary.orders[0].lines[0] = line.model_copy(update={
        "forecast_lead_review": 173.0, "safety_stock": 92.0, "on_hand": 198.0,
        "lead_time_days": 52.0, "review_period_days": 7.0, "service_level": 0.95,
        "inventory_position": 198.0, "order_up_to": 265.0, "moq": 250.0})
    return summary


def test_narrow_terminal_prints_each_line_as_a_heading_and_its_reason(monkeypatch):
    summary = _long_reason_summary()
    lines = _printed(monkeypatch, 80, summary)
    heading = next(i for i, text in enumerate(lines) if "M3-SCREW" in text)
    assert all(len(text) <= 80 for text in lines[heading:])
    assert "Acme Components" in lines[heading] and "250 × 0.05 = 12.50" in lines[heading] \
        and "planned" in lines[heading]
    below = lines[heading + 1:]
    indented = below[:next(i for i, text in enumerate(below) if not text.startswith("    "))]
    assert len(indented) >= 2          # a long reason wraps, indented, at the width
    wanted = explain_line(summary.orders[0].lines[0], short=True)
    assert " ".join(text.strip() for text in indented) == wanted
    # a held order's lines are there too, with their status
    assert any("Bolt Co" in text and "held" in text for text in lines)
    assert not any("┃" in text for text in lines)


def test_wide_terminal_prints_the_table_with_a_why_column(monkeypatch):
    lines = _printed(monkeypatch, 200)
    header = next(text for text in lines if "supplier" in text)
    assert "unit price" in header and "why" in header
    # one row per line: the sample's sent and held orders hold the same two SKUs
    assert sum("M3-SCREW" in text for text in lines) == 2


def test_more_lines_than_shown_are_counted(monkeypatch):
    summary = run_summary()
    order = summary.orders[0]
    many = [order.lines[0].model_copy(update={"sku": f"SKU-{i}"}) for i in range(25)]
    summary.orders[0] = order.model_copy(update={"lines": many})
    for width in (80, 200):
        lines = _printed(monkeypatch, width, summary)
        shown = sum(text.lstrip().startswith("Acme Components  SKU-") or "│ SKU-" in text
                    for text in lines)
        assert shown == demo_view.MAX_ROWS
        # 25 of Acme's and 2 held lines of Bolt Co, 20 shown
        assert any("and 7 more lines" in text for text in lines)
