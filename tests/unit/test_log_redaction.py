"""Logs: every event carries org and run_id; no resolved secret survives, on any path."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from restock.config import resolve_secret
from restock.log import REDACTED, bind_run, configure, get_logger, redact_secrets

SECRET = "tok-5f2a9c81d4e7"
LONGER = SECRET + "-extended"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    monkeypatch.setenv("RESTOCK_TEST_TOKEN", SECRET)
    monkeypatch.setenv("RESTOCK_TEST_TOKEN_LONG", LONGER)
    resolve_secret("${RESTOCK_TEST_TOKEN}")
    resolve_secret("${RESTOCK_TEST_TOKEN_LONG}")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


def test_redact_processor_reaches_nested_values_and_exceptions():
    event = {"event": f"calling with {SECRET}", "headers": {"Authorization": f"Bearer {SECRET}"},
             "args": [SECRET, 3, (f"x{SECRET}",)], "error": RuntimeError(f"refused {SECRET}"),
             "count": 3}
    out = redact_secrets(None, "info", event)
    assert out["event"] == f"calling with {REDACTED}"
    assert out["headers"] == {"Authorization": f"Bearer {REDACTED}"}
    assert out["args"] == [REDACTED, 3, (f"x{REDACTED}",)]
    assert out["error"] == f"refused {REDACTED}" and out["count"] == 3


def test_a_secret_containing_another_leaves_no_tail():
    out = redact_secrets(None, "info", {"event": f"url?t={LONGER}"})
    assert out["event"] == f"url?t={REDACTED}"


def test_captured_events_carry_org_and_run_id_and_no_secret():
    processors = [structlog.contextvars.merge_contextvars, redact_secrets]
    with capture_logs(processors=processors) as logs, bind_run("acme", "run-1"):
        get_logger().info("pulled", url=f"https://erp.example/?token={SECRET}")
    assert logs == [{"event": "pulled", "url": f"https://erp.example/?token={REDACTED}",
                     "org": "acme", "run_id": "run-1", "log_level": "info"}]


def test_configured_json_lines_redact_structlog_and_stdlib_records(capsys):
    configure(json=True, level="INFO")
    with bind_run("acme", "run-2"):
        get_logger().warning("auth failed", detail=f"Bearer {SECRET}")
        logging.getLogger("httpx").warning("GET https://erp.example/?token=%s", SECRET)
        try:
            raise ConnectionError(f"token {SECRET} rejected")
        except ConnectionError:
            get_logger().exception("submit failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 3
    assert all(line["org"] == "acme" and line["run_id"] == "run-2" for line in lines)
    assert SECRET not in json.dumps(lines)
    assert lines[1]["event"] == f"GET https://erp.example/?token={REDACTED}"
    assert REDACTED in lines[2]["exception"]
