"""CSV export: one file per purchase order, for people who import orders into a system by hand.

YAML::

    order_sink:
      connector: csv
      path: ./exports/orders        # relative to the org file's folder
      delimiter: ";"                # what the importing spreadsheet expects

Each order becomes ``<idempotency_key>.csv`` (one row per line, packs rounded up), written once:
a repeat of a key finds the file and writes nothing.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path

from pydantic import Field

from restock.connectors import ConnectorSettings, OrderSink, SubmitResult
from restock.domain import PurchaseOrder
from restock.errors import ConnectorError
from restock_connectors._orders import packs

COLUMNS = ("idempotency_key", "order_id", "org", "supplier", "currency", "sku", "supplier_sku",
           "description", "quantity", "pack_size", "packs", "unit_price", "line_total")
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class CsvSettings(ConnectorSettings):
    path: str = Field(description="folder the CSV files are written to")
    delimiter: str = Field(",", min_length=1, max_length=1)


class CsvOrderSink(OrderSink):
    """Writes each order once as CSV; ``lookup`` finds it by key."""

    Settings = CsvSettings
    name = "csv"
    settings: CsvSettings

    @property
    def folder(self) -> Path:
        path = Path(self.settings.path).expanduser()
        return path if path.is_absolute() else Path(self.context.config_dir) / path

    def check(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def submit(self, order: PurchaseOrder, idempotency_key: str) -> SubmitResult:
        target = self._target(idempotency_key)
        self.check()
        created = _create_once(target, self._render(order, idempotency_key))
        return SubmitResult(accepted=True, external_id=target.name, duplicate=not created,
                            detail=str(target))

    def lookup(self, idempotency_key: str) -> SubmitResult | None:
        target = self._target(idempotency_key)
        if not target.is_file():
            return None
        with target.open(newline="", encoding="utf-8") as handle:
            first = next(csv.DictReader(handle, delimiter=self.settings.delimiter), None)
        if first is None or first.get("idempotency_key") != idempotency_key:
            raise ConnectorError(f"csv:{self.folder}", f"{target.name} does not hold that key")
        return SubmitResult(accepted=True, external_id=target.name, duplicate=True,
                            detail=str(target))

    def _target(self, key: str) -> Path:
        if not _SAFE_KEY.match(key):
            raise ConnectorError(f"csv:{self.folder}", f"key {key!r} is not a safe file name")
        return self.folder / f"{key}.csv"

    def _render(self, order: PurchaseOrder, key: str) -> str:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.settings.delimiter, lineterminator="\n")
        writer.writerow(COLUMNS)
        for line in order.lines:
            writer.writerow([key, order.order_id, order.org, order.supplier, order.currency,
                             line.sku, line.supplier_sku or "", line.description, line.quantity,
                             line.pack_size, packs(line), line.unit_price, round(line.value, 6)])
        return out.getvalue()


def _create_once(target: Path, text: str) -> bool:
    """Publish ``text`` at ``target`` whole, unless it exists (False then)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, target)          # fails if the name exists: never two files for one key
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


order_sink = CsvOrderSink
