"""Jobs: long-running work (fine-tuning) recorded in the registry, so any process can list
them, follow their progress and cancel them, and a job whose process died can be resumed.

A job is `running` while its process is alive; one whose process is gone without finishing
reads as `interrupted` (the process id and host are recorded to tell). Cancelling asks the
running process to stop at its next step (it checks `cancel_requested`), and ends a job with no
live process at once.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from modeldepot.errors import NotFound, UsageError
from modeldepot.registry import schema as t
from modeldepot.registry.records import as_utc

__all__ = ["DatasetRecord", "DatasetStore", "Job", "JobStore"]

RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = (
    "running", "succeeded", "failed", "cancelled", "interrupted")  # fmt: skip
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


def _alive(pid: int | None, host: str | None) -> bool:
    if pid is None:
        return False
    if host != socket.gethostname():  # another machine's job: trust the row
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    target: str
    spec: dict[str, Any]
    progress: dict[str, Any]
    actor: str
    created_at: datetime
    updated_at: datetime
    result: str | None = None
    error: str | None = None
    pid: int | None = None
    host: str | None = None
    cancel_requested: bool = field(default=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "status": self.status, "target": self.target,
            "result": self.result, "error": self.error, "actor": self.actor,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "cancel_requested": self.cancel_requested,
            "progress": {k: v for k, v in self.progress.items() if k != "cancel"},
            "spec": self.spec,
        }  # fmt: skip


class JobStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, kind: str, target: str, spec: dict[str, Any], actor: str) -> Job:
        now = datetime.now(UTC)
        job_id = f"{kind[:2]}-{secrets.token_hex(6)}"
        with self.engine.begin() as conn:
            conn.execute(t.jobs.insert().values(
                id=job_id, kind=kind, status=RUNNING, target=target, spec=spec, progress={},
                actor=actor, pid=os.getpid(), host=socket.gethostname(), created_at=now,
                updated_at=now))  # fmt: skip
        return self.get(job_id)

    def claim(self, job_id: str) -> Job:
        """Take an interrupted job over in this process (to resume it)."""
        job = self.get(job_id)
        if job.status == RUNNING:
            raise UsageError(f"job {job_id} is still running (process {job.pid} on {job.host})")
        if job.status in FINISHED:
            raise UsageError(f"job {job_id} has {job.status}; there is nothing to resume")
        progress = {k: v for k, v in job.progress.items() if k != "cancel"}
        self._update(job_id, status=RUNNING, pid=os.getpid(), host=socket.gethostname(),
                     progress=progress, error=None)  # fmt: skip
        return self.get(job_id)

    def report(self, job_id: str, **progress: Any) -> bool:
        """Merge `progress` into the job's; returns whether cancelling was asked for."""
        with self.engine.begin() as conn:
            current = conn.scalar(sa.select(t.jobs.c.progress).where(t.jobs.c.id == job_id))
            merged = {**(current or {}), **progress}
            conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(
                progress=merged, updated_at=datetime.now(UTC)))  # fmt: skip
        return bool(merged.get("cancel"))

    def finish(self, job_id: str, status: str, *, result: str | None = None,
               error: str | None = None) -> Job:  # fmt: skip
        self._update(job_id, status=status, result=result, error=error, pid=None)
        return self.get(job_id)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status in FINISHED:
            raise UsageError(f"job {job_id} has already {job.status}")
        if job.status == RUNNING:
            self.report(job_id, cancel=True)
        else:  # interrupted: no process will look at the flag
            self._update(job_id, status=CANCELLED, pid=None)
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id!r} (see `depot jobs`)")
        return self._job(row)

    def list(self, *, limit: int | None = None) -> list[Job]:
        query = sa.select(t.jobs).order_by(t.jobs.c.created_at.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [self._job(row) for row in conn.execute(query)]

    def _update(self, job_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(
                updated_at=datetime.now(UTC), **values))  # fmt: skip

    @staticmethod
    def _job(row: Any) -> Job:
        status = row.status
        if status == RUNNING and not _alive(row.pid, row.host):
            status = INTERRUPTED
        progress = dict(row.progress or {})
        return Job(row.id, row.kind, status, row.target, dict(row.spec or {}), progress,
                   row.actor, as_utc(row.created_at), as_utc(row.updated_at), row.result,
                   row.error, row.pid, row.host, bool(progress.get("cancel")))  # fmt: skip


@dataclass(frozen=True)
class DatasetRecord:
    digest: str
    name: str
    size: int
    format: str
    examples: int
    licence: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "name": self.name, "size": self.size,
                "format": self.format, "examples": self.examples, "licence": self.licence,
                "created_at": self.created_at.isoformat()}  # fmt: skip


class DatasetStore:
    """Training data sets by digest (their bytes are blobs, kept by `gc` while recorded)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, digest: str, name: str, size: int, format: str, examples: int,
               licence: str | None) -> DatasetRecord:  # fmt: skip
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(t.datasets).where(t.datasets.c.digest == digest)).first()
            if found is None:
                conn.execute(t.datasets.insert().values(
                    digest=digest, name=name, size=size, format=format, examples=examples,
                    licence=licence, created_at=datetime.now(UTC)))  # fmt: skip
        return self.get(digest)

    def get(self, digest: str) -> DatasetRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.datasets).where(t.datasets.c.digest == digest)).first()
        if row is None:
            raise NotFound(f"no data set {digest}")
        return DatasetRecord(row.digest, row.name, row.size, row.format, row.examples,
                             row.licence, as_utc(row.created_at))  # fmt: skip

    def list(self) -> list[DatasetRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.datasets).order_by(t.datasets.c.created_at)).all()
        return [DatasetRecord(r.digest, r.name, r.size, r.format, r.examples, r.licence,
                              as_utc(r.created_at)) for r in rows]  # fmt: skip
