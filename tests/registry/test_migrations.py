import json
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


def test_0011_turns_recorded_holds_into_holds_and_leaves_the_policy_to_the_gate(
    tmp_path: Path, database_url: str | None
) -> None:
    from alembic import command

    from modeldepot.registry.database import _alembic_config

    url = database_url or f"sqlite:///{tmp_path / 'r.db'}"
    engine = connect(url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
    rows = {
        "a" * 64: ("quarantined", ["held by hand: unknown supplier", "licence: MIT is denied"]),
        "b" * 64: ("quarantined", ["scan: high pickle.dangerous-global at x: os.system"]),
        "c" * 64: ("quarantined", ["integrity: w.gguf differs from its recorded digest"]),
        "d" * 64: ("ok", []),
        "e" * 64: ("pending", []),
    }
    with engine.begin() as conn:
        for hex_, (status, reasons) in rows.items():
            conn.execute(
                sa.text(
                    "INSERT INTO manifests (digest, config_digest, size, format, info, "
                    "created_at, status, status_reasons) VALUES (:d, :d, 1, 'gguf', '{}', "
                    "'2026-01-01', :s, :r)"
                ),
                {"d": f"sha256:{hex_}", "s": status, "r": json.dumps(reasons)},
            )
        conn.execute(sa.text(
            "INSERT INTO events (at, actor, action, subject, details) VALUES "
            f"('2026-01-02', 'officer', 'quarantine', 'sha256:{'a' * 64}', '{{}}')"
        ))  # fmt: skip
    migrate(engine, tmp_path)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT digest, status FROM manifests")).all())
        holds = conn.execute(sa.text(
            "SELECT m.digest, h.kind, h.reason, h.actor FROM holds h JOIN manifests m "
            "ON m.id = h.manifest_id ORDER BY m.digest"
        )).all()  # fmt: skip
    assert set(statuses.values()) == {"scanned", "pending"}
    assert statuses[f"sha256:{'e' * 64}"] == "pending"
    assert [tuple(h) for h in holds] == [
        (f"sha256:{'a' * 64}", "hand", "unknown supplier", "officer"),
        (f"sha256:{'c' * 64}", "integrity", "integrity: w.gguf differs from its recorded digest",
         "depot"),
    ]  # fmt: skip
    engine.dispose()
