"""Shared fixtures: paths to the real data, and a private PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RESTOCK_SHARED_DATA", ROOT.parent / "shared" / "data"))
PG_ADMIN_URL = os.environ.get("RESTOCK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip that says why (a user's fresh clone has no shared/)."""
    if not (SHARED_DATA / "sets").is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (shared/ is not in this checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A fresh PostgreSQL database for this test session, dropped at the end.

    Skips (saying why) only when no server answers at 127.0.0.1:5432.
    """
    sqlalchemy = pytest.importorskip("sqlalchemy")
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"restock_test_{uuid.uuid4().hex[:10]}"
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as err:  # noqa: BLE001 - any failure here means "no server to test against"
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {err.__class__.__name__}: {err}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """Tests that run the CLI in-process configure logging for the process (its level, its
    stream); put back what was there so later tests log and capture as before."""
    import logging

    import structlog

    configured, saved = structlog.is_configured(), structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    if configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()
    root.handlers = handlers
    root.setLevel(level)
