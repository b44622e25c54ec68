"""Every data case of the corpus through a whole cycle, not only through cleaning.

A broken warehouse must end in a run that names its problem — quarantined records in the summary,
or one clear error line — never in an internal error; no order line for a blocked SKU or one left
without a valid offer; and another org sharing the state store, run right after, orders exactly
what it orders on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restock.config import load_org
from restock.cycle import run_org
from restock.demo import generate
from restock.domain import RunStatus
from restock.store import open_store
from tests.corpus.test_corpus import AS_OF, CORPUS, DATA_CASES, ORG, _expected, warehouse

pytestmark = pytest.mark.slow


def _org(folder: Path, org: str, data: Path, as_of: object = AS_OF) -> Path:
    # history_days reaches back past 2024: the cycle asks the source for history since
    # (today - history_days), not since (planning date - history_days).
    path = folder / f"{org}.yaml"
    path.write_text(f"""org: {org}
mode: auto
source: {{connector: files, path: {data}, as_of: {as_of}}}
order_sink: {{connector: files, path: ./outbox-{org}}}
forecast: {{statsmodels_seconds: 0, history_days: 3650}}
guard: {{max_multiple_of_usual: 1000, min_forecast_confidence: 0}}
""")
    path.chmod(0o640)
    return path


def _ordered(folder: Path, org: str) -> dict[str, dict[str, float]]:
    found = {}
    for path in sorted((folder / f"outbox-{org}").glob("*.json")):
        document = json.loads(path.read_text())
        found[document["supplier"]] = {line["sku"]: line["quantity"]
                                       for line in document["lines"]}
    return found


@pytest.fixture(scope="module")
def neighbour(tmp_path_factory) -> tuple[Path, dict[str, dict[str, float]]]:
    """A healthy org's warehouse, and its orders when it runs on its own."""
    folder = tmp_path_factory.mktemp("neighbour")
    generate(folder / "warehouse", seed=9, skus=8)
    with open_store(f"sqlite:///{folder / 'state.db'}") as store:
        run_org(load_org(_org(folder, "neighbour", folder / "warehouse", "history_end")),
                store=store)
    orders = _ordered(folder, "neighbour")
    assert orders, "the generated warehouse should need some orders"
    return folder / "warehouse", orders


def _short_of_stock(case: str, folder: Path) -> None:
    # The base warehouse holds enough of everything; with nothing on hand every SKU that can be
    # ordered is, so "no order for a blocked SKU" is a real check. Cases about stock keep theirs.
    if not (CORPUS / "data" / case / "positions.csv").exists():
        (folder / "positions.csv").write_text(
            "sku,location,on_hand,allocated,on_order,backorders\n"
            + "".join(f"{sku},main,0,0,0,0\n" for sku in "ABCD"))


CASES = DATA_CASES


@pytest.mark.parametrize("case", CASES)
def test_a_broken_warehouse_runs_to_a_named_problem_and_leaves_others_alone(
        case, tmp_path, neighbour):
    expected = _expected(CORPUS / "data" / case)
    data = warehouse(case, tmp_path)
    _short_of_stock(case, data)
    healthy, alone = neighbour
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        summary = run_org(load_org(_org(tmp_path, ORG, data)), store=store)
        run_org(load_org(_org(tmp_path, "neighbour", healthy, "history_end")), store=store)
    assert not [e for e in summary.errors if "internal error" in e], summary.errors
    ordered = {sku for lines in _ordered(tmp_path, ORG).values() for sku in lines}
    if expected.get("error"):
        assert summary.status == RunStatus.FAILED and not ordered
        assert any(expected["error"] in e and "\n" not in e for e in summary.errors)
    else:
        assert summary.status != RunStatus.FAILED, summary.errors
        shown = {(q.dataset, q.record, q.reason) for q in summary.quarantined}
        assert {(q["dataset"], q["record"], q["reason"]) for q in expected["quarantined"]} \
            <= shown
        assert not ordered & set(expected["blocked"])
        assert not ordered & set(expected.get("no_offer", []))
    assert _ordered(tmp_path, "neighbour") == alone
