"""The state store's Alembic migrations, driven from a test: to build an older schema first."""

from __future__ import annotations

from pathlib import Path

import restock.store


def alembic_config():
    """Alembic's configuration for restock's migrations (set ``attributes["connection"]``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location",
                           str(Path(restock.store.__file__).parent / "migrations"))
    return config


def head_revision() -> str:
    """The newest migration this code knows: what a freshly opened store is at."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
