"""CSV export order sink on a real folder."""

from __future__ import annotations

import csv

import pytest

from restock.connectors import ConnectorContext
from restock.errors import ConnectorError
from restock_connectors.csv import CsvOrderSink
from tests.support.samples import purchase_order


def make(tmp_path, **extra) -> CsvOrderSink:
    settings = CsvOrderSink.Settings.model_validate({"path": "exports", **extra})
    return CsvOrderSink(settings, ConnectorContext(org="acme", config_dir=str(tmp_path)))


def test_writes_one_file_per_key_once(tmp_path):
    order = purchase_order()
    sink = make(tmp_path, delimiter=";")
    first = sink.submit(order, order.idempotency_key)
    changed = order.model_copy(update={"supplier": "Someone Else"})
    second = sink.submit(changed, order.idempotency_key)
    files = list((tmp_path / "exports").iterdir())
    assert [f.name for f in files] == [f"{order.idempotency_key}.csv"]
    assert not first.duplicate and second.duplicate
    rows = list(csv.DictReader(files[0].open(), delimiter=";"))
    assert [r["sku"] for r in rows] == ["M3-SCREW", "CABLE-TIE"]
    assert rows[0]["packs"] == "3" and rows[0]["supplier"] == "Acme Components"
    found = sink.lookup(order.idempotency_key)
    assert found is not None and found.external_id == first.external_id
    assert sink.lookup("restock-acme-none") is None


def test_unsafe_keys_are_refused(tmp_path):
    with pytest.raises(ConnectorError, match="not a safe file name"):
        make(tmp_path).submit(purchase_order(), "../../etc/passwd")
