"""Fixtures shared by the property tests."""

from __future__ import annotations

import tempfile

import pytest

from restock.store import open_store


@pytest.fixture(scope="module")
def store():
    """A SQLite state store for the whole module (hypothesis runs many examples on it)."""
    with tempfile.TemporaryDirectory() as folder, \
            open_store(f"sqlite:///{folder}/state.db") as opened:
        yield opened
