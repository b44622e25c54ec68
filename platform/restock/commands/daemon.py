"""Operations commands: ``restock daemon``, ``restock status``, ``restock trigger``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from restock.cli import EXIT_FAILED, EXIT_USAGE, app, fail

ConfigDir = Annotated[Path | None, typer.Option("--config", help="Config folder (org files and "
                                                "restock.yaml); default: config or "
                                                "RESTOCK_CONFIG_DIR.")]


@app.command()
def daemon(config: ConfigDir = None,
           health_addr: Annotated[str | None, typer.Option(
               "--health-addr", help="HOST:PORT of /healthz, /readyz, /metrics and /trigger "
                                     "(default 127.0.0.1:8787).")] = None) -> None:
    """Run every org on its schedule until SIGTERM/SIGINT (hot-reloads org files)."""
    from restock import log
    from restock.daemon.service import run_daemon
    from restock.settings import load_settings

    settings = load_settings(config_dir=config, health_addr=health_addr)
    log.configure(json=None if settings.log_format == "auto" else settings.log_format == "json",
                  level=settings.log_level)
    _quiet_libraries(settings.log_level)
    raise typer.Exit(run_daemon(settings))


def _quiet_libraries(level: str) -> None:
    # Alembic and APScheduler narrate every migration step and job at INFO; the daemon's own
    # org.scheduled / slot.* events say what an operator needs, so theirs show from WARNING on.
    import logging

    if level != "DEBUG":
        for name in ("alembic", "apscheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)


@app.command()
def status(config: ConfigDir = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Next run of every org and the last result recorded in the state store."""
    from restock.settings import load_settings

    settings = load_settings(config_dir=config)
    rows, errors = _status_rows(settings)
    if as_json:
        typer.echo(json.dumps({"orgs": rows, "config_errors": errors}, indent=2, default=str))
    else:
        _print_status(rows, errors)
    if errors:
        raise typer.Exit(EXIT_USAGE)


def _status_rows(settings: Any) -> tuple[list[dict], list[str]]:
    from restock.config import load_orgs
    from restock.daemon.slots import SlotLedger
    from restock.schedule import next_fire

    configs, errors = load_orgs(settings.config_dir)
    ledger = SlotLedger(settings.resolved_state_url(), replica=settings.replica_id)
    try:
        latest = ledger.latest()
    finally:
        ledger.close()
    now = datetime.now(UTC)
    rows = []
    for org, cfg in sorted(configs.items()):
        last = latest.get(org) or {}
        rows.append({"org": org, "schedule": cfg.schedule, "timezone": cfg.timezone,
                     "next_run": next_fire(cfg.schedule, cfg.timezone, now),
                     "last_slot": last.get("slot"), "last_status": last.get("status"),
                     "last_run_id": last.get("run_id"), "last_replica": last.get("replica"),
                     "last_finished_at": last.get("finished_at"), "last_detail": last.get("detail")})
    return rows, [str(err) for err in errors]


def _print_status(rows: list[dict], errors: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("org", "schedule", "next run (UTC)", "last slot", "last result", "run id")
    for row in rows:
        next_run = row["next_run"].strftime("%Y-%m-%d %H:%M:%S") if row["next_run"] else "-"
        table.add_row(row["org"], f"{row['schedule']} ({row['timezone']})", next_run,
                      row["last_slot"] or "never", row["last_status"] or "-",
                      row["last_run_id"] or "-")
    console = Console(width=140)
    console.print(table)
    for error in errors:
        typer.echo(f"restock: {error}", err=True)


@app.command()
def trigger(org: Annotated[str, typer.Option("--org", help="The org to run now.")],
            config: ConfigDir = None,
            addr: Annotated[str | None, typer.Option(
                "--addr", help="HOST:PORT of the running daemon (default: its health_addr "
                               "setting).")] = None,
            wait: Annotated[bool, typer.Option("--wait/--no-wait",
                                               help="Wait for the run to finish.")] = True,
            timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 600.0) -> None:
    """Run one org now through the running daemon (its locks, pool and store)."""
    from restock.settings import load_settings

    settings = load_settings(config_dir=config, health_addr=addr)
    response = _post_trigger(settings, org, wait, timeout)
    body = _json(response)
    if response.status_code == 404:
        raise fail(body.get("error", f"unknown org {org!r}"), EXIT_USAGE)
    if response.status_code not in (200, 202):
        raise fail(body.get("error") or f"the daemon refused ({response.status_code}): "
                   f"{body.get('outcome', '')}".strip())
    typer.echo(json.dumps(body, indent=2))
    if body.get("status") in ("failed", "error"):
        raise typer.Exit(EXIT_FAILED)


def _post_trigger(settings: Any, org: str, wait: bool, timeout: float) -> Any:
    import httpx

    host, port = settings.health_host_port
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{port}/trigger/{org}"
    headers = {}
    if settings.trigger_token is not None:
        headers["Authorization"] = f"Bearer {settings.trigger_token.get_secret_value()}"
    try:
        return httpx.post(url, params={"wait": "1" if wait else "0"}, headers=headers,
                          timeout=timeout + 5)
    except httpx.HTTPError as err:
        raise fail(f"no daemon answers at {url.rsplit('/trigger', 1)[0]} "
                   f"({type(err).__name__}); is `restock daemon` running?") from None


def _json(response: Any) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
