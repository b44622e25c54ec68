"""How long the HTML report of a large run takes to render and how big it is.

A 10,000-line run over 20 suppliers with a year of daily history and a 28-day forecast for every
item: the targets are < 2 s and < 2 MB. Markdown and Slack renderings of the same run are measured
beside it, and the HTML without charts shows what the charts cost.

Wall-clock seconds depend on what else the machine runs, so the CPU seconds of the rendering
process and the load average are recorded beside them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench._common import best_of, save_result

RESULTS = Path(__file__).parent / "results" / "report_render.json"


def _timed(fn, repeat: int = 3) -> tuple[float, object]:
    return best_of(fn, repeat, time.perf_counter)


def _cpu(fn, repeat: int = 3) -> float:
    return best_of(fn, repeat)[0]


def run(lines: int = 10_000) -> dict:
    from tests.support.summaries import make_history, make_summary

    from restock.forecast import forecast
    from restock.report import render_html, render_markdown, render_slack_blocks

    summary = make_summary(lines, suppliers=20, held_orders=3)
    history = make_history(summary, days=365)
    forecasts = forecast(history.rename(columns={"sku": "item_id"}), 28, quantiles=(0.05, 0.95))
    render_html(make_summary(10), max_charts=1)   # imports and template compilation, once
    def full() -> str:
        return render_html(summary, history=history, forecasts=forecasts)

    html_s, html = _timed(full)
    html_cpu = _cpu(full)
    bare_s, bare = _timed(lambda: render_html(summary, max_charts=0))
    md_s, md = _timed(lambda: render_markdown(summary))
    slack_s, _ = _timed(lambda: render_slack_blocks(summary))
    return {
        "lines": lines, "history_rows": len(history),
        "html_seconds": round(html_s, 3), "html_cpu_seconds": round(html_cpu, 3),
        "html_bytes": len(html.encode()), "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "html_without_charts_seconds": round(bare_s, 3),
        "html_without_charts_bytes": len(bare.encode()),
        "markdown_seconds": round(md_s, 3), "markdown_bytes": len(md.encode()),
        "slack_seconds": round(slack_s, 4),
        "targets": {"html_seconds": 2.0, "html_bytes": 2_000_000},
        "meets_targets": html_s < 2.0 and len(html.encode()) < 2_000_000,
        "meets_targets_in_cpu_time": html_cpu < 2.0 and len(html.encode()) < 2_000_000,
    }


def main() -> dict:
    result = run()
    save_result(RESULTS, result)
    print(f"report_render: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
