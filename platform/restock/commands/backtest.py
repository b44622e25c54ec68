"""``restock backtest``: replay a real history through restock's policy and measure it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from restock.cli import app
from restock.errors import ConfigError, DataError


@app.command()
def backtest(
    history: Annotated[Path, typer.Option("--history", help="CSV of item_id,date,quantity.")],
    items: Annotated[Path, typer.Option("--items", help="CSV of item_id,lead_time (periods),"
                                       "unit_cost and optionally moq,pack_size,order_cost,"
                                       "holding_cost (per unit per period),shortage_cost.")],
    periods: Annotated[int, typer.Option("--periods", help="How many final periods to "
                                         "measure; earlier history warms the policy up.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the result JSON.")],
    service_level: Annotated[float, typer.Option("--service-level",
                                                 help="Target, between 0.5 and 0.9999.")] = 0.95,
    fill_rate: Annotated[bool, typer.Option("--fill-rate", help="The target is a fill rate "
                                            "(default: a cycle service level).")] = False,
    freq: Annotated[str, typer.Option("--freq", help="Period: D, W or M.")] = "W",
    review: Annotated[int, typer.Option("--review", help="Periods between orders.")] = 1,
    lost_sales: Annotated[bool, typer.Option("--lost-sales", help="Unmet demand is lost "
                                             "(default: backordered).")] = False,
    pooled: Annotated[bool, typer.Option("--pooled", help="The cycle service level is the "
                                         "items' average, reached at the least stock value "
                                         "(default: every item's own).")] = False,
    season_length: Annotated[int | None, typer.Option("--season-length", help="Forecast "
                                                      "season (default by --freq).")] = None,
    promotions: Annotated[Path | None, typer.Option("--promotions", help="CSV of item_id,date,"
                                                    "promotion (1 on promotion): the calendar, "
                                                    "known a lead time + review ahead.")] = None,
    calibrate: Annotated[str | None, typer.Option(
        "--calibrate", help="Spread over lead time + review: errors, spread or none (default: "
        "errors for a cycle service level, spread for --fill-rate or --pooled).")] = None,
    promotion_effect: Annotated[str, typer.Option("--promotion-effect", help="A promotion "
                                                  "multiplies demand (lift) or adds units "
                                                  "(extra).")] = "lift",
) -> None:
    """Replay HISTORY period by period (forecast, order, receive, serve) and report service,
    stock and cost per item and in total."""
    from restock.forecast import to_panel
    from restock.simulate import (
        ForecastCache,
        check_history,
        check_items,
        check_level,
        default_calibration,
        promotion_flags,
        restock_policy,
        simulate,
    )

    level = _option(check_level, service_level, "--service-level")
    calibrate = calibrate or default_calibration(fill_rate, pooled)
    if freq not in ("D", "W", "M"):
        raise ConfigError(f"must be D, W or M (got {freq!r})", field="--freq")
    tidy = check_history(_read(history), str(history))
    settings = check_items(_read(items), str(items))
    panel = to_panel(tidy, freq=freq)
    flags = None if promotions is None else \
        promotion_flags(_read(promotions), panel, str(promotions))
    forecasts = _option(lambda: ForecastCache(panel, season_length=season_length,
                                              promotions=flags,
                                              promotion_effect=promotion_effect),
                        None, "--promotion-effect")
    policy = _option(lambda: restock_policy(level, fill_rate=fill_rate, pooled=pooled,
                                            calibrate=calibrate), None, "--pooled")
    result = _option(lambda: simulate(tidy, settings, policy,
                                      periods=periods, freq=freq, review=review,
                                      lost_sales=lost_sales, panel=panel, forecasts=forecasts),
                     None, "--periods")
    measure = "fill_rate" if fill_rate else "cycle_service_level"
    document = {"policy": "restock", "pooled": pooled, "calibrate": calibrate,
                "promotions": promotions is not None, "target": level, "measure": measure,
                "achieved": result.totals[measure], **result.to_dict()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=float) + "\n")
    typer.echo(_summary_line(document, out))


def _option(check, value, flag: str):
    try:
        return check(value) if value is not None else check()
    except ConfigError as err:   # name the option as the user typed it
        name = flag if err.field in (None, "service_level", "periods", "pooled",
                                     "promotion_effect") \
            else f"--{err.field}"
        raise ConfigError(err.message, field=name) from None


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataError("no such file", record=str(path)) from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"cannot read as CSV ({err})", record=str(path)) from None


def _summary_line(document: dict, out: Path) -> str:
    def pct(value):
        return "n/a" if value is None else f"{value:.1%}"
    return (f"{document['item_count']} items, {document['periods']} periods: fill rate "
            f"{pct(document['fill_rate'])}, cycle service {pct(document['cycle_service_level'])}"
            f" (target {document['target']:g} {document['measure']}), average stock value "
            f"{document['avg_inventory_value']:,.2f}, {document['orders']} orders, total cost "
            f"{document['total_cost']:,.2f} -> {out}")
