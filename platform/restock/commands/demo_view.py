"""What ``restock run`` and ``restock demo`` print: a short table and where things went."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from restock.config import OrgConfig
from restock.domain import PurchaseOrder, RunSummary
from restock.report.facts import explain_line

MAX_ROWS = 20
# Below this width the "why" column would be squeezed to a dozen characters and one line would
# wrap over thirty rows, so each line is printed as a heading with its reason beneath instead.
TABLE_MIN_WIDTH = 140
_console = Console(highlight=False, soft_wrap=True)


def connector_folder(config: OrgConfig, where: str) -> Path | None:
    """The resolved ``path`` of a path-based connector (``source``, ``order_sink``,
    ``summary_sinks.0``...), relative paths taken from the org file's folder; None otherwise."""
    settings = config.connector_settings.get(where)
    path = getattr(settings, "path", None)
    if path is None:
        return None
    base = Path(config.source_file).parent if config.source_file else Path(".")
    candidate = Path(path).expanduser()
    return (candidate if candidate.is_absolute() else base / candidate).resolve()


def ensure_demo_warehouse(config: OrgConfig) -> None:
    """Generate the demo org's warehouse folder the first time (same seed every time)."""
    from restock.demo import generate

    folder = connector_folder(config, "source")
    if folder is None or (folder / "catalog.csv").is_file():
        return
    made = generate(folder)
    _console.print(f"Generated a demo warehouse: {made.skus} SKUs, two years of daily "
                   f"consumption, in {_short(folder)}")


def print_run(summary: RunSummary) -> None:
    """A few lines and a table: status, spend against budget, what was ordered and held."""
    budget = f" of {summary.budget:,.2f}" if summary.budget is not None else ""
    as_of = summary.as_of or "-"
    _console.print(f"\nrestock run [bold]{summary.run_id}[/] for org [bold]{summary.org}[/]: "
                   f"{summary.status.value} (mode {summary.mode.value}, as of {as_of})")
    _console.print(f"spend {summary.spend:,.2f}{budget} {summary.currency}; "
                   f"{len(summary.orders)} orders, {len(summary.held)} held for approval, "
                   f"{len(summary.skipped)} lines skipped, {len(summary.quarantined)} records "
                   "quarantined")
    orders = [*summary.orders, *summary.held]
    if orders:
        wide = _console.width >= TABLE_MIN_WIDTH
        _console.print(_order_table(orders) if wide else _order_blocks(orders), soft_wrap=False)
    for error in summary.errors:
        _console.print(f"[red]error:[/] {error}")


def _order_table(orders: list[PurchaseOrder]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for name, justify in (("supplier", "left"), ("sku", "left"), ("qty", "right"),
                          ("unit price", "right"), ("value", "right"), ("status", "left"),
                          ("why", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    rows = [(order, line) for order in orders for line in order.lines]
    for order, line in rows[:MAX_ROWS]:
        why = explain_line(line, short=True)
        table.add_row(order.supplier, line.sku, f"{line.quantity:g}", f"{line.unit_price:,.2f}",
                      f"{line.value:,.2f}", order.status, why)
    table.caption = _more(len(rows))
    return table


def _order_blocks(orders: list[PurchaseOrder]) -> Group:
    """The narrow layout: per line a heading (supplier, SKU, quantity × price = value, status)
    and its reason indented beneath, wrapped at the terminal's width."""
    rows = [(order, line) for order in orders for line in order.lines]
    parts: list = []
    for order, line in rows[:MAX_ROWS]:
        parts.append(Text.assemble(
            (f"{order.supplier}  {line.sku}", "bold"),
            f"  {line.quantity:,g} × {line.unit_price:,.2f} = {line.value:,.2f}  {order.status}"))
        parts.append(Padding(Text(explain_line(line, short=True)), (0, 0, 0, 4), expand=False))
    more = _more(len(rows))
    return Group(*parts, *([more] if more else []))


def _more(count: int) -> str | None:
    return f"... and {count - MAX_ROWS} more lines (see the summary)" if count > MAX_ROWS \
        else None


def describe_demo(config: OrgConfig, summary: RunSummary, state_url: str) -> None:
    """Say where the summary, the orders and the state went."""
    _console.print("")
    for index, _ in enumerate(config.summary_sinks):
        folder = connector_folder(config, f"summary_sinks.{index}")
        if folder is not None:
            for path in sorted(folder.glob(f"{summary.run_id}.*")):
                _console.print(f"summary: {_short(path)}")
    outbox = connector_folder(config, "order_sink")
    if outbox is not None:
        count = len(list(outbox.glob("*.json"))) if outbox.is_dir() else 0
        _console.print(f"orders:  {_short(outbox)}/ ({count} purchase orders in the outbox)")
    _console.print(f"state:   {state_url}")


def _short(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
