"""``service_scope`` in org files: where it may be set, and errors naming file, line and field."""

from __future__ import annotations

import pytest

from restock.config import load_org
from restock.errors import ConfigError
from tests.support.samples import MINIMAL_ORG

BASE = MINIMAL_ORG


def load(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "orgs" / "acme.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(BASE + text)
    path.chmod(0o644)
    return load_org(path)


def test_scope_defaults_to_each_item_and_is_set_per_org_and_category(tmp_path, monkeypatch):
    assert load(tmp_path, monkeypatch, "").policy.service_scope == "item"
    config = load(tmp_path, monkeypatch, """\
policy:
  service_level: 0.95
  service_measure: cycle
  service_scope: pooled
  overrides:
    categories:
      paint: {service_level: 0.9, service_scope: pooled}
      tools: {service_scope: item}
    skus:
      PUMP-1: {service_scope: item}
""")
    policy = config.policy
    assert policy.service_scope == "pooled"
    assert policy.for_item("X", "paint").service_scope == "pooled"
    assert policy.for_item("X", "tools").service_scope == "item"
    assert policy.for_item("PUMP-1", "paint").service_scope == "item"
    assert policy.for_item("X", None).service_scope == "pooled"


BAD = [
    ("unknown scope", "policy:\n  service_scope: pool\n",
     "orgs/acme.yaml:9: policy.service_scope: must be 'item' or 'pooled' (got 'pool')"),
    ("unknown scope in a category",
     "policy:\n  overrides:\n    categories:\n      paint:\n        service_scope: all\n",
     ("orgs/acme.yaml:12: policy.overrides.categories.paint.service_scope: must be 'item' or "
     "'pooled' (got 'all')")),
    ("a SKU pooled alone",
     "policy:\n  overrides:\n    skus:\n      PUMP-1:\n        service_scope: pooled\n",
     ("orgs/acme.yaml:12: policy.overrides.skus.PUMP-1.service_scope: a SKU cannot be pooled on "
     "its own: set service_scope: pooled on the org or the SKU's category")),
    ("misspelt key", "policy:\n  service_scop: pooled\n",
     "orgs/acme.yaml:9: policy.service_scop: unknown key (did you mean 'service_scope'?)"),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_a_bad_scope_is_one_line_with_file_line_field(tmp_path, monkeypatch, text, expected):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, monkeypatch, text)
    assert str(err.value).startswith(expected), str(err.value)
