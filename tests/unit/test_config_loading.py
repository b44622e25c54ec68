"""Org files: every bad input is one line naming file, line and field; secrets stay secret."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from restock.config import SecretRef, known_secret_values, load_org, load_orgs
from restock.connectors import ConnectorSettings, OrderSink, SubmitResult, register
from restock.errors import ConfigError, SecretError
from tests.support.samples import MINIMAL_ORG

BASE = MINIMAL_ORG


class _TokenSettings(ConnectorSettings):
    url: str = "https://erp.example"
    token: SecretRef


class _TokenSink(OrderSink):
    Settings = _TokenSettings

    def submit(self, order, idempotency_key):  # pragma: no cover - never called here
        return SubmitResult(accepted=True)

    def lookup(self, idempotency_key):  # pragma: no cover
        return None


@pytest.fixture(autouse=True)
def _tokened_connector(monkeypatch):
    """A connector with a secret field, registered only while a test here runs."""
    import restock.connectors

    monkeypatch.setattr(restock.connectors, "_extra", dict(restock.connectors._extra))
    register("tokened", types.SimpleNamespace(order_sink=_TokenSink))

TOKENED = """\
org: acme
source:
  connector: files
  path: ./warehouse
order_sink:
  connector: tokened
  token: {token}
"""


def _load(tmp_path: Path, monkeypatch, text: str, name: str = "acme.yaml"):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "orgs" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)
    return load_org(path)


BAD = [
    ("malformed YAML", BASE + "policy: [service_level: 0.9\nmode: auto\n",
     "orgs/acme.yaml:9: malformed YAML: "),
    ("unknown top-level key", BASE + "polcy:\n  budget: 10\n",
     "orgs/acme.yaml:8: polcy: unknown key (did you mean 'policy'?)"),
    ("unknown key unlike any setting", BASE + "colour: red\n",
     "orgs/acme.yaml:8: colour: unknown key (check its spelling and where it sits)"),
    ("misspelt nested key", BASE + "policy:\n  service_levle: 0.9\n",
     "orgs/acme.yaml:9: policy.service_levle: unknown key (did you mean 'service_level'?)"),
    ("unknown connector setting", BASE.replace("path: ./outbox", "path: ./outbox\n  folder: x"),
     "orgs/acme.yaml:8: order_sink.folder: unknown key"),
    ("wrong type", BASE + "policy:\n  budget: lots\n",
     "orgs/acme.yaml:9: policy.budget: must be a number (got 'lots')"),
    ("wrong type, mapping expected", BASE + "policy: 3\n",
     "orgs/acme.yaml:8: policy: must be a mapping of keys to values (got 3)"),
    ("negative lead time", BASE + "policy:\n  lead_time_days: -3\n",
     "orgs/acme.yaml:9: policy.lead_time_days: must be greater than 0 (got -3)"),
    ("negative lead time in an override",
     BASE + "policy:\n  overrides:\n    skus:\n      A-1:\n        lead_time_days: -1\n",
     "orgs/acme.yaml:12: policy.overrides.skus.A-1.lead_time_days: must be greater than 0"),
    ("service level above 1", BASE + "policy:\n  service_level: 1.2\n",
     "orgs/acme.yaml:9: policy.service_level: must be between 0.5 and 0.9999 (got 1.2)"),
    ("service level of exactly 1", BASE + "policy:\n  service_level: 1\n",
     "orgs/acme.yaml:9: policy.service_level: must be between 0.5 and 0.9999 (got 1)"),
    ("duplicate key", BASE + "policy:\n  budget: 3\n  budget: 4\n",
     "orgs/acme.yaml:10: policy.budget: duplicate key 'budget'"),
    ("unknown connector", BASE.replace("connector: files\n  path: ./warehouse",
                                       "connector: nosuch\n  path: ./warehouse"),
     ("orgs/acme.yaml:3: source.connector: unknown inventory source connector 'nosuch' "
      "(available: files")),
    ("missing required section", "org: acme\nsource:\n  connector: files\n  path: w\n",
     "orgs/acme.yaml:1: order_sink: required but missing"),
    ("two buffers at once", BASE + "policy:\n  buffer:\n    units: 3\n    days_of_cover: 2\n",
     "orgs/acme.yaml:9: policy.buffer: give exactly one of service_level, units, days_of_cover"),
    ("bad cron", BASE + "schedule: every morning\n",
     "orgs/acme.yaml:8: schedule: not a valid cron expression"),
    ("bad time zone", BASE + "timezone: Mars/Olympus\n",
     "orgs/acme.yaml:8: timezone: unknown time zone 'Mars/Olympus'"),
    ("bad mode", BASE + "mode: yolo\n",
     "orgs/acme.yaml:8: mode: must be 'auto', 'approval' or 'dry_run' (got 'yolo')"),
    ("not a mapping", "- acme\n", "orgs/acme.yaml:1: the file must be a mapping of settings"),
    ("catalog retention of 0 days", BASE + "forecast:\n  catalog_days: 0\n",
     "orgs/acme.yaml:9: forecast.catalog_days: must be greater than or equal to 1 (got 0)"),
    ("negative catalog retention", BASE + "forecast:\n  catalog_days: -30\n",
     "orgs/acme.yaml:9: forecast.catalog_days: must be greater than or equal to 1 (got -30)"),
    ("fractional catalog retention", BASE + "forecast:\n  catalog_days: 1.5\n",
     "orgs/acme.yaml:9: forecast.catalog_days: must be a whole number (got 1.5)"),
    ("catalog retention written as a yes", BASE + "forecast:\n  catalog_days: yes\n",
     "orgs/acme.yaml:9: forecast.catalog_days: must be a whole number (got True)"),
    ("catalog retention written as text", BASE + "forecast:\n  catalog_days: forever\n",
     "orgs/acme.yaml:9: forecast.catalog_days: must be a whole number (got 'forever')"),
    ("history written as a yes", BASE + "forecast:\n  history_days: yes\n",
     "orgs/acme.yaml:9: forecast.history_days: must be a whole number (got True)"),
    ("history beyond a century", BASE + "forecast:\n  history_days: 1000000000000\n",
     "orgs/acme.yaml:9: forecast.history_days: must be less than or equal to 36500"),
    ("catalog retention beyond a century", BASE + "forecast:\n  catalog_days: 100000\n",
     "orgs/acme.yaml:9: forecast.catalog_days: must be less than or equal to 36500"),
    ("quantile level of 1", BASE + "forecast:\n  quantiles: [0.5, 1]\n",
     "orgs/acme.yaml:9: forecast.quantiles: 1.0 is not strictly between 0 and 1"),
    ("quantile level given in percent", BASE + "forecast:\n  quantiles: [50, 95]\n",
     "orgs/acme.yaml:9: forecast.quantiles: 50.0 is not strictly between 0 and 1"),
    ("quantile level listed twice", BASE + "forecast:\n  quantiles: [0.9, 0.9]\n",
     "orgs/acme.yaml:9: forecast.quantiles: a level is listed twice"),
    ("quantile level as text", BASE + "forecast:\n  quantiles: [high]\n",
     "orgs/acme.yaml:9: forecast.quantiles.0: must be a number (got 'high')"),
    ("summary retention of 0 days", BASE + "summary_days: 0\n",
     "orgs/acme.yaml:8: summary_days: must be greater than or equal to 1 (got 0)"),
    ("summary retention written as a yes", BASE + "summary_days: yes\n",
     "orgs/acme.yaml:8: summary_days: must be a whole number (got True)"),
    ("fractional summary retention", BASE + "summary_days: 7.5\n",
     "orgs/acme.yaml:8: summary_days: must be a whole number (got 7.5)"),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_input_is_one_line_with_file_line_field(tmp_path, monkeypatch, text, expected):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, monkeypatch, text)
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_missing_secret_env_var_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ACME_ERP_TOKEN", raising=False)
    with pytest.raises(SecretError) as err:
        _load(tmp_path, monkeypatch, TOKENED.format(token="${ACME_ERP_TOKEN}"))
    assert str(err.value) == ("orgs/acme.yaml:7: order_sink.token: "
                              "environment variable ACME_ERP_TOKEN is not set")


def test_literal_token_is_refused_without_echoing_it(tmp_path, monkeypatch):
    with pytest.raises(SecretError) as err:
        _load(tmp_path, monkeypatch, TOKENED.format(token="sk_live_51HxQz9"))
    message = str(err.value)
    assert message.startswith("orgs/acme.yaml:7: order_sink.token: literal secrets are refused")
    assert "sk_live_51HxQz9" not in message and "sk_live_51HxQz9" not in repr(err.value.args)


def test_env_and_file_references_resolve_to_secretstr(tmp_path, monkeypatch):
    monkeypatch.setenv("ACME_ERP_TOKEN", "tok-from-env-123")
    config = _load(tmp_path, monkeypatch, TOKENED.format(token="${ACME_ERP_TOKEN}"))
    token = config.connector_settings["order_sink"].token
    assert token.get_secret_value() == "tok-from-env-123" and "tok-from" not in repr(token)
    assert "tok-from-env-123" in known_secret_values()
    (tmp_path / "orgs" / "erp.token").write_text("tok-from-file-456\n")
    config = _load(tmp_path, monkeypatch, TOKENED.format(token="file:erp.token"))
    assert config.connector_settings["order_sink"].token.get_secret_value() == "tok-from-file-456"
    assert "tok-from-file-456" not in config.model_dump_json()


def test_unreadable_secret_file_is_a_secret_error(tmp_path, monkeypatch):
    with pytest.raises(SecretError, match=r"^orgs/acme.yaml:7: order_sink.token: secret file .* "
                                          r"cannot be read"):
        _load(tmp_path, monkeypatch, TOKENED.format(token="file:missing.token"))


def test_world_writable_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "acme.yaml"
    path.write_text(BASE)
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="^acme.yaml: refusing a world-writable"):
        load_org(path)


def test_a_valid_file_loads_with_defaults_and_connector_settings(tmp_path, monkeypatch):
    config = _load(tmp_path, monkeypatch, BASE + "policy:\n  max_bid: 12.5\n")
    assert config.org == "acme" and config.policy.service_level == 0.95
    assert config.policy.max_bid.for_item("X", None) == 12.5
    assert config.connector_settings["source"].path == "./warehouse"


@pytest.mark.parametrize(("text", "expected"), [("", 400), ("forecast:\n  catalog_days: 30\n", 30),
                                             ("forecast:\n  catalog_days: null\n", None)])
def test_catalog_retention_defaults_to_400_days_and_null_keeps_everything(
        tmp_path, monkeypatch, text, expected):
    assert _load(tmp_path, monkeypatch, BASE + text).forecast.catalog_days == expected


def test_org_defaults_to_the_file_name(tmp_path, monkeypatch):
    config = _load(tmp_path, monkeypatch, BASE.replace("org: acme\n", ""), name="beta.yaml")
    assert config.org == "beta"


def test_load_orgs_keeps_good_orgs_and_reports_each_bad_one(tmp_path, monkeypatch):
    _load(tmp_path, monkeypatch, BASE)
    (tmp_path / "orgs" / "beta.yaml").write_text(BASE.replace("acme", "beta") + "mode: yolo\n")
    (tmp_path / "orgs" / "copy.yaml").write_text(BASE)
    for path in (tmp_path / "orgs").iterdir():
        path.chmod(0o644)
    configs, errors = load_orgs(tmp_path)
    assert list(configs) == ["acme"]
    assert sorted(str(e).split(":")[0] for e in errors) == ["orgs/beta.yaml", "orgs/copy.yaml"]
    assert any("already defined" in str(e) for e in errors)


def test_the_shipped_configuration_is_valid():
    root = Path(__file__).resolve().parents[2]
    configs, errors = load_orgs(root / "config")
    assert errors == [] and "demo" in configs
    assert os.stat(root / "config" / "orgs" / "demo.yaml").st_mode & 0o002 == 0
