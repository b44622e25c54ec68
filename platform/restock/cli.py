"""The ``restock`` command line.

Exit codes: 0 success, 1 a run failed, 2 a configuration or usage error. A RestockError is printed
as one line on stderr, never as a traceback. Sub-commands live in ``restock.commands.<area>``
modules, each registering on ``app`` when imported (listed in ``_COMMAND_MODULES``).
"""

from __future__ import annotations

import importlib
import sys

import typer

from restock.errors import ConfigError, RestockError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="restock: an autonomous inventory-replenishment agent.")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# One module per area; each adds its commands to ``app`` at import.
_COMMAND_MODULES: list[str] = [
    "restock.commands.core",
    "restock.commands.daemon",
    "restock.commands.orders",
    "restock.commands.runs",
    "restock.commands.backtest",
    "restock.commands.forecast",
]


@app.callback()
def _root() -> None:
    """restock: an autonomous inventory-replenishment agent."""


@app.command()
def version() -> None:
    """Print restock's version."""
    from restock import __version__
    typer.echo(__version__)


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    typer.echo(f"restock: {message}", err=True)
    return typer.Exit(code)


def _load_commands() -> None:
    for module in _COMMAND_MODULES:
        importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors are click's own, code 2)."""
    _load_commands()
    try:
        app(args=argv, prog_name="restock")
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_FAILED
    except ConfigError as err:
        typer.echo(f"restock: {err}", err=True)
        return EXIT_USAGE
    except RestockError as err:
        typer.echo(f"restock: {err}", err=True)
        return EXIT_FAILED
    return EXIT_OK


def run() -> None:
    """Console-script wrapper: exit with main()'s code."""
    from restock.forecast.io import one_blas_thread

    # As the daemon does: restock's matrix products are small, and idle BLAS threads spinning
    # between them cost CPU for nothing (a MAN backtest: 17.7 s of CPU, 14.6 s with one thread).
    one_blas_thread()
    sys.exit(main())


if __name__ == "__main__":
    # Under ``python -m restock.cli`` this file is ``__main__``; command modules register on
    # ``restock.cli.app``, so run that module's entry point, not this copy's.
    from restock.cli import run as _run
    _run()
