"""The everyday commands: ``validate``, ``run``, ``demo-data`` and ``demo``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from restock.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, fail
from restock.config import OrgConfig, load_orgs, parse_yaml
from restock.domain import RunStatus, RunSummary
from restock.errors import ConfigError

DEFAULT_CONFIG_DIR = "config"
DEFAULT_STATE_URL = "sqlite:///var/restock.sqlite"
DEMO_ORG = "demo"

ConfigDir = Annotated[Path | None, typer.Option(
    "--config", help="Folder holding orgs/*.yaml and restock.yaml (default: $RESTOCK_CONFIG_DIR "
                     "or ./config).", show_default=False)]


# ---------------------------------------------------------------- validate

@app.command()
def validate(config: ConfigDir = None) -> None:
    """Check every org file (and restock.yaml); print each error as file:line: field: message."""
    folder = config_dir(config)
    configs, errors = load_orgs(folder)
    errors += _daemon_file_errors(folder)
    for error in errors:
        typer.echo(str(error), err=True)
    if not configs and not errors:
        raise fail(f"no org files in {folder}", EXIT_USAGE)
    for name in sorted(configs):
        typer.echo(f"ok  {name}  ({configs[name].source_file})")
        for where, settings in configs[name].connector_settings.items():
            for advice in settings.advice():
                typer.echo(f"note  {name}  {where}: {advice}")
    if errors:
        raise typer.Exit(EXIT_USAGE)


def _daemon_file_errors(folder: Path) -> list[ConfigError]:
    path = folder / "restock.yaml"
    if not path.is_file():
        return []
    try:
        data, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except ConfigError as err:
        return [err]
    if data is not None and not isinstance(data, dict):
        return [ConfigError("the file must be a mapping of settings", file=str(path), line=1)]
    return []


# ---------------------------------------------------------------- run

@app.command()
def run(
    org: Annotated[str, typer.Option("--org", help="The org to run (its id in orgs/*.yaml).")],
    config: ConfigDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and report; submit nothing.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """Run one org's cycle now: pull, clean, forecast, plan, submit, summarise."""
    folder = config_dir(config)
    org_config = load_org_by_id(folder, org)
    summary = run_cycle(org_config, folder, dry_run=dry_run)
    if as_json:
        typer.echo(summary_json(summary))
    else:
        print_summary(summary)
    raise typer.Exit(EXIT_FAILED if summary.status == RunStatus.FAILED else EXIT_OK)


def load_org_by_id(folder: Path, org: str) -> OrgConfig:
    """The valid config of ``org`` in ``folder``, or the ConfigError that keeps it from loading."""
    configs, errors = load_orgs(folder)
    if org in configs:
        return configs[org]
    for error in errors:
        if error.file and Path(error.file).stem == org:
            raise error
    known = ", ".join(sorted(configs)) or "none"
    raise ConfigError(f"no org {org!r} here (valid orgs: {known})", file=str(folder))


def run_cycle(config: OrgConfig, folder: Path, *, dry_run: bool = False) -> RunSummary:
    """One cycle of ``config`` against the state store named by the daemon-wide settings."""
    from restock.cycle import run_org
    from restock.daemon.slots import org_run_lock
    from restock.forecast.io import one_blas_thread
    from restock.log import configure

    configure(level=os.environ.get("RESTOCK_LOG_LEVEL", "WARNING"))
    one_blas_thread()
    url = state_url(folder)
    store = open_state(url)
    try:
        # the daemon's run lock for the org: a run it has going is not raced
        with org_run_lock(url, config.org) as held:
            if not held:
                raise fail(f"org {config.org!r} is being run right now (by the daemon or "
                           "another `restock run`); nothing was done", EXIT_FAILED)
            return run_org(config, store=store, dry_run=dry_run)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


def summary_json(summary: RunSummary) -> str:
    """The RunSummary as JSON, with each order's total beside its lines."""
    data = summary.model_dump(mode="json")
    for key in ("orders", "held"):
        for order, model in zip(data[key], getattr(summary, key), strict=True):
            order["total"] = round(model.total, 2)
    # pydantic's encoder: json.dumps with an indent falls back to pure Python, which took
    # about 3 s for the summary of a 20,000-SKU run holding 9,000 lines
    from pydantic_core import to_json
    return to_json(data, indent=2).decode()


# ---------------------------------------------------------------- settings and state

def config_dir(option: Path | None) -> Path:
    """The configuration folder: --config, else $RESTOCK_CONFIG_DIR, else ./config."""
    return Path(option or os.environ.get("RESTOCK_CONFIG_DIR") or DEFAULT_CONFIG_DIR)


def state_url(folder: Path) -> str:
    """The state store URL as the daemon reads it: $RESTOCK_STATE_URL, else restock.yaml's
    state_url, else the default; a ``file:PATH`` value is read from that file."""
    from restock.settings import load_settings

    return load_settings(config_dir=folder).resolved_state_url()


def open_state(url: str) -> Any:
    """Open the state store (creating a SQLite file's folder the first time)."""
    from restock.store import open_store

    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return open_store(url)


# ---------------------------------------------------------------- demo

@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the warehouse to.")]
    = Path(".demo/warehouse"),
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same warehouse.")] = 7,
    skus: Annotated[int, typer.Option("--skus", min=1, max=100_000)] = 300,
) -> None:
    """Generate a demo warehouse: catalog, supplier offers, stock and two years of history."""
    from restock.demo import generate

    made = generate(out, seed=seed, skus=skus)
    mix = ", ".join(f"{n} {k}" for k, n in sorted(made.classes.items()))
    typer.echo(f"wrote {made.skus} SKUs ({mix}) and {made.history_rows:,} days of consumption "
               f"{made.start}..{made.end} to {made.folder}")


@app.command()
def demo(config: ConfigDir = None) -> None:
    """Run the demo org once (generating its warehouse the first time) and say where it all went."""
    from restock.commands.demo_view import describe_demo, ensure_demo_warehouse

    folder = config_dir(config)
    org_config = load_org_by_id(folder, DEMO_ORG)
    ensure_demo_warehouse(org_config)
    summary = run_cycle(org_config, folder)
    print_summary(summary)
    describe_demo(org_config, summary, state_url(folder))
    if summary.status == RunStatus.FAILED:
        raise typer.Exit(EXIT_FAILED)


def print_summary(summary: RunSummary) -> None:
    from restock.commands.demo_view import print_run

    print_run(summary)
