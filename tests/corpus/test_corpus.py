"""The bad-input corpus: every broken config and data file here gives its expected error or quarantine.

Layout (add a case by adding a folder; nothing else to edit):

- ``config/<case>/org.yaml`` (+ any secret files it references) and ``expected.yaml`` with
  ``error`` (a regular expression the one-line error must match from ``org.yaml:LINE: field:``
  on; ``null``: the file loads),
  ``kind`` (the exception class) and optional ``env`` (variables set while loading) and ``secret``
  (a value that must not appear in the message).
- ``data/<case>/``: only the files that differ from ``data/_base/`` (a clean four-SKU warehouse),
  and ``expected.yaml`` with ``quarantined`` (dataset, record, reason, exactly), ``blocked`` (SKUs
  that must get no order), optional ``no_offer`` (SKUs left without any valid offer), or ``error``.
"""

from __future__ import annotations

import re
import shutil
import types
from datetime import date
from pathlib import Path

import pytest
import yaml

import restock.errors
from restock.clean import clean_snapshot
from restock.config import SecretRef, load_org
from restock.connectors import (
    ConnectorContext,
    ConnectorSettings,
    OrderSink,
    Scope,
    SubmitResult,
    connector_class,
    register,
)
from restock.errors import RestockError

CORPUS = Path(__file__).parent
CONFIG_CASES = sorted(p.name for p in (CORPUS / "config").iterdir() if p.is_dir())
DATA_CASES = sorted(p.name for p in (CORPUS / "data").iterdir()
                    if p.is_dir() and not p.name.startswith("_"))
ORG = "corpus"
AS_OF = date(2024, 7, 1)


class _SecuredSettings(ConnectorSettings):
    url: str
    token: SecretRef


class _SecuredSink(OrderSink):
    """An order sink that needs a token: lets config cases exercise secret references."""

    Settings = _SecuredSettings

    def submit(self, order, idempotency_key):  # pragma: no cover - never called here
        return SubmitResult(accepted=False)

    def lookup(self, idempotency_key):  # pragma: no cover
        return None


register("corpus-secured", types.SimpleNamespace(order_sink=_SecuredSink))


def _expected(folder: Path) -> dict:
    return yaml.safe_load((folder / "expected.yaml").read_text()) or {}


# ---------------------------------------------------------------- configs

@pytest.mark.parametrize("case", CONFIG_CASES)
def test_config_case(case, tmp_path, monkeypatch):
    source = CORPUS / "config" / case
    expected = _expected(source)
    for key, value in (expected.get("env") or {}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CORPUS_TOKEN_NOT_SET", raising=False)
    shutil.copytree(source, tmp_path / case)
    path = tmp_path / case / "org.yaml"
    path.chmod(0o640)
    if expected.get("error") is None:
        assert load_org(path).org == ORG
        return
    with pytest.raises(RestockError) as caught:
        load_org(path)
    message = str(caught.value)
    assert type(caught.value) is getattr(restock.errors, expected["kind"])
    assert "\n" not in message, message
    assert re.search(expected["error"], message), message
    assert message.startswith(str(path)) or message.startswith(f"{case}/org.yaml")
    if expected.get("secret"):
        assert expected["secret"] not in message


# ---------------------------------------------------------------- data

def warehouse(case: str, into: Path) -> Path:
    """``data/_base`` with the case's files laid over it."""
    folder = into / "warehouse"
    shutil.copytree(CORPUS / "data" / "_base", folder)
    for path in (CORPUS / "data" / case).iterdir():
        if path.name != "expected.yaml":
            shutil.copy(path, folder / path.name)
    return folder


def pull(folder: Path):
    cls = connector_class("files", "inventory_source")
    settings = cls.Settings(path=str(folder), as_of=AS_OF)
    return cls(settings, ConnectorContext(org=ORG, config_dir=str(folder.parent))).pull(Scope())


@pytest.mark.parametrize("case", DATA_CASES)
def test_data_case_through_the_files_source_and_clean(case, tmp_path):
    expected = _expected(CORPUS / "data" / case)
    folder = warehouse(case, tmp_path)
    if expected.get("error"):
        with pytest.raises(RestockError) as caught:
            clean_snapshot(pull(folder), org=ORG)
        assert "\n" not in str(caught.value) and expected["error"] in str(caught.value)
        return
    result = clean_snapshot(pull(folder), org=ORG)
    found = sorted((q.dataset, q.record, q.reason) for q in result.quarantined)
    wanted = sorted((q["dataset"], q["record"], q["reason"]) for q in expected["quarantined"])
    assert found == wanted
    assert set(result.blocked_skus) == set(expected["blocked"])
    offered = set(result.snapshot.offers["sku"])
    assert not offered & set(result.blocked_skus)
    assert not offered & set(expected.get("no_offer", []))
    usable = {"A", "B", "C", "D"} - set(expected["blocked"]) - set(expected.get("no_offer", []))
    assert usable <= offered   # the rest of the org's data is still there to plan from


def test_base_warehouse_is_clean(tmp_path):
    folder = tmp_path / "warehouse"
    shutil.copytree(CORPUS / "data" / "_base", folder)
    result = clean_snapshot(pull(folder), org=ORG)
    assert result.quarantined == [] and result.blocked_skus == {}
