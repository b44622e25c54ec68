"""structlog, configured once: JSON lines when not on a terminal, readable on one.

Every event carries ``org`` and ``run_id`` when bound (``bind_run``); a processor replaces every
secret value that configuration resolved with ``[REDACTED]``, wherever it appears in the event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from restock.config import known_secret_values

REDACTED = "[REDACTED]"


def redact_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: no resolved secret value survives in any field of an event."""
    secrets = known_secret_values()
    if not secrets:
        return event
    return {key: _redact(value, secrets) for key, value in event.items()}


def _redact(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, secrets) for v in value)
    if isinstance(value, BaseException):
        return _redact(str(value), secrets)
    return value


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    """Set up structlog for the process (call once, from the CLI or the daemon)."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer = (structlog.processors.JSONRenderer() if json
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


@contextmanager
def bind_run(org: str, run_id: str) -> Iterator[None]:
    """Every event logged inside carries this org and run id."""
    with structlog.contextvars.bound_contextvars(org=org, run_id=run_id):
        yield


def get_logger(name: str = "restock") -> Any:
    return structlog.get_logger(name)
