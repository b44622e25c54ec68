"""The ``restock`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="restock: replenishment agent")


@app.command()
def version() -> None:
    """Print restock's version."""
    from restock import __version__
    typer.echo(__version__)


def main() -> None:
    app()
