"""``restock forecast``: forecast every series of a tidy demand file into a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restock.cli import EXIT_USAGE, app, fail
from restock.errors import RestockError


@app.command("forecast")
def forecast_command(
    input_file: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Tidy demand: CSV, CSV.gz or Parquet with item_id, date, quantity.",
        show_default=False)],
    horizon: Annotated[int, typer.Option("--horizon", help="Periods to forecast.", min=1)],
    freq: Annotated[str, typer.Option("--freq", help="Period: D (days), W (weeks) or M "
                                                      "(months).")] = "D",
    out: Annotated[Path, typer.Option("--out", help="CSV to write: item_id, step, date, "
                                                    "forecast, model, q<level>...")]
    = Path("forecast.csv"),
    season: Annotated[int | None, typer.Option(
        "--season", help="Season length in periods (default 7 / 52 / 12 for D / W / M; 1: none).",
        min=1)] = None,
    quantiles: Annotated[str, typer.Option(
        "--quantiles", help="Comma-separated levels for the q<level> columns ('' for none).")]
    = "0.5,0.9,0.95",
    statsmodels_seconds: Annotated[float, typer.Option(
        "--statsmodels-seconds", help="Time budget for ETS / Theta / ARIMA (0: fast models "
                                      "only).", min=0.0)] = 0.0,
    id_col: Annotated[str, typer.Option("--id-column")] = "item_id",
    date_col: Annotated[str, typer.Option("--date-column")] = "date",
    value_col: Annotated[str, typer.Option("--quantity-column")] = "quantity",
    jobs: Annotated[int, typer.Option(
        "--jobs", help="Processes forecasting side by side (a file grouped by item): on "
                       "Parquet each reads its own run of row groups, on CSV each reads the "
                       "file and takes every n-th group.", min=1)] = 1,
) -> None:
    """Forecast every series in INPUT; a summary of classes, models and input fixes goes to stderr.

    A file sorted by item is read a group of whole series at a time; otherwise it is read whole.
    """
    from restock.forecast.run import Options, forecast_file

    try:
        options = Options(horizon=horizon, freq=freq.upper(), season=season,
                          quantiles=_levels(quantiles), time_budget=statsmodels_seconds,
                          jobs=jobs)
        summary = forecast_file(input_file, out, options, columns=(id_col, date_col, value_col))
    except RestockError as err:
        raise fail(str(err), EXIT_USAGE) from None
    for line in summary.lines():
        typer.echo(line, err=True)


def _levels(text: str) -> tuple[float, ...]:
    from restock.errors import DataError

    levels = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            level = float(part)
        except ValueError:
            raise DataError(f"{part!r} is not a number", record="--quantiles") from None
        if not 0.0 < level < 1.0:
            raise DataError(f"{part} is not strictly between 0 and 1", record="--quantiles")
        levels.append(level)
    return tuple(levels)
