"""Crashes and concurrency: a killed import never leaves a visible half model, its leftovers
are cleaned, and imports running together never corrupt the store."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot

_FORK = multiprocessing.get_context("fork")


def _big_gguf(path: Path, mib: int = 8, seed: int = 0) -> Path:
    return write_gguf(path, vocab=mib * 256, embedding=1024, layers=1, seed=seed)


def _import_then_die(home: Path, path: str, when: str) -> None:
    depot = Depot(Settings(home=home, user="victim"))
    depot.registry  # noqa: B018 - open (and migrate) before arming the trap
    if when == "at-commit":
        sa.event.listen(depot.registry.engine, "commit", lambda _c: os.kill(os.getpid(), 9))
        depot.intake.import_path(Path(path), "big")
    else:
        written = 0

        def progress(n: int) -> None:
            nonlocal written
            written += n
            if written > 4 * 1024 * 1024:
                os.kill(os.getpid(), signal.SIGKILL)

        depot.intake.import_path(Path(path), "big", progress=progress)
    raise AssertionError("the import should have been killed")


def _run_killed(home: Path, path: Path, when: str) -> None:
    child = _FORK.Process(target=_import_then_die, args=(home, str(path), when))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL


@pytest.mark.parametrize("when", ["mid-blob", "at-commit"])
def test_killed_import_leaves_no_visible_model(tmp_path: Path, when: str) -> None:
    home = tmp_path / "depot"
    big = _big_gguf(tmp_path / "big.gguf")
    with Depot(Settings(home=home, user="t")) as depot:
        depot.intake.import_path(write_gguf(tmp_path / "small.gguf"), "small")
    _run_killed(home, big, when)
    with Depot(Settings(home=home, user="t")) as depot:
        assert [str(v.reference) for v in depot.names.versions(include_untagged=True)] == [
            "small:latest"
        ]
        assert list(depot.integrity.check()) == []
        leftovers = list(depot.store.tmp.iterdir())
        orphans = set(dict(depot.store.digests())) - depot.registry.referenced_digests()
        if when == "mid-blob":
            assert leftovers and all(p.name.endswith(".partial") for p in leftovers)
        else:
            assert len(orphans) == 3  # weights, config, manifest (the template is shared)
        # The next import cleans the dead process's temporary files ...
        depot.intake.import_path(write_gguf(tmp_path / "other.gguf", seed=3), "other")
        assert list(depot.store.tmp.iterdir()) == []
        # ... gc removes unrecorded blobs, and the same import then succeeds whole.
        report = depot.housekeeping.gc()
        assert report.removed_blobs == len(orphans)
        version = depot.intake.import_path(big, "big")
        assert {f.path for f in version.files} == {"big.gguf", "chat_template.jinja"}
        assert list(depot.integrity.check()) == []


def _import(home: str, path: str, name: str) -> None:
    with Depot(Settings(home=Path(home), user=name)) as depot:
        depot.intake.import_path(Path(path), name)


def test_concurrent_imports_and_gc_never_corrupt_the_store(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    same = _big_gguf(tmp_path / "same.gguf")
    other = _big_gguf(tmp_path / "other.gguf", seed=9)
    jobs = [(same, f"same{i}") for i in range(3)] + [(other, "other")]
    procs = [_FORK.Process(target=_import, args=(str(home), str(p), n)) for p, n in jobs]
    for proc in procs:
        proc.start()
    with Depot(Settings(home=home, user="gc")) as depot:
        depot.housekeeping.gc()  # waits for the imports' shared lock, never deletes their blobs
        for proc in procs:
            proc.join(120)
            assert proc.exitcode == 0
        names = sorted(v.reference.name for v in depot.names.versions())
        assert names == ["other", "same0", "same1", "same2"]
        assert (
            len({v.digest for v in depot.names.versions() if v.reference.name.startswith("same")})
            == 1
        )
        assert list(depot.integrity.check()) == []
        assert list(depot.store.tmp.iterdir()) == []
        assert depot.housekeeping.gc().removed_blobs == 0


def test_kill_9_of_the_depot_command(tmp_path: Path) -> None:
    """The real command, killed by signal 9 while it writes a 256 MiB model."""
    home = tmp_path / "depot"
    path = tmp_path / "large.gguf"
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("token_embd.weight", np.zeros((16384, 4096), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    env = {**os.environ, "DEPOT_HOME": str(home)}
    depot_cmd = [sys.executable, "-c", "from modeldepot.cli import main; main()"]
    subprocess.run([*depot_cmd, "list"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*depot_cmd, "import", str(path), "-n", "large"], env=env)
    deadline = time.monotonic() + 60
    while not any((home / "tmp").glob("*.partial")) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the import ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listed = subprocess.run([*depot_cmd, "list", "--json"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"
    gc = subprocess.run([*depot_cmd, "gc"], env=env, capture_output=True, text=True)
    assert gc.returncode == 0, gc.stderr
    assert list((home / "tmp").iterdir()) == []
    assert list((home / "blobs").iterdir()) == []
