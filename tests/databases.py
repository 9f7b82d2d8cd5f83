"""Fresh PostgreSQL databases on the test server `.ci/run` starts."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["drop_postgres", "fresh_postgres"]


def fresh_postgres(url: str, name: str) -> str:
    """A new empty database on the test server, so tests never see each other's rows."""
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(sa.engine.make_url(url).set(database=name))


def drop_postgres(url: str, name: str) -> None:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
