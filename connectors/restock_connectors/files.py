"""The embedded-default connectors: a warehouse in a folder of files, an outbox, a report folder.

``connector: files`` works in all three roles::

    source:
      connector: files
      path: ./warehouse          # catalog.csv, positions.csv, history.{csv,csv.gz,parquet},
                                 # optional offers.csv, open_orders.csv, promotions.csv
    order_sink:
      connector: files
      path: ./outbox             # one JSON document per purchase order, named by its key
    summary_sinks:
      - connector: files
        path: ./summaries        # <run_id>.json and <run_id>.md

Relative paths resolve against the folder of the org's YAML file (``ConnectorContext.config_dir``).
CSV frames keep each row's line number in the file as their index (``frame.attrs["source"]`` names
the file), so a quarantined record can be reported as ``history.csv:118``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field

from restock.clean import per_distinct, stripped_text
from restock.connectors import (
    ConnectorSettings,
    InventorySource,
    OrderSink,
    Scope,
    SubmitResult,
    SummarySink,
)
from restock.domain import (
    CATALOG_COLUMNS,
    HISTORY_COLUMNS,
    OFFER_COLUMNS,
    OPEN_ORDER_COLUMNS,
    POSITION_COLUMNS,
    PROMOTION_COLUMNS,
    PurchaseOrder,
    RunSummary,
    Snapshot,
)
from restock.errors import ConfigError, ConnectorError, DataError

HISTORY_NAMES = ("history.csv", "history.csv.gz", "history.parquet")
DEFAULT_LOCATION = "main"

# Required columns per file; every other contract column gets the default below when absent.
_REQUIRED = {
    "catalog": ("sku",),
    "offers": ("sku", "supplier", "unit_price"),
    "positions": ("sku", "on_hand"),
    "history": ("sku", "date", "quantity"),
    "open_orders": ("sku", "supplier", "quantity"),
    "promotions": ("sku", "date"),
}
_DEFAULTS: dict[str, object] = {
    "description": "", "category": "", "unit": "each", "location": DEFAULT_LOCATION,
    "allocated": 0.0, "on_order": 0.0, "backorders": 0.0, "lead_time_days": float("nan"),
    "moq": 1.0, "pack_size": 1.0, "min_qty": 0.0, "supplier_sku": None, "reference": None,
    "expected_date": pd.NaT, "promotion": 1.0,
}
_NUMERIC = ("on_hand", "allocated", "on_order", "backorders", "quantity", "unit_price",
            "lead_time_days", "moq", "pack_size", "min_qty")
_BLANK_MEANS_DEFAULT = ("allocated", "on_order", "backorders", "moq", "pack_size", "min_qty")
_TEXT = ("sku", "supplier", "location", "description", "category", "unit", "supplier_sku",
         "reference", "currency")
# Catalog columns that, without an offers file, describe each SKU's one supplier offer.
_CATALOG_OFFER_ALIASES = {"unit_cost": "unit_price", "cost": "unit_price", "price": "unit_price"}


def _resolve(path: str, config_dir: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else Path(config_dir) / candidate


def _atomic_write(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` so a reader sees the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass   # some filesystems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


# ---------------------------------------------------------------- inventory source

class FilesSourceSettings(ConnectorSettings):
    path: str = Field(description="folder holding the warehouse files")
    catalog: str = "catalog.csv"
    positions: str = "positions.csv"
    history: str | None = None            # None: history.csv, history.csv.gz or history.parquet
    offers: str = "offers.csv"            # optional: without it, the catalog's supplier columns
    open_orders: str = "open_orders.csv"  # optional
    promotions: str = "promotions.csv"    # optional: the promotion calendar (sku, date, promotion)
    as_of: date | Literal["today", "history_end"] = "today"


class FilesInventorySource(InventorySource):
    """A warehouse exported as files: catalog, offers, stock positions and consumption history."""

    Settings = FilesSourceSettings
    name = "files"
    settings: FilesSourceSettings

    @property
    def folder(self) -> Path:
        return _resolve(self.settings.path, self.context.config_dir)

    def check(self) -> None:
        if not self.folder.is_dir():
            raise ConfigError(f"warehouse folder {self.folder} does not exist", field="source.path")
        for name in (self.settings.catalog, self.settings.positions):
            self._required_file(name)
        self._history_file()

    def pull(self, scope: Scope) -> Snapshot:
        self.check()
        raw_catalog = self._read_raw("catalog", self._required_file(self.settings.catalog))
        offers = self._offers(raw_catalog)
        catalog = _conform(raw_catalog, "catalog", self.context.currency)
        positions = self._read("positions", self._required_file(self.settings.positions))
        history = self._read("history", self._history_file())
        snapshot = Snapshot(catalog=catalog, offers=offers, positions=positions,
                            history=history, open_orders=self._optional("open_orders"),
                            promotions=self._optional("promotions"),
                            as_of=self._as_of(history), source=f"files:{self.folder}")
        return _narrow(snapshot, scope)

    # -- files

    def _required_file(self, name: str) -> Path:
        path = _resolve(name, str(self.folder))
        if not path.is_file():
            raise ConfigError(f"required file {path.name} is missing from {self.folder}",
                              file=str(path))
        return path

    def _history_file(self) -> Path:
        if self.settings.history is not None:
            return self._required_file(self.settings.history)
        for name in HISTORY_NAMES:
            if (self.folder / name).is_file():
                return self.folder / name
        raise ConfigError(f"no consumption history in {self.folder} "
                          f"(expected one of {', '.join(HISTORY_NAMES)})",
                          file=str(self.folder / HISTORY_NAMES[0]))

    def _offers(self, catalog: pd.DataFrame) -> pd.DataFrame:
        path = _resolve(self.settings.offers, str(self.folder))
        if path.is_file():
            return self._read("offers", path)
        renamed = catalog.rename(columns={k: v for k, v in _CATALOG_OFFER_ALIASES.items()
                                          if k in catalog.columns and v not in catalog.columns})
        renamed.attrs = catalog.attrs
        missing = [c for c in _REQUIRED["offers"] if c not in renamed.columns]
        if missing:
            raise DataError(f"{missing[0]}: column missing, and there is no {path.name} with "
                            f"supplier offers", record=f"{catalog.attrs['source']}:1")
        return _conform(renamed, "offers", self.context.currency)

    def _optional(self, dataset: str) -> pd.DataFrame:
        """An optional file's frame; without the file, an empty one."""
        path = _resolve(getattr(self.settings, dataset), str(self.folder))
        if not path.is_file():
            return pd.DataFrame(columns=list(_COLUMNS[dataset]))
        return self._read(dataset, path)

    def _read(self, dataset: str, path: Path) -> pd.DataFrame:
        return _conform(self._read_raw(dataset, path), dataset, self.context.currency)

    def _read_raw(self, dataset: str, path: Path) -> pd.DataFrame:
        frame = _read_table(path)
        frame.attrs["source"] = str(path)
        missing = [c for c in _REQUIRED[dataset] if c not in frame.columns]
        if missing:
            found = ", ".join(map(str, frame.columns)) or "none"
            raise DataError(f"{missing[0]}: required column is missing (columns found: {found})",
                            record=f"{path}:1")
        return frame

    def _as_of(self, history: pd.DataFrame) -> date:
        setting = self.settings.as_of
        if isinstance(setting, date):
            return setting
        if setting == "history_end" and history["date"].notna().any():
            return (history["date"].max() + pd.Timedelta(days=1)).date()
        return datetime.now(UTC).date()


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            frame.index = pd.RangeIndex(1, len(frame) + 1)
            return frame
        # Cells read as categories: a history repeats a few thousand SKUs, dates and quantities
        # millions of times, and one string per cell took twice the memory (7.7M rows: 577 ->
        # 263 MB at its peak) and made every later pass over the text slower.
        frame = pd.read_csv(path, dtype="category", keep_default_na=False, na_values=[""],
                            skipinitialspace=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"cannot be read: {err}".splitlines()[0], record=str(path)) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(2, len(frame) + 2)   # line numbers: line 1 is the header
    return frame


_COLUMNS = {"catalog": CATALOG_COLUMNS, "offers": OFFER_COLUMNS, "positions": POSITION_COLUMNS,
            "history": HISTORY_COLUMNS, "open_orders": OPEN_ORDER_COLUMNS,
            "promotions": PROMOTION_COLUMNS}


def _conform(frame: pd.DataFrame, dataset: str, currency: str) -> pd.DataFrame:
    """Contract columns in contract order, with defaults and types; bad values become NaN/NaT.

    Values are coerced, not judged: the clean step quarantines what became NaN, with its line.
    """
    out = frame.copy()
    if dataset != "history":     # categories pay off on the long history only
        out = out.astype({c: object for c in out.columns
                          if isinstance(out[c].dtype, pd.CategoricalDtype)})
    for column in _COLUMNS[dataset]:
        if column not in out.columns:
            out[column] = currency if column == "currency" else _DEFAULTS.get(column)
        elif column in _NUMERIC:
            blank = out[column].isna()
            out[column] = per_distinct(out[column],
                                       lambda cells: pd.to_numeric(cells, errors="coerce"))
            if column in _BLANK_MEANS_DEFAULT:   # an empty cell is the default, "x" stays NaN
                out.loc[blank, column] = _DEFAULTS[column]
        elif column in ("date", "expected_date"):
            out[column] = per_distinct(out[column], lambda cells: pd.to_datetime(
                cells, errors="coerce", format="mixed"))
        elif column in _TEXT:   # a missing cell stays missing
            out[column] = stripped_text(out[column])
    if dataset == "catalog":
        out[["description", "category", "unit"]] = out[["description", "category", "unit"]] \
            .fillna({"description": "", "category": "", "unit": "each"})
    result = out[[*_COLUMNS[dataset], *_extra_columns(frame, dataset)]]
    result.attrs = dict(frame.attrs)
    return result


def _extra_columns(frame: pd.DataFrame, dataset: str) -> list[str]:
    """Columns beyond the contract that other steps may use (kept, never required)."""
    keep = {"catalog": ("unit_price", "supplier", "abc_class"), "history": ("promotion",)}
    # org and unit, wherever a file has them, are checked by the clean step (wrong org's file,
    # a quantity in another unit than the catalog's).
    wanted = (*keep.get(dataset, ()), "org", "unit")
    return [c for c in wanted if c in frame.columns and c not in _COLUMNS[dataset]]


def _narrow(snapshot: Snapshot, scope: Scope) -> Snapshot:
    if scope.skus is None and scope.locations is None and scope.since is None:
        return snapshot

    def keep(frame: pd.DataFrame, by_location: bool = False) -> pd.DataFrame:
        mask = pd.Series(True, index=frame.index)
        if scope.skus is not None:
            mask &= frame["sku"].isin(scope.skus)
        if by_location and scope.locations is not None:
            mask &= frame["location"].isin(scope.locations)
        return frame[mask]

    history = keep(snapshot.history, by_location=True)
    if scope.since is not None:
        # An unreadable date stays in: the clean step quarantines and reports it.
        dates = pd.to_datetime(history["date"], errors="coerce")
        history = history[dates.isna() | (dates >= pd.Timestamp(scope.since))]
    return Snapshot(catalog=keep(snapshot.catalog), offers=keep(snapshot.offers),
                    positions=keep(snapshot.positions, by_location=True), history=history,
                    open_orders=keep(snapshot.open_orders), as_of=snapshot.as_of,
                    source=snapshot.source, promotions=keep(snapshot.promotions))


# ---------------------------------------------------------------- order sink

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class FilesOutboxSettings(ConnectorSettings):
    path: str = Field(description="outbox folder: one JSON document per purchase order")


class FilesOrderSink(OrderSink):
    """An outbox folder another system picks orders up from; a key is written at most once."""

    Settings = FilesOutboxSettings
    name = "files"
    settings: FilesOutboxSettings

    @property
    def folder(self) -> Path:
        return _resolve(self.settings.path, self.context.config_dir)

    def check(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def submit(self, order: PurchaseOrder, idempotency_key: str) -> SubmitResult:
        target = self._path(idempotency_key)
        if target.exists():
            return SubmitResult(accepted=True, external_id=target.name, duplicate=True,
                                detail=f"already in {self.folder}")
        self.check()
        document = {"idempotency_key": idempotency_key,
                    "submitted_at": datetime.now(UTC).isoformat(),
                    **order.model_dump(mode="json")}
        if not _write_once(target, json.dumps(document, indent=2, sort_keys=True) + "\n"):
            return SubmitResult(accepted=True, external_id=target.name, duplicate=True,
                                detail=f"already in {self.folder}")
        return SubmitResult(accepted=True, external_id=target.name, detail=str(target))

    def lookup(self, idempotency_key: str) -> SubmitResult | None:
        target = self._path(idempotency_key)
        if not target.is_file():
            return None
        try:
            document = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConnectorError(f"files:{self.folder}", f"{target.name} is unreadable ({err})") \
                from None
        if document.get("idempotency_key") != idempotency_key:
            raise ConnectorError(f"files:{self.folder}",
                                 f"{target.name} holds a different idempotency key")
        return SubmitResult(accepted=True, external_id=target.name, detail=str(target))

    def read(self, idempotency_key: str) -> dict | None:
        """The stored JSON document for a key (for people and tests), or None."""
        target = self._path(idempotency_key)
        return json.loads(target.read_text(encoding="utf-8")) if target.is_file() else None

    def _path(self, idempotency_key: str) -> Path:
        if not _SAFE_KEY.match(idempotency_key):
            raise ConnectorError(f"files:{self.folder}",
                                 f"idempotency key {idempotency_key!r} is not a safe file name")
        return self.folder / f"{idempotency_key}.json"


def _write_once(target: Path, text: str) -> bool:
    """Create ``target`` atomically with ``text`` unless it exists; False if it already did.

    A hard link publishes the fully written temp file under the final name and fails if that name
    exists, so two racing writers cannot both win and no reader sees half a document.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        _fsync_dir(target.parent)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


# ---------------------------------------------------------------- summary sink

class FilesSummarySettings(ConnectorSettings):
    path: str = Field(description="folder for <run_id>.json and <run_id>.md")
    formats: list[Literal["json", "md"]] = Field(default_factory=lambda: ["json", "md"])


class FilesSummarySink(SummarySink):
    """Writes each run summary as JSON (for machines) and Markdown (for people)."""

    Settings = FilesSummarySettings
    name = "files"
    settings: FilesSummarySettings

    @property
    def folder(self) -> Path:
        return _resolve(self.settings.path, self.context.config_dir)

    def check(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def post(self, summary: RunSummary) -> None:
        if not _SAFE_KEY.match(summary.run_id):
            raise ConnectorError(f"files:{self.folder}",
                                 f"run id {summary.run_id!r} is not a safe file name")
        self.check()
        if "json" in self.settings.formats:
            _atomic_write(self.folder / f"{summary.run_id}.json",
                          summary.model_dump_json(indent=2) + "\n")
        if "md" in self.settings.formats:
            _atomic_write(self.folder / f"{summary.run_id}.md", _markdown(summary))

    def paths(self, run_id: str) -> list[Path]:
        """Where a run's summary files are written."""
        return [self.folder / f"{run_id}.{ext}" for ext in self.settings.formats]


def _markdown(summary: RunSummary) -> str:
    try:
        from restock.report import render_markdown  # the full report, when installed
    except ImportError:
        return minimal_markdown(summary)
    return render_markdown(summary)


def minimal_markdown(summary: RunSummary) -> str:
    """A short Markdown summary: status, spend, every order line with its first reason."""
    lines = [f"# restock run {summary.run_id} — {summary.org}", "",
             f"- status: **{summary.status.value}** (mode {summary.mode.value})",
             f"- as of: {summary.as_of or '-'}",
             f"- spend: {summary.spend:,.2f} {summary.currency}"
             + (f" of budget {summary.budget:,.2f}" if summary.budget is not None else ""),
             (f"- orders: {len(summary.orders)}, held: {len(summary.held)}, "
              f"skipped lines: {len(summary.skipped)}, quarantined records: "
              f"{len(summary.quarantined)}"), ""]
    for title, orders in (("Orders", summary.orders), ("Held for approval", summary.held)):
        if orders:
            lines += [f"## {title}", ""] + [_order_md(order) for order in orders]
    if summary.skipped:
        lines += ["## Skipped", ""] + [
            f"- {s.sku}: {s.reasons[-1].message if s.reasons else 'no reason given'}"
            for s in summary.skipped] + [""]
    if summary.quarantined:
        lines += ["## Quarantined records", ""] + [
            f"- {q.record}: {q.reason}" for q in summary.quarantined] + [""]
    if summary.errors:
        lines += ["## Errors", ""] + [f"- {e}" for e in summary.errors] + [""]
    return "\n".join(lines) + "\n"


def _order_md(order: PurchaseOrder) -> str:
    rows = [f"### {order.supplier} — {order.total:,.2f} {order.currency} ({order.status})", "",
            "| SKU | quantity | unit price | why |", "|---|---:|---:|---|"]
    for line in order.lines:
        why = "; ".join(r.message for r in line.reasons) or "-"
        rows.append(f"| {line.sku} | {line.quantity:g} | {line.unit_price:,.2f} | {why} |")
    return "\n".join(rows) + "\n"


inventory_source = FilesInventorySource
order_sink = FilesOrderSink
summary_sink = FilesSummarySink
