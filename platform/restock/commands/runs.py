"""Looking back at runs: ``runs list``, ``runs show``, ``report``, ``models list``, and ``serve``
(the review page on its own, without the daemon)."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from restock.cli import EXIT_USAGE, app, fail
from restock.commands.core import ConfigDir, config_dir, open_state, state_url, summary_json
from restock.errors import ConfigError

_console = Console(highlight=False, soft_wrap=True)
runs_app = typer.Typer(no_args_is_help=True, help="Runs in the state store.")
models_app = typer.Typer(no_args_is_help=True, help="The model catalog: which model forecast "
                                                    "each item, and how well.")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")

OrgFilter = Annotated[str | None, typer.Option("--org", help="Only this org's runs.")]
_FORMATS = ("md", "json", "html")
History = Annotated[bool, typer.Option(
    "--history/--no-history", help="Chart the items' demand history and forecast, read from "
                                   "the org's source (HTML only).")]


@runs_app.command("list")
def list_runs(org: OrgFilter = None, config: ConfigDir = None,
              limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
              ) -> None:
    """The newest runs (of one org or all), newest first."""
    with open_state(state_url(config_dir(config))) as store:
        rows = store.runs.list(org, limit=limit)
    if as_json:
        typer.echo(json.dumps([{"run_id": r.run_id, "org": r.org, "status": r.status,
                                "mode": r.mode, "as_of": r.as_of, "started_at": r.started_at,
                                "finished_at": r.finished_at} for r in rows],
                              indent=2, default=str))
        return
    if not rows:
        _console.print("no runs yet" + (f" for org {org!r}" if org else ""))
        return
    table = Table(show_edge=False, pad_edge=False)
    for name in ("run", "org", "status", "mode", "as of", "started (UTC)"):
        table.add_column(name)
    for r in rows:
        table.add_row(r.run_id, r.org, r.status, r.mode, str(r.as_of or "-"),
                      f"{r.started_at:%Y-%m-%d %H:%M}")
    _console.print(table)


@runs_app.command("show")
def show_run(run_id: Annotated[str, typer.Argument(help="The run's id (see `restock runs list`).")],
             config: ConfigDir = None,
             fmt: Annotated[str, typer.Option("--format", help="md, json or html.")] = "md",
             out: Annotated[Path | None, typer.Option(
                 "--out", help="Write to this file instead of printing.")] = None,
             history: History = True) -> None:
    """One run's summary as Markdown, JSON or a self-contained HTML report."""
    if fmt not in _FORMATS:
        raise fail(f"--format must be one of {', '.join(_FORMATS)} (got {fmt!r})", EXIT_USAGE)
    folder = config_dir(config)
    with open_state(state_url(folder)) as store:
        summary = store.runs.summary(run_id)
        if summary is None:
            raise fail(f"{store.runs.why_no_summary(run_id)} (see `restock runs list`)")
        previous = store.runs.latest_summary(summary.org, before=run_id) \
            if summary.previous_run_id is None else store.runs.summary(summary.previous_run_id)
    text = _render(summary, fmt, previous, folder=folder if history else None)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        _write(out, text)
        typer.echo(f"wrote {out}")


def _render(summary, fmt: str, previous, *, folder: Path | None = None) -> str:
    """``folder`` given: charts get the items' history and forecast from the org's source."""
    from restock.report import render_html, render_markdown

    if previous is not None and previous.started_at > summary.started_at:
        previous = None
    if fmt == "json":
        return summary_json(summary)
    if fmt == "html":
        history, forecasts = _chart_data(summary, folder) if folder else (None, None)
        return render_html(summary, previous=previous, history=history, forecasts=forecasts)
    return render_markdown(summary, previous=previous)


def _chart_data(summary, folder: Path):
    from restock.commands.core import load_org_by_id
    from restock.report.sources import chart_frames

    try:
        config = load_org_by_id(folder, summary.org)
    except ConfigError as err:
        typer.echo(f"restock: charts without history ({err})", err=True)
        return None, None
    history, forecasts = chart_frames(config, summary)
    if history is None:
        typer.echo("restock: charts without history (the source did not answer; "
                   "see the log)", err=True)
    return history, forecasts


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise fail(f"cannot write {path} ({err.strerror})") from None


@app.command("report")
def report(org: Annotated[str, typer.Option("--org", help="The org whose latest run to show.")],
           config: ConfigDir = None,
           out: Annotated[Path | None, typer.Option(
               "--out", help="Where to write the report (default: reports/<run_id>.html).",
               show_default=False)] = None,
           open_it: Annotated[bool, typer.Option(
               "--open", help="Open the report in the default web browser.")] = False,
           history: History = True) -> None:
    """Write the latest run's HTML report of an org to a file (and open it with --open)."""
    folder = config_dir(config)
    with open_state(state_url(folder)) as store:
        summary = store.runs.latest_summary(org)
        previous = store.runs.latest_summary(org, before=summary.run_id) if summary else None
    if summary is None:
        raise fail(f"org {org!r} has no finished run yet (run `restock run --org {org}`)")
    target = out or Path("reports") / f"{summary.run_id}.html"
    _write(target, _render(summary, "html", previous, folder=folder if history else None))
    typer.echo(f"wrote {target} (run {summary.run_id}, as of {summary.as_of or '-'})")
    if open_it:
        webbrowser.open(target.resolve().as_uri())


@models_app.command("list")
def list_models(org: Annotated[str, typer.Option("--org", help="The org.")],
                sku: Annotated[str | None, typer.Option(
                    "--sku", help="One item's models over its runs (newest first).")] = None,
                config: ConfigDir = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
                ) -> None:
    """The model each item was forecast with at the latest run (or one item's history), and
    why it was chosen."""
    from restock.forecast.select import CHOSEN_BY

    with open_state(state_url(config_dir(config))) as store:
        rows = store.models.history(org, sku) if sku else store.models.latest(org)
    if as_json:
        typer.echo(json.dumps([_model_row(e) for e in rows], indent=2, default=str))
        return
    if not rows:
        _console.print(f"no models recorded for org {org!r}" + (f", sku {sku!r}" if sku else ""))
        return
    table = Table(show_edge=False, pad_edge=False)
    for name in ("sku", "model", "chosen by", "class", "MASE", "window", "run"):
        table.add_column(name, justify="right" if name == "MASE" else "left")
    for e in rows:
        row = _model_row(e)
        table.add_row(e.sku, e.model, row["chosen_by"] or "-", row["class"] or "-", row["mase"],
                      row["window"], e.run_id)
    _console.print(table)
    for key in sorted({e.chosen_by for e in rows if e.chosen_by in CHOSEN_BY}):   # each once
        _console.print(f"[dim]{key}: {CHOSEN_BY[key]}[/dim]", highlight=False)


def _model_row(entry) -> dict:
    window = f"{entry.window_start or ''}..{entry.window_end or ''}" \
        if entry.window_start or entry.window_end else "-"
    return {"sku": entry.sku, "model": entry.model, "chosen_by": entry.chosen_by,
            "class": entry.demand_class,
            "mase": f"{entry.mase:.2f}" if entry.mase is not None else "-", "window": window,
            "run_id": entry.run_id}


@app.command("serve")
def serve(config: ConfigDir = None,
          addr: Annotated[str, typer.Option("--addr", help="HOST:PORT to listen on.")]
          = "127.0.0.1:8788") -> None:
    """Serve the review page and its API on their own (the daemon serves them too)."""
    import uvicorn

    from restock.api import create_app
    from restock.log import configure
    from restock.settings import split_addr

    folder = config_dir(config)
    try:
        host, port = split_addr(addr)
    except ValueError as err:
        raise ConfigError(str(err), field="--addr") from None
    configure(level="INFO")
    store = open_state(state_url(folder))
    try:
        application = create_app(store=store, config_dir=folder)
        typer.echo(f"review page on http://{host}:{port}/ (config {folder})")
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    finally:
        store.close()
