"""The speed benchmark's figure is the median of its repeated runs, every run shown beside it."""

from __future__ import annotations

from bench.forecast_speed import _median_run


def test_the_median_run_is_the_figure_with_every_run_beside_it() -> None:
    runs = [{"cpu_seconds": 38.3, "peak_rss_mib": 1100}, {"cpu_seconds": 33.8, "peak_rss_mib": 1098},
            {"cpu_seconds": 35.0, "peak_rss_mib": 1118}]
    assert _median_run(runs, "cpu_seconds") == {"cpu_seconds": 35.0, "peak_rss_mib": 1118,
                                                "cpu_seconds_of_each_run": [38.3, 33.8, 35.0]}


def test_a_failed_run_is_left_out_and_only_failures_say_so() -> None:
    failed = {"failed": ["MemoryError"]}
    assert _median_run([failed, {"wall_seconds": 19.6}], "wall_seconds") == \
        {"wall_seconds": 19.6, "wall_seconds_of_each_run": [19.6]}
    assert _median_run([failed, failed], "wall_seconds") == failed
