"""Alembic environment: migrates the engine the store hands over (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from restock.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table="restock_schema_version", render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
