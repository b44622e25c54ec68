"""``restock runs list/show``, ``restock report`` and ``restock models list`` over a real SQLite
state store; mistakes are one line and exit code 1 or 2, never a traceback."""

from __future__ import annotations

import json
import webbrowser
from datetime import timedelta

import pytest

from restock.cli import main
from restock.store import CatalogEntry, open_store
from tests.e2e.review_kit import seed_run
from tests.support.summaries import make_summary


@pytest.fixture
def state(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    monkeypatch.setenv("RESTOCK_STATE_URL", url)
    monkeypatch.setenv("RESTOCK_CONFIG_DIR", str(tmp_path))
    with open_store(url) as store:
        seed_run(store, make_summary(12, run_id="run-0001"))
        seed_run(store, make_summary(8, org="beta", run_id="run-0002", seed=3).model_copy(
            update={"orders": [], "held": []}))
        store.models.record([CatalogEntry(org="acme", run_id="run-0001", sku=sku, model=model,
                                          demand_class="intermittent", mase=0.83, chosen_by=by)
                             for sku, model, by in (("SKU-1", "SBA", "backtest"),
                                                    ("SKU-2", "SES", "steady"),
                                                    ("SKU-3", "Croston", None))])
    return tmp_path


def test_runs_list_all_or_one_org(state, capsys):
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "run-0001" in out and "run-0002" in out
    assert main(["runs", "list", "--org", "beta", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["org"], r["status"]) for r in rows] == [("run-0002", "beta", "ok")]


def test_runs_show_in_each_format(state, capsys, tmp_path):
    assert main(["runs", "show", "run-0001"]) == 0
    assert capsys.readouterr().out.startswith("# restock run run-0001 · acme · 2026-11-23")
    assert main(["runs", "show", "run-0001", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run_id"] == "run-0001" and data["orders"][0]["total"] > 0
    out = tmp_path / "out" / "r.html"
    assert main(["runs", "show", "run-0001", "--format", "html", "--out", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>") and "wrote" in capsys.readouterr().out


def test_runs_show_mistakes_are_one_line(state, capsys):
    assert main(["runs", "show", "run-0001", "--format", "pdf"]) == 2
    assert capsys.readouterr().err == "restock: --format must be one of md, json, html " \
                                      "(got 'pdf')\n"
    assert main(["runs", "show", "run-9999"]) == 1
    assert capsys.readouterr().err == "restock: no finished run 'run-9999' (see `restock " \
                                      "runs list`)\n"
    with open_store(f"sqlite:///{state / 'state.sqlite'}") as store:
        finished = store.runs.record("run-0001").finished_at
        assert store.runs.prune_summaries("acme", finished + timedelta(seconds=1), keep=0) == 1
    assert main(["runs", "show", "run-0001"]) == 1
    assert capsys.readouterr().err == f"restock: run 'run-0001' finished on {finished:%Y-%m-%d}, " \
        "but its summary is no longer kept (older than the org's summary_days) (see `restock " \
        "runs list`)\n"


def test_report_writes_the_latest_html_and_opens_it_only_when_asked(state, capsys, monkeypatch,
                                                                     tmp_path):
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    target = tmp_path / "acme.html"
    assert main(["report", "--org", "acme", "--out", str(target)]) == 0
    assert "run-0001" in capsys.readouterr().out and opened == []
    html = target.read_text()
    assert 'data-metric="lines_ordered"' in html and "<svg" in html
    assert main(["report", "--org", "acme", "--out", str(target), "--open"]) == 0
    assert opened == [target.resolve().as_uri()]
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--org", "acme"]) == 0
    assert (tmp_path / "reports" / "run-0001.html").is_file()
    assert main(["report", "--org", "nobody"]) == 1
    assert "org 'nobody' has no finished run yet" in capsys.readouterr().err


def test_models_list(state, capsys):
    assert main(["models", "list", "--org", "acme"]) == 0
    out = capsys.readouterr().out
    assert "SKU-1" in out and "SBA" in out and "intermittent" in out and "0.83" in out
    rows = {cells[0]: cells[:3] for cells in (line.replace("│", " ").split()
                                              for line in out.splitlines() if "SKU-" in line)}
    assert rows == {"SKU-1": ["SKU-1", "SBA", "backtest"], "SKU-2": ["SKU-2", "SES", "steady"],
                    "SKU-3": ["SKU-3", "Croston", "-"]}      # a row from before: no reason
    assert "steady: SES(0.05) kept on daily data: no other model was clearly better" in out
    assert out.count("backtest: ") == 1 and "previous: " not in out
    assert main(["models", "list", "--org", "acme", "--sku", "SKU-2", "--json"]) == 0
    assert [(r["model"], r["chosen_by"]) for r in json.loads(capsys.readouterr().out)] == \
        [("SES", "steady")]
    assert main(["models", "list", "--org", "beta"]) == 0
    assert "no models recorded for org 'beta'" in capsys.readouterr().out
