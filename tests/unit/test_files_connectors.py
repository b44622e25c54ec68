"""The `files` connectors: a warehouse folder, an idempotent outbox, a summary folder."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from restock.connectors import ConnectorContext, Scope, connector_class
from restock.domain import (
    CATALOG_COLUMNS,
    HISTORY_COLUMNS,
    OFFER_COLUMNS,
    POSITION_COLUMNS,
    Mode,
    OrderLine,
    PurchaseOrder,
    Reason,
    RunStatus,
    RunSummary,
    idempotency_key,
)
from restock.errors import ConfigError, ConnectorError, DataError
from restock_connectors import files

CATALOG = "sku,description,category,unit\nA1,Bolt M6,fasteners,each\nB2,Filter,filters,each\n"
POSITIONS = "sku,location,on_hand,allocated,on_order,backorders\nA1,main,10,2,0,0\nB2,main,3,,5,1\n"
HISTORY = ("sku,location,date,quantity\n"
           "A1,main,2024-01-01,4\nA1,main,2024-01-02,x\nB2,main,2024-01-03,1\n")
OFFERS = ("sku,supplier,unit_price,lead_time_days,moq,pack_size,min_qty\n"
          "A1,acme,0.50,7,100,50,0\nA1,acme,0.40,7,100,50,1000\nB2,filtco,12.0,21,1,1,0\n")


def _warehouse(folder: Path, **overrides: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    content = {"catalog.csv": CATALOG, "positions.csv": POSITIONS, "history.csv": HISTORY,
               "offers.csv": OFFERS, **overrides}
    for name, text in content.items():
        if text is not None:
            (folder / name).write_text(text)
    return folder


def _source(path: str, config_dir: Path, **settings) -> files.FilesInventorySource:
    cls = connector_class("files", "inventory_source")
    context = ConnectorContext(org="t", config_dir=str(config_dir))
    return cls(cls.Settings(path=path, **settings), context)


def test_registered_under_the_entry_point_name_for_all_three_roles():
    assert connector_class("files", "inventory_source") is files.FilesInventorySource
    assert connector_class("files", "order_sink") is files.FilesOrderSink
    assert connector_class("files", "summary_sink") is files.FilesSummarySink


def test_pull_builds_a_snapshot_with_the_contract_columns(tmp_path):
    _warehouse(tmp_path / "wh")
    snap = _source("wh", tmp_path, as_of="2024-02-01").pull(Scope())
    assert tuple(snap.catalog.columns[:4]) == CATALOG_COLUMNS
    assert tuple(snap.offers.columns) == OFFER_COLUMNS
    assert tuple(snap.positions.columns) == POSITION_COLUMNS
    assert tuple(snap.history.columns) == HISTORY_COLUMNS
    assert snap.as_of == date(2024, 2, 1)
    assert len(snap.offers) == 3 and set(snap.offers["currency"]) == {"EUR"}
    b2 = snap.positions.set_index("sku").loc["B2"]
    assert (b2.on_hand, b2.allocated, b2.on_order, b2.backorders) == (3, 0, 5, 1)
    assert pd.api.types.is_datetime64_any_dtype(snap.history["date"])


def test_bad_values_become_nan_keeping_their_line_number_for_quarantine(tmp_path):
    _warehouse(tmp_path)
    snap = _source(str(tmp_path), tmp_path).pull(Scope())
    bad = snap.history[snap.history["quantity"].isna()]
    assert list(bad.index) == [3]                   # line 3 of history.csv holds "x"
    assert snap.history.attrs["source"].endswith("history.csv")


def test_missing_optional_position_columns_get_defaults(tmp_path):
    _warehouse(tmp_path, **{"positions.csv": "sku,on_hand\nA1,4\n"})
    positions = _source(".", tmp_path).pull(Scope()).positions
    row = positions.iloc[0]
    assert (row.location, row.allocated, row.on_order, row.backorders) == ("main", 0, 0, 0)


def test_without_offers_file_the_catalog_supplier_columns_form_one_offer_per_sku(tmp_path):
    catalog = ("sku,description,supplier,unit_cost,lead_time_days,moq,pack_size\n"
               "A1,Bolt,acme,0.5,7,100,50\nB2,Filter,filtco,12,21,1,1\n")
    _warehouse(tmp_path, **{"catalog.csv": catalog, "offers.csv": None})
    offers = _source(".", tmp_path).pull(Scope()).offers
    assert list(offers["sku"]) == ["A1", "B2"]
    assert list(offers["unit_price"]) == [0.5, 12.0]
    assert list(offers["pack_size"]) == [50, 1] and list(offers["lead_time_days"]) == [7, 21]


def test_no_offers_anywhere_is_an_error_naming_the_column(tmp_path):
    _warehouse(tmp_path, **{"offers.csv": None})
    with pytest.raises(DataError, match=r"catalog\.csv:1: supplier: column missing"):
        _source(".", tmp_path).pull(Scope())


@pytest.mark.parametrize("name", ["catalog.csv", "positions.csv", "history.csv"])
def test_a_missing_required_file_is_a_config_error_naming_it(tmp_path, name):
    _warehouse(tmp_path, **{name: None})
    with pytest.raises(ConfigError) as err:
        _source(".", tmp_path).pull(Scope())
    assert str(err.value).startswith(f"{tmp_path / name}: ")
    assert "\n" not in str(err.value)


def test_a_missing_column_names_file_line_and_column(tmp_path):
    _warehouse(tmp_path, **{"positions.csv": "sku,location,allocated\nA1,main,0\n"})
    with pytest.raises(DataError) as err:
        _source(".", tmp_path).pull(Scope())
    message = str(err.value)
    assert message.startswith(str(tmp_path / "positions.csv") + ":1: on_hand: ")
    assert "sku, location, allocated" in message and "\n" not in message


def test_an_empty_history_file_is_a_missing_column_error_not_a_crash(tmp_path):
    _warehouse(tmp_path, **{"history.csv": ""})
    with pytest.raises(DataError, match="history.csv:1: sku: required column is missing"):
        _source(".", tmp_path).pull(Scope())


def test_header_only_history_gives_an_empty_history(tmp_path):
    _warehouse(tmp_path, **{"history.csv": "sku,location,date,quantity\n"})
    assert _source(".", tmp_path).pull(Scope()).history.empty


def test_a_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        _source("nowhere", tmp_path).pull(Scope())


def test_history_as_gzip_and_parquet(tmp_path):
    gz = _warehouse(tmp_path / "gz", **{"history.csv": None})
    with gzip.open(gz / "history.csv.gz", "wt") as handle:
        handle.write(HISTORY)
    assert len(_source("gz", tmp_path).pull(Scope()).history) == 3
    pq = _warehouse(tmp_path / "pq", **{"history.csv": None})
    pd.DataFrame({"sku": ["A1"], "date": pd.to_datetime(["2024-01-01"]), "quantity": [2.0]}) \
        .to_parquet(pq / "history.parquet")
    history = _source("pq", tmp_path, as_of="history_end").pull(Scope())
    assert history.history["location"].tolist() == ["main"]
    assert history.as_of == date(2024, 1, 2)


def test_relative_paths_resolve_against_the_config_dir_not_the_cwd(tmp_path, monkeypatch):
    _warehouse(tmp_path / "cfg" / "wh")
    monkeypatch.chdir(tmp_path)
    snap = _source("wh", tmp_path / "cfg").pull(Scope())
    assert snap.source == f"files:{tmp_path / 'cfg' / 'wh'}"


def test_scope_narrows_every_frame(tmp_path):
    _warehouse(tmp_path)
    snap = _source(".", tmp_path).pull(Scope(skus=("B2",)))
    assert set(snap.catalog.sku) == set(snap.offers.sku) == set(snap.history.sku) == {"B2"}


def test_open_orders_are_read_when_present(tmp_path):
    _warehouse(tmp_path, **{"open_orders.csv": "reference,sku,supplier,quantity,expected_date\n"
                                                "PO-1,A1,acme,100,2024-02-10\n"})
    open_orders = _source(".", tmp_path).pull(Scope()).open_orders
    assert open_orders.iloc[0].reference == "PO-1" and open_orders.iloc[0].quantity == 100


# ---------------------------------------------------------------- outbox

PROMOTIONS = ("sku,date,promotion\n"
              "A1,2023-12-20,1\nA1,2024-01-09,1\nB2,2024-01-10,2\nZ9,2024-01-11,1\n"
              "A1,someday,1\nB2,2024-01-12,\n")


def test_promotions_are_read_and_a_bad_row_is_quarantined_with_file_and_line(tmp_path):
    from restock.clean import clean_snapshot

    folder = _warehouse(tmp_path / "wh", **{"promotions.csv": PROMOTIONS})
    snap = _source(str(folder), tmp_path).pull(Scope())
    assert list(snap.promotions.columns[:3]) == ["sku", "date", "promotion"]
    cleaned = clean_snapshot(snap, as_of=date(2024, 1, 4))
    reasons = {q.record: q.reason for q in cleaned.quarantined if q.dataset == "promotions"}
    assert reasons == {
        "promotions.csv:4 (sku=B2, date=2024-01-10)": "promotion flag 2 must be 0 or 1",
        "promotions.csv:5 (sku=Z9, date=2024-01-11)": "SKU not in the catalog",
        "promotions.csv:6 (sku=A1, date=?)": "date is missing or unparsable"}
    kept = cleaned.snapshot.promotions
    assert kept[["sku", "promotion"]].values.tolist() == [["A1", 1.0], ["A1", 1.0], ["B2", 1.0]]
    assert [d.date() for d in kept["date"]] == [date(2023, 12, 20), date(2024, 1, 9),
                                               date(2024, 1, 12)]   # ahead of the planning date
    assert cleaned.blocked_skus == {}                # a bad calendar row never blocks an order


def test_without_promotions_file_the_calendar_is_empty(tmp_path):
    snap = _source(str(_warehouse(tmp_path / "wh")), tmp_path).pull(Scope())
    assert snap.promotions.empty and list(snap.promotions.columns) == ["sku", "date", "promotion"]


def _order(key: str, quantity: float = 100) -> PurchaseOrder:
    line = OrderLine(sku="A1", supplier="acme", quantity=quantity, unit_price=0.5,
                     reasons=[Reason(code="forecast", message="forecast 80 over 14 days")])
    return PurchaseOrder(order_id="o-1", org="t", supplier="acme", currency="EUR",
                         idempotency_key=key, lines=[line])


def _sink(tmp_path: Path) -> files.FilesOrderSink:
    cls = connector_class("files", "order_sink")
    return cls(cls.Settings(path="outbox"), ConnectorContext(org="t", config_dir=str(tmp_path)))


def test_submit_writes_one_json_document_named_by_the_key(tmp_path):
    sink, key = _sink(tmp_path), idempotency_key("t", "acme", "2024-02-01")
    result = sink.submit(_order(key), key)
    assert result.accepted and not result.duplicate
    document = json.loads((tmp_path / "outbox" / f"{key}.json").read_text())
    assert document["idempotency_key"] == key and document["lines"][0]["quantity"] == 100
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [f"{key}.json"]


def test_a_known_key_is_a_duplicate_and_is_not_written_again(tmp_path):
    sink, key = _sink(tmp_path), idempotency_key("t", "acme", "2024-02-01")
    sink.submit(_order(key), key)
    before = (tmp_path / "outbox" / f"{key}.json").read_bytes()
    again = sink.submit(_order(key, quantity=999), key)
    assert again.accepted and again.duplicate
    assert (tmp_path / "outbox" / f"{key}.json").read_bytes() == before


def test_racing_submits_of_one_key_write_exactly_one_document(tmp_path):
    sink, key = _sink(tmp_path), idempotency_key("t", "acme", "race")
    sink.check()
    results = []
    threads = [threading.Thread(target=lambda q=q: results.append(sink.submit(_order(key, q), key)))
               for q in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(not r.duplicate for r in results) == 1
    assert len(list((tmp_path / "outbox").iterdir())) == 1


def test_lookup_reads_back_what_was_submitted(tmp_path):
    sink, key = _sink(tmp_path), idempotency_key("t", "acme", "2024-02-01")
    assert sink.lookup(key) is None
    sink.submit(_order(key), key)
    found = sink.lookup(key)
    assert found is not None and found.accepted and found.external_id == f"{key}.json"
    assert sink.read(key)["supplier"] == "acme"


def test_an_unsafe_key_is_refused(tmp_path):
    with pytest.raises(ConnectorError, match="not a safe file name"):
        _sink(tmp_path).submit(_order("../escape"), "../escape")


# ---------------------------------------------------------------- summaries

def _summary() -> RunSummary:
    key = idempotency_key("t", "acme", "s")
    return RunSummary(org="t", run_id="20240201T060000-ab12", status=RunStatus.OK, mode=Mode.AUTO,
                      started_at=datetime(2024, 2, 1, 6, tzinfo=UTC), currency="EUR",
                      orders=[_order(key)], spend=50.0, budget=1000.0)


def test_summary_sink_writes_json_and_markdown_named_by_run_id(tmp_path):
    cls = connector_class("files", "summary_sink")
    sink = cls(cls.Settings(path="summaries"), ConnectorContext(org="t", config_dir=str(tmp_path)))
    sink.post(_summary())
    folder = tmp_path / "summaries"
    assert sorted(p.name for p in folder.iterdir()) == [
        "20240201T060000-ab12.json", "20240201T060000-ab12.md"]
    assert RunSummary.model_validate_json((folder / "20240201T060000-ab12.json").read_text()) \
        == _summary()
    markdown = (folder / "20240201T060000-ab12.md").read_text()
    assert "A1" in markdown and "acme" in markdown


def test_minimal_markdown_lists_lines_with_reasons():
    text = files.minimal_markdown(_summary())
    assert "| A1 | 100 | 0.50 | forecast 80 over 14 days |" in text
    assert "budget 1,000.00" in text


def test_summary_formats_can_be_narrowed(tmp_path):
    cls = connector_class("files", "summary_sink")
    sink = cls(cls.Settings(path=".", formats=["json"]),
               ConnectorContext(org="t", config_dir=str(tmp_path)))
    sink.post(_summary())
    assert [p.suffix for p in tmp_path.iterdir()] == [".json"]


def test_history_text_is_read_as_categories_stripped_and_cleaned_back_to_text(tmp_path):
    from restock.clean import clean_snapshot

    history = ("sku,location,date,quantity\n"
               "A1,main,2024-01-01,4\n A1 ,main ,2024-01-02,3\nB2,main,2024-01-03,1\n"
               ",main,2024-01-04,2\n")
    _warehouse(tmp_path, **{"history.csv": history})
    snap = _source(".", tmp_path, as_of="2024-02-01").pull(Scope())
    sku = snap.history["sku"]
    # one category per SKU once stripped: " A1 " and "A1" are the same SKU
    assert isinstance(sku.dtype, pd.CategoricalDtype)
    assert sorted(sku.cat.categories) == ["A1", "B2"]
    assert sku.tolist()[:3] == ["A1", "A1", "B2"] and pd.isna(sku.iloc[3])
    assert snap.history["location"].tolist() == ["main"] * 4
    cleaned = clean_snapshot(snap, as_of=date(2024, 2, 1))
    history_out = cleaned.snapshot.history
    assert history_out["sku"].dtype == object and history_out["location"].dtype == object
    assert history_out["sku"].tolist() == ["A1", "A1", "B2"]
    assert [q.reason for q in cleaned.quarantined] == ["missing SKU"]
    assert cleaned.quarantined[0].record.startswith("history.csv:5")
