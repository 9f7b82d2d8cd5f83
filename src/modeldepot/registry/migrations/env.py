"""Alembic environment: the registry hands in an open connection; nothing is read from files."""

from __future__ import annotations

from alembic import context

from modeldepot.registry.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
