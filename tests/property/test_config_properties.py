"""Property: whatever is written in an org file, loading it ends in an OrgConfig or a ConfigError.

Never another exception (a traceback for a user mistake), never a multi-line message, never a
config whose limits are NaN or infinite.
"""

from __future__ import annotations

import math
import os
import tempfile
import types
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restock.config import OrgConfig, SecretRef, load_org
from restock.connectors import ConnectorSettings, OrderSink, register
from restock.errors import ConfigError

BASE = {
    "org": "prop",
    "timezone": "UTC",
    "currency": "EUR",
    "mode": "auto",
    "source": {"connector": "files", "path": "./warehouse"},
    "order_sink": {"connector": "files", "path": "./outbox"},
    "summary_sinks": [{"connector": "files", "path": "./summaries"}],
    "policy": {"service_level": 0.95, "lead_time_days": 14, "max_bid": 10,
               "buffer": {"days_of_cover": 3}, "budget": 1000,
               "overrides": {"skus": {"A": {"service_level": 0.9}}}},
    "forecast": {"freq": "D", "history_days": 365},
    "guard": {"max_multiple_of_usual": 4},
}
PATHS = [
    ("org",), ("timezone",), ("currency",), ("mode",), ("schedule",), ("name",),
    ("source",), ("source", "connector"), ("source", "path"), ("source", "as_of"),
    ("order_sink",), ("order_sink", "connector"), ("order_sink", "token"),
    ("summary_sinks",), ("summary_sinks", 0), ("summary_sinks", 0, "formats"),
    ("policy",), ("policy", "service_level"), ("policy", "lead_time_days"),
    ("policy", "review_period_days"), ("policy", "max_bid"), ("policy", "max_bid", "skus"),
    ("policy", "budget"), ("policy", "max_order_value"), ("policy", "buffer"),
    ("policy", "buffer", "units"), ("policy", "overrides", "skus", "A"),
    ("policy", "overrides", "categories"), ("policy", "service_measure"),
    ("forecast", "freq"), ("forecast", "quantiles"), ("forecast", "season_length"),
    ("forecast", "catalog_days"),
    ("guard", "approval_expires_hours"), ("guard", "min_forecast_confidence"),
]
SCALARS = (st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats()
           | st.text(max_size=12)
           | st.sampled_from(["${HOME}", "${PROP_UNSET_VAR}", "file:/nonexistent", "file:",
                              "files", "corpus-secured", "webhook", "0 6 * * *", "* * *",
                              "Europe/Berlin", "Mars/Base", "auto", "dry_run", "EUR", "eur",
                              "2024-02-30", "history_end", "1e309", "-0", ".nan", "NaN"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=3),
                      max_leaves=8)
TOKENS = ["org:", "policy:", "  ", "\n", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ",
          "!!python/object:os.system ", "? ", "|", ">", "'", '"', "#", "%YAML 1.1\n", "---\n",
          "...\n", "\t", "<<: ", "!!binary ", "\\", "${", "file:", "1e999", ".inf", "~", "\x00",
          "\ufeff", "é"]


class _Secured(ConnectorSettings):
    url: str
    token: SecretRef


class _SecuredSink(OrderSink):
    Settings = _Secured

    def submit(self, order, idempotency_key):  # pragma: no cover
        raise NotImplementedError

    def lookup(self, idempotency_key):  # pragma: no cover
        raise NotImplementedError


register("corpus-secured", types.SimpleNamespace(order_sink=_SecuredSink))


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _load(folder: Path, content: str | bytes) -> OrgConfig | None:
    path = folder / "org.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    os.chmod(path, 0o640)
    try:
        return load_org(path)
    except ConfigError as err:
        assert "\n" not in str(err) and str(err).strip(), repr(str(err))
        assert "Traceback" not in str(err)
        return None


def _assign(data: dict, path: tuple, value: object) -> dict:
    node = data
    for step in path[:-1]:
        child = node[step] if isinstance(node, (dict, list)) and _has(node, step) else None
        if not isinstance(child, (dict, list)):
            child = {}
            if isinstance(node, dict):
                node[step] = child
            else:
                return data
        node = child
    if isinstance(node, dict) or isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        node[path[-1]] = value
    return data


def _has(node: dict | list, step: object) -> bool:
    return step in node if isinstance(node, dict) else isinstance(step, int) and step < len(node)


def _limits_are_finite(config: OrgConfig) -> None:
    policy = config.policy
    for value in (policy.service_level, policy.lead_time_days, policy.review_period_days,
                  policy.budget, policy.max_order_value, policy.max_bid.default,
                  *policy.max_bid.skus.values(), *policy.max_bid.categories.values()):
        assert value is None or math.isfinite(value), value


PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@PROPERTY
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=4))
def test_any_value_anywhere_gives_a_config_or_a_config_error(folder, changes):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for path, value in changes:
        data = _assign(data, path, value)
    config = _load(folder, yaml.safe_dump(data, allow_unicode=True))
    if config is not None:
        _limits_are_finite(config)


@PROPERTY
@given(extra=st.dictionaries(st.text(min_size=1, max_size=10), VALUES, min_size=1, max_size=3))
def test_unknown_keys_are_refused(folder, extra):
    data = {**BASE, **{k: v for k, v in extra.items() if k not in BASE}}
    if data == BASE:
        return
    assert _load(folder, yaml.safe_dump(data, allow_unicode=True)) is None


@PROPERTY
@given(text=st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=40).map("".join))
def test_yaml_like_noise_never_crashes(folder, text):
    _load(folder, text)


@PROPERTY
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(folder, raw):
    _load(folder, raw)


@PROPERTY
@given(prefix=st.sampled_from([yaml.safe_dump(BASE)]), noise=st.text(max_size=30),
       cut=st.integers(0, 400))
def test_a_truncated_or_spliced_valid_file_never_crashes(folder, prefix, noise, cut):
    _load(folder, prefix[:cut] + noise + prefix[cut:])
