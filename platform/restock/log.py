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
    secrets = _longest_first(known_secret_values())
    if not secrets:
        return event
    return {key: _redact(value, secrets) for key, value in event.items()}


def _longest_first(secrets: frozenset[str]) -> tuple[str, ...]:
    # A secret that contains another must be replaced first, or its tail would survive.
    return tuple(sorted(secrets, key=len, reverse=True))


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
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


def _redacting_defaults() -> None:
    """Library use, before or without :func:`configure`: structlog's defaults, except that
    exceptions are rendered as plain text (its default shows each frame's locals, where a
    resolved token may sit) and every event passes the redaction."""
    if structlog.is_configured():
        return
    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
        structlog.processors.StackInfoRenderer(), structlog.dev.set_exc_info,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        structlog.processors.format_exc_info, redact_secrets,
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)])


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    """Set up structlog for the process (call once, from the CLI or the daemon).

    Records of libraries that log through the standard ``logging`` module (httpx, SQLAlchemy,
    APScheduler, uvicorn) pass the same redaction and renderer, so no path leaks a secret.
    """
    if json is None:
        json = not sys.stderr.isatty()
    renderer = (structlog.processors.JSONRenderer() if json
                else structlog.dev.ConsoleRenderer(colors=False))
    shared = [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
              structlog.processors.TimeStamper(fmt="iso", utc=True),
              structlog.processors.format_exc_info, redact_secrets]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(shared, renderer, level)


def _route_stdlib_logging(shared: list[Any], renderer: Any, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("restock")
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "restock"] + [handler]
    root.setLevel(logging.getLevelName(level.upper()))


@contextmanager
def bind_run(org: str, run_id: str) -> Iterator[None]:
    """Every event logged inside carries this org and run id."""
    with structlog.contextvars.bound_contextvars(org=org, run_id=run_id):
        yield


def get_logger(name: str = "restock") -> Any:
    _redacting_defaults()
    return structlog.get_logger(name)
