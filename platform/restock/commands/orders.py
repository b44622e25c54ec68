"""People's commands on the order ledger: ``orders``, ``approve``, ``reject``."""

from __future__ import annotations

import getpass
import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from restock.cli import EXIT_FAILED, EXIT_USAGE, app, fail
from restock.commands.core import ConfigDir, config_dir, load_org_by_id, open_state, state_url
from restock.errors import RestockError

_console = Console(highlight=False, soft_wrap=True)

OrgOption = Annotated[str, typer.Option("--org", help="The org the order belongs to.")]
OwnerOption = Annotated[str | None, typer.Option(
    "--org", help="The org the order belongs to (default: the order's own, from the ledger).",
    show_default=False)]
Actor = Annotated[str | None, typer.Option(
    "--as", help="Who decides (recorded in the audit trail); default: $RESTOCK_ACTOR or the "
                 "login name.", show_default=False)]


@app.command("orders")
def list_orders(org: OrgOption, config: ConfigDir = None,
                status: Annotated[str | None, typer.Option(
                    "--status", help="Only orders in this status (held, submitted...).")] = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List an org's orders in the ledger, newest last."""
    from restock.store import OrderStatus

    statuses = None
    if status is not None:
        try:
            statuses = [OrderStatus(status)]
        except ValueError:
            choices = ", ".join(s.value for s in OrderStatus)
            raise fail(f"--status must be one of {choices} (got {status!r})", EXIT_USAGE) from None
    with open_state(state_url(config_dir(config))) as store:
        entries = store.ledger.list(org, statuses)
    if as_json:
        typer.echo(json.dumps([{"order_id": e.order_id, "status": str(e.status),
                                "supplier": e.supplier, "total": round(e.order.total, 2),
                                "key": e.key, "created_at": e.created_at.isoformat()}
                               for e in entries], indent=2))
        return
    table = Table(show_edge=False, pad_edge=False)
    for name in ("order", "status", "supplier", "lines", "total", "created"):
        table.add_column(name)
    for e in entries:
        table.add_row(e.order_id, str(e.status), e.supplier, str(len(e.order.lines)),
                      f"{e.order.total:,.2f} {e.order.currency}", f"{e.created_at:%Y-%m-%d %H:%M}")
    _console.print(table if entries else f"no orders for org {org!r}")


@app.command()
def approve(order_id: Annotated[str, typer.Argument(help="The held order's id.")],
            org: OwnerOption = None, config: ConfigDir = None, actor: Actor = None,
            quantity: Annotated[list[str] | None, typer.Option(
                "--quantity", help="SKU=QTY to change a line before approving (repeatable; "
                                   "0 drops the line).")] = None,
            comment: Annotated[str | None, typer.Option("--comment")] = None) -> None:
    """Approve a held order (optionally editing quantities) and send it."""
    from restock.approval import approve as decide

    folder = config_dir(config)
    org_config = load_org_by_id(folder, org or _owner(folder, order_id))
    edits = _quantities(quantity or [])
    with open_state(state_url(folder)) as store:
        decision = _decide(lambda: decide(store, org_config, order_id, actor=_actor(actor),
                                          quantities=edits, comment=comment))
    entry = decision.entry
    typer.echo(f"order {entry.order_id} approved by {_actor(actor)}: {entry.status} "
               f"({entry.order.total:,.2f} {entry.order.currency})")
    if decision.problem:
        raise fail(decision.problem, EXIT_FAILED)


@app.command()
def reject(order_id: Annotated[str, typer.Argument(help="The held order's id.")],
           reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")],
           org: OwnerOption = None, config: ConfigDir = None, actor: Actor = None) -> None:
    """Reject a held order: it is never sent; the next run plans the need afresh."""
    from restock.approval import reject as decide

    folder = config_dir(config)
    org_config = load_org_by_id(folder, org or _owner(folder, order_id))
    with open_state(state_url(folder)) as store:
        decision = _decide(lambda: decide(store, org_config, order_id, actor=_actor(actor),
                                          reason=reason))
    typer.echo(f"order {decision.entry.order_id} rejected by {_actor(actor)}")


def _owner(folder, order_id: str) -> str:
    with open_state(state_url(folder)) as store:
        entry = store.ledger.find(order_id)
    if entry is None:
        raise fail(f"no order {order_id!r} in the ledger", EXIT_FAILED)
    return entry.org


def _decide(action):
    from restock.log import configure

    configure(level=os.environ.get("RESTOCK_LOG_LEVEL", "WARNING"))
    try:
        return action()
    except RestockError as err:
        raise fail(str(err), EXIT_FAILED) from None


def _quantities(pairs: list[str]) -> dict[str, float]:
    edits = {}
    for pair in pairs:
        sku, sep, value = pair.partition("=")
        try:
            edits[sku.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not sku.strip():
            raise fail(f"--quantity must look like SKU=QTY (got {pair!r})", EXIT_USAGE)
    return edits


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return os.environ.get("RESTOCK_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
