"""The registry: which models exist, their versions and tags, their files and lineage. Each
write is one transaction with its audit event, so a model becomes visible whole or not at all;
a new manifest is recorded `pending` until admission has scanned it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modeldepot.errors import ModelNotFound
from modeldepot.formats.base import ModelInfo
from modeldepot.refs import Reference
from modeldepot.registry import schema as t
from modeldepot.registry.audit import AuditLog
from modeldepot.registry.database import connect, migrate
from modeldepot.registry.records import PENDING, FileRecord, LineageLink, ModelVersion, as_utc

__all__ = ["Registry"]


def _now() -> datetime:
    return datetime.now(UTC)


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """INSERT that does nothing when a unique constraint already holds the row (both dialects)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())


_VERSION_COLUMNS = (
    t.models.c.namespace,
    t.models.c.name,
    t.versions.c.id.label("version_id"),
    t.manifests.c.id.label("manifest_id"),
    t.manifests.c.digest,
    t.manifests.c.config_digest,
    t.manifests.c.size,
    t.manifests.c.info,
    t.manifests.c.source,
    t.versions.c.created_at,
    t.manifests.c.status,
)

# Every tag with its version, ordered for listing.
_TAGGED = (
    sa.select(*_VERSION_COLUMNS, t.tags.c.name.label("tag"))
    .join(t.versions, t.versions.c.model_id == t.models.c.id)
    .join(t.manifests, t.manifests.c.id == t.versions.c.manifest_id)
    .join(t.tags, t.tags.c.version_id == t.versions.c.id)
    .order_by(t.models.c.namespace, t.models.c.name, t.tags.c.name)
)


class Registry:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.audit = AuditLog(engine)

    @classmethod
    def open(cls, url: str, lock_dir: Path) -> Registry:
        engine = connect(url)
        migrate(engine, lock_dir)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ----------------------------------------------------------------------------

    def record_version(
        self,
        ref: Reference,
        *,
        digest: str,
        config_digest: str,
        info: ModelInfo,
        files: Sequence[FileRecord],
        lineage: Sequence[LineageLink] = (),
        source: str | None = None,
        actor: str,
        action: str = "import",
        details: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Record a stored manifest as a version of `ref`'s model and point `ref`'s tag at it."""
        with self.engine.begin() as conn:
            model_id = self._model_id(conn, ref)
            _insert_ignore(
                conn,
                t.manifests,
                {
                    "digest": digest,
                    "config_digest": config_digest,
                    "size": sum(f.size for f in files),
                    "format": info.format,
                    "architecture": info.architecture,
                    "parameters": info.parameters,
                    "quantization": info.quantization,
                    "license": info.license,
                    "info": info.to_dict(),
                    "source": source,
                    "created_at": _now(),
                    "status": PENDING,
                },
            )
            manifest_id = self._manifest_id(conn, digest)
            if not conn.scalar(
                sa.select(sa.func.count()).where(t.files.c.manifest_id == manifest_id)
            ):
                conn.execute(
                    t.files.insert(),
                    [{"manifest_id": manifest_id, **vars(f)} for f in files],
                )
                if lineage:
                    conn.execute(
                        t.lineage.insert(),
                        [{"manifest_id": manifest_id, **vars(link)} for link in lineage],
                    )
            version_id = self._version_id(conn, model_id, manifest_id)
            if ref.tag is not None:
                self._set_tag(conn, model_id, ref.tag, version_id)
            self.audit.append_in(
                conn, actor, action, f"{ref.repository}:{ref.tag}@{digest}", details or {}
            )
        return self.resolve(
            Reference(ref.namespace, ref.name, ref.tag, None if ref.tag else digest)
        )

    def tag(self, source: Reference, target: Reference, *, actor: str) -> ModelVersion:
        """Point `target` (model:tag) at the version `source` names; the old one stays."""
        found = self.resolve(source)
        assert target.tag is not None
        with self.engine.begin() as conn:
            manifest_id = self._manifest_id(conn, found.digest)
            model_id = self._model_id(conn, target)
            version_id = self._version_id(conn, model_id, manifest_id)
            self._set_tag(conn, model_id, target.tag, version_id)
            self.audit.append_in(
                conn, actor, "tag", str(target), {"source": str(source), "digest": found.digest}
            )
        return self.resolve(target)

    def remove(self, ref: Reference, *, actor: str) -> ModelVersion:
        """Remove a tag (and its version when no other tag of the model points there), or,
        for `name@sha256:...`, that version and all its tags."""
        found = self.resolve(ref)
        with self.engine.begin() as conn:
            model_id = self._model_id(conn, ref, create=False)
            version_id = conn.scalar(
                sa.select(t.versions.c.id)
                .join(t.manifests, t.manifests.c.id == t.versions.c.manifest_id)
                .where(t.versions.c.model_id == model_id, t.manifests.c.digest == found.digest)
            )
            if ref.digest is None and ref.tag is not None:
                conn.execute(
                    t.tags.delete().where(t.tags.c.model_id == model_id, t.tags.c.name == ref.tag)
                )
                still_tagged = conn.scalar(
                    sa.select(sa.func.count()).where(t.tags.c.version_id == version_id)
                )
                if not still_tagged:
                    conn.execute(t.versions.delete().where(t.versions.c.id == version_id))
            else:
                conn.execute(t.tags.delete().where(t.tags.c.version_id == version_id))
                conn.execute(t.versions.delete().where(t.versions.c.id == version_id))
            self._drop_orphans(conn, model_id)
            self.audit.append_in(conn, actor, "remove", str(ref), {"digest": found.digest})
        return found

    def prune_untagged(self, *, actor: str) -> list[str]:
        """Delete every version no tag points to; returns their references."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(
                    t.versions.c.id,
                    t.models.c.id,
                    t.models.c.namespace,
                    t.models.c.name,
                    t.manifests.c.digest,
                )
                .join(t.models, t.models.c.id == t.versions.c.model_id)
                .join(t.manifests, t.manifests.c.id == t.versions.c.manifest_id)
                .where(~sa.exists().where(t.tags.c.version_id == t.versions.c.id))
            ).all()
            pruned = [str(Reference(ns, name, None, digest)) for _, _, ns, name, digest in rows]
            if rows:
                conn.execute(t.versions.delete().where(t.versions.c.id.in_([r[0] for r in rows])))
                for model_id in {r[1] for r in rows}:
                    self._drop_orphans(conn, model_id)
                self.audit.append_in(conn, actor, "prune", "untagged versions", {"removed": pruned})
        return pruned

    # -- reads -----------------------------------------------------------------------------

    def resolve(self, ref: Reference) -> ModelVersion:
        query = (
            sa.select(*_VERSION_COLUMNS)
            .join(t.versions, t.versions.c.model_id == t.models.c.id)
            .join(t.manifests, t.manifests.c.id == t.versions.c.manifest_id)
            .where(t.models.c.namespace == ref.namespace, t.models.c.name == ref.name)
        )
        if ref.digest is not None:
            query = query.where(t.manifests.c.digest == ref.digest)
        if ref.tag is not None:
            query = query.join(t.tags, t.tags.c.version_id == t.versions.c.id).where(
                t.tags.c.name == ref.tag
            )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                raise ModelNotFound(self._not_found_message(conn, ref))
            found: ModelVersion = self._versions(conn, [row], ref)[0]
            return found

    def versions(self, *, include_untagged: bool = False) -> list[ModelVersion]:
        """One entry per tag, and with `include_untagged` one per version no tag points to."""
        with self.engine.connect() as conn:
            rows = list(conn.execute(_TAGGED).all())
            if include_untagged:
                rows += conn.execute(
                    sa.select(*_VERSION_COLUMNS, sa.null().label("tag"))
                    .join(t.versions, t.versions.c.model_id == t.models.c.id)
                    .join(t.manifests, t.manifests.c.id == t.versions.c.manifest_id)
                    .where(~sa.exists().where(t.tags.c.version_id == t.versions.c.id))
                    .order_by(t.models.c.namespace, t.models.c.name, t.versions.c.created_at)
                ).all()
            return self._versions(conn, rows, None)

    def digests(self, ref: Reference) -> list[str]:
        """The manifest digest of every version of `ref`'s model, tagged or not, oldest
        first (empty when no such model is stored)."""
        with self.engine.connect() as conn:
            return list(conn.scalars(
                sa.select(t.manifests.c.digest)
                .join(t.versions, t.versions.c.manifest_id == t.manifests.c.id)
                .join(t.models, t.models.c.id == t.versions.c.model_id)
                .where(t.models.c.namespace == ref.namespace, t.models.c.name == ref.name)
                .order_by(t.versions.c.created_at, t.versions.c.id)
            ))  # fmt: skip

    def search(self, terms: Iterable[str]) -> list[ModelVersion]:
        """Tagged versions matching every term in name, tag, format, architecture,
        quantisation, licence or any metadata value (case-insensitive)."""
        query = _TAGGED
        for term in terms:
            pattern = f"%{term}%"
            query = query.where(
                sa.or_(
                    t.models.c.name.ilike(pattern),
                    t.models.c.namespace.ilike(pattern),
                    t.tags.c.name.ilike(pattern),
                    t.manifests.c.format.ilike(pattern),
                    t.manifests.c.architecture.ilike(pattern),
                    t.manifests.c.quantization.ilike(pattern),
                    t.manifests.c.license.ilike(pattern),
                    sa.cast(t.manifests.c.info, sa.Text).ilike(pattern),
                )
            )
        with self.engine.connect() as conn:
            return self._versions(conn, conn.execute(query).all(), None)

    def pending(self) -> list[ModelVersion]:
        """Every version not yet admitted (left so by an import that died before its scan)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_VERSION_COLUMNS, sa.null().label("tag"))
                .join(t.versions, t.versions.c.model_id == t.models.c.id)
                .join(t.manifests, t.manifests.c.id == t.versions.c.manifest_id)
                .where(t.manifests.c.status == PENDING)
                .order_by(t.versions.c.id)
            ).all()
            return self._versions(conn, rows, None)

    def referenced_digests(self) -> set[str]:
        """Every blob some recorded version needs: manifests, their configs, their files, their
        signatures and model cards, the training data sets, and files uploaded for batches."""
        with self.engine.connect() as conn:
            found = set(conn.scalars(sa.select(t.manifests.c.digest)))
            found |= set(conn.scalars(sa.select(t.manifests.c.config_digest)))
            found |= set(conn.scalars(sa.select(t.files.c.digest)))
            found |= set(conn.scalars(sa.select(t.signatures.c.digest)))
            found |= set(conn.scalars(sa.select(t.cards.c.digest)))
            found |= set(conn.scalars(sa.select(t.datasets.c.digest)))
            found |= set(conn.scalars(sa.select(t.api_files.c.digest)))
        return found

    # -- internals -------------------------------------------------------------------------

    def _model_id(self, conn: sa.Connection, ref: Reference, *, create: bool = True) -> int:
        where = (t.models.c.namespace == ref.namespace, t.models.c.name == ref.name)
        if create:
            _insert_ignore(
                conn,
                t.models,
                {"namespace": ref.namespace, "name": ref.name, "created_at": _now()},
            )
        model_id = conn.scalar(sa.select(t.models.c.id).where(*where))
        if model_id is None:
            raise ModelNotFound(f"no model named {ref.repository!r}")
        return int(model_id)

    @staticmethod
    def _manifest_id(conn: sa.Connection, digest: str) -> int:
        query = sa.select(t.manifests.c.id).where(t.manifests.c.digest == digest)
        manifest_id = conn.scalar(query)
        assert manifest_id is not None
        return int(manifest_id)

    @staticmethod
    def _version_id(conn: sa.Connection, model_id: int, manifest_id: int) -> int:
        _insert_ignore(
            conn,
            t.versions,
            {"model_id": model_id, "manifest_id": manifest_id, "created_at": _now()},
        )
        version_id = conn.scalar(
            sa.select(t.versions.c.id).where(
                t.versions.c.model_id == model_id, t.versions.c.manifest_id == manifest_id
            )
        )
        assert version_id is not None
        return int(version_id)

    @staticmethod
    def _set_tag(conn: sa.Connection, model_id: int, tag: str, version_id: int) -> None:
        updated = conn.execute(
            t.tags.update()
            .where(t.tags.c.model_id == model_id, t.tags.c.name == tag)
            .values(version_id=version_id, updated_at=_now())
        )
        if updated.rowcount == 0:
            _insert_ignore(
                conn,
                t.tags,
                {"model_id": model_id, "name": tag, "version_id": version_id, "updated_at": _now()},
            )
            conn.execute(
                t.tags.update()
                .where(t.tags.c.model_id == model_id, t.tags.c.name == tag)
                .values(version_id=version_id)
            )

    @staticmethod
    def _drop_orphans(conn: sa.Connection, model_id: int) -> None:
        conn.execute(
            t.manifests.delete().where(
                ~sa.exists().where(t.versions.c.manifest_id == t.manifests.c.id)
            )
        )
        if not conn.scalar(sa.select(sa.func.count()).where(t.versions.c.model_id == model_id)):
            conn.execute(t.models.delete().where(t.models.c.id == model_id))

    @staticmethod
    def _not_found_message(conn: sa.Connection, ref: Reference) -> str:
        tags = conn.scalars(
            sa.select(t.tags.c.name)
            .join(t.models, t.models.c.id == t.tags.c.model_id)
            .where(t.models.c.namespace == ref.namespace, t.models.c.name == ref.name)
            .order_by(t.tags.c.name)
        ).all()
        if tags:
            return f"{ref} not found; {ref.repository} has tags: {', '.join(tags)}"
        return f"no model named {ref}; `depot list` shows what is stored, `depot pull` adds one"

    @staticmethod
    def _versions(
        conn: sa.Connection, rows: Sequence[Any], ref: Reference | None
    ) -> list[ModelVersion]:
        manifest_ids = list({r.manifest_id for r in rows})
        version_ids = list({r.version_id for r in rows})
        files: dict[int, list[FileRecord]] = defaultdict(list)
        links: dict[int, list[LineageLink]] = defaultdict(list)
        tags: dict[int, list[str]] = defaultdict(list)
        if manifest_ids:
            for f in conn.execute(
                sa.select(t.files)
                .where(t.files.c.manifest_id.in_(manifest_ids))
                .order_by(t.files.c.id)
            ):
                files[f.manifest_id].append(
                    FileRecord(f.path, f.digest, f.size, f.kind, f.media_type)
                )
            for link in conn.execute(
                sa.select(t.lineage)
                .where(t.lineage.c.manifest_id.in_(manifest_ids))
                .order_by(t.lineage.c.id)
            ):
                links[link.manifest_id].append(
                    LineageLink(link.relation, link.target, link.target_digest)
                )
            for version_id, tag_name in conn.execute(
                sa.select(t.tags.c.version_id, t.tags.c.name)
                .where(t.tags.c.version_id.in_(version_ids))
                .order_by(t.tags.c.name)
            ):
                tags[version_id].append(tag_name)
        out = []
        for r in rows:
            tag: str | None = getattr(r, "tag", None) if ref is None else ref.tag
            digest_pin = None if tag else r.digest
            out.append(
                ModelVersion(
                    reference=Reference(r.namespace, r.name, tag, digest_pin),
                    digest=r.digest,
                    config_digest=r.config_digest,
                    size=int(r.size),
                    info=ModelInfo.from_dict(dict(r.info)),
                    created_at=as_utc(r.created_at),
                    tags=tuple(tags[r.version_id]),
                    source=r.source,
                    files=tuple(files[r.manifest_id]),
                    lineage=tuple(links[r.manifest_id]),
                    status=r.status,
                )
            )
        return out
