"""The demo warehouse: reproducible, readable by the files source, shaped like real demand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from restock.connectors import ConnectorContext, Scope
from restock.demo import DEMAND_CLASSES, generate
from restock_connectors.files import FilesInventorySource

END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    made = generate(folder, seed=11, end=END)
    return folder, made


def _zero_share(folder) -> pd.DataFrame:
    history = pd.read_csv(folder / "history.csv.gz")
    classes = pd.read_csv(folder / "demand_classes.csv")
    days = history.groupby("sku").size().reindex(classes["sku"]).fillna(0).to_numpy()
    return classes.assign(zero_share=1 - days / 730)


def test_same_seed_and_end_give_identical_files(tmp_path, warehouse):
    folder, _ = warehouse
    generate(tmp_path, seed=11, end=END)
    for name in ("catalog.csv", "offers.csv", "positions.csv", "history.csv.gz"):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name
    generate(tmp_path / "other", seed=12, end=END)
    assert (tmp_path / "other" / "history.csv.gz").read_bytes() != \
        (folder / "history.csv.gz").read_bytes()


def test_files_source_reads_it_into_a_complete_snapshot(warehouse):
    folder, made = warehouse
    source = FilesInventorySource(FilesInventorySource.Settings(path=str(folder)),
                                  ConnectorContext(org="demo"))
    snap = source.pull(Scope())
    assert len(snap.catalog) == made.skus == 300
    assert set(snap.offers["sku"]) == set(snap.catalog["sku"]) == set(snap.positions["sku"])
    assert snap.history["date"].min().date() == made.start and \
        snap.history["date"].max().date() <= END
    assert not snap.history["quantity"].isna().any() and (snap.history["quantity"] > 0).all()
    assert not snap.offers[["unit_price", "lead_time_days", "moq", "pack_size"]].isna().any().any()


def test_every_demand_class_is_present_with_its_zero_share(warehouse):
    folder, made = warehouse
    assert set(made.classes) == set(DEMAND_CLASSES)
    median = _zero_share(folder).groupby("demand_class")["zero_share"].median()
    assert median["smooth"] < 0.2 and median["seasonal"] < 0.35
    assert 0.7 < median["intermittent"] < 0.97 and median["lumpy"] > 0.9


def test_seasonal_items_swing_over_the_year(warehouse):
    folder, _ = warehouse
    history = pd.read_csv(folder / "history.csv.gz", parse_dates=["date"])
    classes = pd.read_csv(folder / "demand_classes.csv").set_index("sku")["demand_class"]
    monthly = history.assign(cls=history["sku"].map(classes), month=history["date"].dt.month) \
        .groupby(["cls", "sku", "month"])["quantity"].sum()
    swing = monthly.groupby(["cls", "sku"]).agg(lambda s: s.max() / max(s.min(), 1)) \
        .groupby("cls").median()
    assert swing["seasonal"] > 1.8 * swing["smooth"]


def test_offers_have_breaks_moq_in_whole_packs_and_several_suppliers(warehouse):
    folder, _ = warehouse
    offers = pd.read_csv(folder / "offers.csv")
    assert offers["supplier"].nunique() >= 4
    assert (offers["moq"] % offers["pack_size"] == 0).all()
    breaks = offers[offers["min_qty"] > 0]
    assert len(breaks) > 50
    base = offers[offers["min_qty"] == 0].set_index(["sku", "supplier"])["unit_price"]
    cheaper = breaks.set_index(["sku", "supplier"])["unit_price"] <= base.reindex(
        breaks.set_index(["sku", "supplier"]).index)
    assert cheaper.all()
    assert offers.groupby("sku")["supplier"].nunique().max() == 2


def test_costs_and_lead_times_span_the_ranges_of_real_spare_parts(warehouse, shared_data):
    folder, _ = warehouse
    real = pd.read_csv(shared_data / "sets" / "man_items.csv")
    offers = pd.read_csv(folder / "offers.csv")
    real_cost = real["cost_price_eur"]
    ours = offers["unit_price"]
    assert 0.25 < ours.median() / real_cost.median() < 4
    assert ours.quantile(0.05) < real_cost.quantile(0.25) and \
        ours.quantile(0.95) > real_cost.quantile(0.75)
    real_lead_days = real["lead_time_weeks"] * 7
    assert offers["lead_time_days"].min() <= real_lead_days.min() and \
        offers["lead_time_days"].max() >= real_lead_days.max()
    assert set(np.unique(offers["moq"])) & set(real["min_order_qty"].astype(int))


def test_lumpy_items_have_the_zero_share_of_real_spare_parts(warehouse, shared_data):
    folder, _ = warehouse
    man = pd.read_csv(shared_data / "sets" / "man.csv.gz")
    active = man.groupby("item_id")["quantity"].apply(lambda s: (s == 0).mean())
    active = active[active < 1]   # MAN has many all-zero series; compare those with demand
    ours = _zero_share(folder)
    sparse = ours[ours["demand_class"].isin(["intermittent", "lumpy"])]["zero_share"]
    # weekly MAN buckets are coarser than our days, so ours must be at least as sparse
    assert sparse.median() >= active.quantile(0.25)
