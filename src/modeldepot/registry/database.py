"""Opening the registry database and bringing its schema up to date with Alembic.

SQLite (the default) runs in WAL mode with a busy timeout, and every transaction starts with
`BEGIN IMMEDIATE`, so concurrent depot commands queue for the write lock instead of failing
half-way with "database is locked". PostgreSQL needs none of that.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from modeldepot.errors import DepotError

__all__ = ["connect", "head_revision", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 7_201_104_515  # arbitrary advisory-lock key owned by modeldepot


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def connect(url: str) -> sa.Engine:
    """Create an engine for `url`; for SQLite, create its folder and set it up for concurrency."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let BEGIN below be the only BEGIN
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DepotError(
            f"cannot open registry database {url!r}: {exc}. For PostgreSQL install the driver "
            "with: pip install 'modeldepot[postgres]'"
        ) from None


def _current(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: sa.Engine, lock_dir: Path) -> Iterator[None]:
    """Only one process migrates at a time (two first commands may start together)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / "registry.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def migrate(engine: sa.Engine, lock_dir: Path) -> None:
    """Upgrade the schema to the newest revision (a no-op costing one query, and for SQLite a
    file lock, when current)."""
    try:
        head = head_revision()
        # SQLite: even the version check waits for a migration in progress, since a connection
        # opened beside one (switching the file to WAL, altering tables) can be refused at once
        # with "database is locked", whatever the busy timeout. The file lock costs nothing.
        if engine.dialect.name != "sqlite" and _current(engine) == head:
            return
        with _migration_lock(engine, lock_dir):
            if _current(engine) == head:
                return
            cfg = _alembic_config()
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    except sa.exc.OperationalError as exc:
        raise DepotError(f"cannot reach the registry database: {exc.orig}") from None
