"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.conftest import PG_ADMIN_URL
from tests.support.daemon_kit import fresh_pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """The same test body on both state stores: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'restock.sqlite'}"
    else:
        with fresh_pg_database(PG_ADMIN_URL) as url:
            yield url
