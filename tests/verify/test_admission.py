"""Admission before visibility: a version is `pending` until scanned and admitted; a process
killed between storing and scanning leaves nothing that can be served, exported or run, and the
next `depot serve` (or `depot gc`) admits it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from pathlib import Path

import httpx

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.records import PENDING
from modeldepot.server import create_app
from modeldepot.server.hosts import in_process_transport

_FORK = multiprocessing.get_context("fork")


def _import_then_die_before_scan(home: Path, path: str) -> None:
    depot = Depot(Settings(home=home, user="victim"))

    def die(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    depot.admission.admit = die  # type: ignore[method-assign]
    depot.intake.import_path(Path(path), "half")
    raise AssertionError("the import should have been killed")


def _killed_between_store_and_scan(home: Path, model: Path) -> None:
    child = _FORK.Process(target=_import_then_die_before_scan, args=(home, str(model)))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL


async def _ask(settings: Settings) -> tuple[list[str], int, int]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = in_process_transport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://depot") as client:
            models = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
            exported = (await client.get("/depot/api/models/half")).status_code
            listed = len((await client.get("/depot/api/models")).json())
    return models, exported, listed


def test_killed_between_storing_and_scanning_leaves_nothing_servable(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    _killed_between_store_and_scan(home, write_gguf(tmp_path / "m.gguf"))
    settings = Settings(home=home, user="t")
    with Depot(settings) as depot:
        (version,) = depot.names.versions()
        assert version.status == PENDING
        refusals = depot.admission.refusals(version)
        assert refusals and "pending" in refusals[0]
        assert depot.audit.events(action="scan") == []
        # While an import holds the store, a start-up does not touch pending versions.
        with depot.lock.shared():
            assert depot.admission.repair() == []
        assert depot.names.show("half").status == PENDING
    # The next start of the server admits it; until then it was neither listed nor exported.
    models, exported, listed = asyncio.run(_ask(settings))
    assert models == ["half:latest"] and exported == 200 and listed == 1
    with Depot(settings) as depot:
        assert depot.names.show("half").status == "ok"
        assert [e.details.get("admitted") for e in depot.audit.events(action="scan")] == [True]


def test_gc_repairs_pending_versions_and_removes_those_without_files(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    _killed_between_store_and_scan(home, write_gguf(tmp_path / "m.gguf"))
    with Depot(Settings(home=home, user="t")) as depot:
        report = depot.housekeeping.gc()
        assert report.repaired == ("half:latest: ok",)
        assert depot.names.show("half").status == "ok"
    _killed_between_store_and_scan(home, write_gguf(tmp_path / "n.gguf", seed=4))
    with Depot(Settings(home=home, user="t")) as depot:
        pending = next(v for v in depot.names.versions() if v.status == PENDING)
        weights = next(f for f in pending.files if f.kind == "weights")
        depot.store.delete(weights.digest)  # lost: it can never be admitted
        report = depot.housekeeping.gc()
        assert report.repaired == ("half:latest: removed",)
        assert depot.names.versions() == []  # the tag went with the version that had moved it
        assert [v.status for v in depot.names.versions(include_untagged=True)] == ["ok"]


def test_importers_get_the_admission_result(tmp_path: Path) -> None:
    (tmp_path / "depot").mkdir()
    with Depot(Settings(home=tmp_path / "depot", user="t")) as depot:
        (tmp_path / "depot" / "policy.toml").write_text('[licences]\ndeny = ["Apache-2.0"]\n')
        version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "denied")
        assert version.status == "quarantined"
        assert any("licence" in r.lower() for r in version.reasons)


def test_a_pending_version_whose_paths_leave_its_folder_is_removed_by_gc(tmp_path: Path) -> None:
    """What an unchecked pull used to record (a version pending for ever, a `gc` that failed)
    is removed by the repair, and nothing is written outside the home."""
    from modeldepot.formats.base import ModelInfo
    from modeldepot.refs import Reference
    from modeldepot.registry import FileRecord

    home = tmp_path / "a" / "b" / "home"
    with Depot(Settings(home=home, user="t")) as depot:
        blob = depot.store.put_bytes(b"not a model\n")
        config = depot.store.put_bytes(b"{}")
        manifest = depot.store.put_bytes(b'{"recorded": "by hand"}')
        depot.registry.record_version(
            Reference.parse("evil"), digest=manifest.digest, config_digest=config.digest,
            info=ModelInfo(format="gguf"), actor="t", source="http://elsewhere/evil",
            files=[FileRecord(p, blob.digest, blob.size, "doc", "x")
                   for p in ("ok.txt", "../../../../escaped.txt", str(tmp_path / "abs.txt"))],
        )  # fmt: skip
        assert [v.status for v in depot.names.versions(include_untagged=True)] == [PENDING]
        report = depot.housekeeping.gc()
        assert [r.split(": ")[-1] for r in report.repaired] == ["removed"]
        assert depot.names.versions(include_untagged=True) == []
        assert list(depot.store.digests()) == []
    outside = [p for p in tmp_path.rglob("*") if not p.is_dir() and not p.is_relative_to(home)]
    assert outside == []
