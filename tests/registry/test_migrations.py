from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modeldepot.registry.database import connect, head_revision, migrate
from modeldepot.registry.schema import metadata


def test_migrations_build_exactly_the_schema(tmp_path: Path, database_url: str | None) -> None:
    url = database_url or f"sqlite:///{tmp_path / 'r.db'}"
    engine = connect(url)
    migrate(engine, tmp_path)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_migrate_is_idempotent_and_keeps_rows(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine, tmp_path)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO models (namespace, name, created_at) VALUES ('a', 'b', '2026-01-01')"
            )
        )
    migrate(engine, tmp_path)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM models")) == 1
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
