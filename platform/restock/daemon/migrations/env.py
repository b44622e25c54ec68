"""Alembic environment of the daemon's own table, versioned apart from the state store's."""

from __future__ import annotations

from alembic import context

from restock.daemon.slots import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table="restock_daemon_schema_version", render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
