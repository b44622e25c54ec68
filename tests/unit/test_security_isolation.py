"""Each org's secrets reach only that org's connectors.

A spy connector (registered for the test) records everything restock hands it — its settings with
every secret revealed, and its context — while two orgs with their own tokens are loaded from one
config folder and one of them runs. The other org's token must appear nowhere in it. And an org
file that names another org's secret (a copied file whose token was not changed, or a file
reaching for a token it should not have) is refused, for both orgs, before anything runs.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from restock.config import SecretRef, load_orgs
from restock.connectors import (
    ConnectorContext,
    ConnectorSettings,
    OrderSink,
    SubmitResult,
    register,
)
from restock.cycle import run_org
from restock.demo import generate
from restock.store import open_store
from tests.support.dates import PINNED_END

TOKENS = {"alpha": "alpha-tok-61c0f2e9aa", "beta": "beta-tok-07d3b85e4c"}
SEEN: list[dict[str, Any]] = []


class _SpySettings(ConnectorSettings):
    token: SecretRef
    note: str = ""


class _SpySink(OrderSink):
    """Records what it was given; accepts every order."""

    Settings = _SpySettings
    name = "spy"

    def __init__(self, settings: _SpySettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        SEEN.append({"org": context.org, "settings": _revealed(settings),
                     "context": repr(vars(context))})

    def submit(self, order, idempotency_key):
        return SubmitResult(accepted=True, external_id=idempotency_key)

    def lookup(self, idempotency_key):
        return None


def _revealed(value: Any) -> str:
    """Every value reachable from ``value``, secrets shown."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return " ".join(_revealed(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return " ".join(f"{k}={_revealed(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return " ".join(_revealed(v) for v in value)
    return repr(value)


@pytest.fixture(autouse=True)
def spy(monkeypatch):
    register("spy", types.SimpleNamespace(order_sink=_SpySink))
    for org, token in TOKENS.items():
        monkeypatch.setenv(f"{org.upper()}_TOKEN", token)
    SEEN.clear()
    yield


def _write(folder: Path, org: str, token_env: str) -> Path:
    path = folder / f"{org}.yaml"
    path.write_text(f"""org: {org}
mode: auto
source: {{connector: files, path: ../warehouse, as_of: history_end}}
order_sink: {{connector: spy, token: "${{{token_env}}}"}}
forecast: {{statsmodels_seconds: 0, history_days: 60}}
guard: {{max_multiple_of_usual: 1000, min_forecast_confidence: 0}}
""")
    path.chmod(0o640)
    return path


def test_an_orgs_connector_sees_its_own_token_and_never_another_orgs(tmp_path):
    generate(tmp_path / "warehouse", seed=3, skus=6, end=PINNED_END)
    orgs = tmp_path / "orgs"
    orgs.mkdir()
    for org in TOKENS:
        _write(orgs, org, f"{org.upper()}_TOKEN")
    configs, errors = load_orgs(tmp_path)
    assert errors == [] and set(configs) == set(TOKENS)
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run_org(configs["alpha"], store=store)
    assert SEEN, "the spy sink was never built"
    for seen in SEEN:
        assert seen["org"] == "alpha"
        assert TOKENS["alpha"] in seen["settings"]
        assert TOKENS["beta"] not in seen["settings"] + seen["context"]
    assert TOKENS["beta"] not in _revealed(configs["alpha"])


@pytest.mark.parametrize("how", ["copied file", "same value, another variable"])
def test_an_org_naming_another_orgs_secret_is_refused_with_it(tmp_path, monkeypatch, how):
    orgs = tmp_path / "orgs"
    orgs.mkdir()
    _write(orgs, "alpha", "ALPHA_TOKEN")
    if how == "copied file":
        _write(orgs, "beta", "ALPHA_TOKEN")
    else:
        monkeypatch.setenv("BETA_COPY_TOKEN", TOKENS["alpha"])
        _write(orgs, "beta", "BETA_COPY_TOKEN")
    _write(orgs, "gamma", "GAMMA_TOKEN")
    monkeypatch.setenv("GAMMA_TOKEN", "gamma-tok-5a5a9e0c11")
    configs, errors = load_orgs(tmp_path)
    assert set(configs) == {"gamma"}            # the orgs that do not share run as before
    messages = sorted(str(e) for e in errors)
    assert len(messages) == 2
    assert "alpha.yaml" in messages[0] and "'beta'" in messages[0]
    assert "beta.yaml" in messages[1] and "'alpha'" in messages[1]
    for message in messages:
        assert "same secret" in message and "\n" not in message
        assert TOKENS["alpha"] not in message
