"""The service each group delivered, as the reports show it: weekly runs through the whole cycle
with half the items out of stock, their summaries read back from a real store (SQLite and
PostgreSQL) and rendered."""

from __future__ import annotations

from restock.report import render_html, render_markdown, render_slack_blocks
from restock.store import open_store
from tests.integration.test_service_feedback import _warehouse, _weekly_runs

FIRST_RUN = "cycle service, target 95%: no closed cycle yet"
LATER_RUN = ("cycle service, target 95%: 50% delivered over 240 item-cycles in 4 closed cycles "
             "of the last year → safety factor {shift}")


def test_the_stored_summary_reports_the_service_delivered_and_the_shift_planned_with(
        tmp_path, store_url):
    _warehouse(tmp_path / "warehouse")
    runs = _weekly_runs(tmp_path, store_url, feedback=True)
    with open_store(store_url) as store:
        first, last = (store.runs.summary(s.run_id) for s in (runs[0], runs[-1]))
    assert first is not None and last is not None
    assert f"- **item:cycle:0.95** — {FIRST_RUN}\n" in render_markdown(first)

    line = next(line for order in last.held + last.orders for line in order.lines)
    shift = next(r for r in line.reasons if r.code == "service_feedback").data["shift"]
    assert shift > 0
    expected = LATER_RUN.format(shift=f"{shift:+.2f}")
    assert f"- **item:cycle:0.95** — {expected}\n" in render_markdown(last)
    assert f"<b>item:cycle:0.95</b> — {expected}</li>" in render_html(last, max_charts=0)
    assert any(expected in block.get("text", {}).get("text", "")
               for block in render_slack_blocks(last)["blocks"])
