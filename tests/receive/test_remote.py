"""A hostile source never writes outside the store, never holds a pull forever, and never
leaves anything recorded: another depot and an OCI registry, played by a real HTTP server on
loopback (tests/hostile.py), send file paths that climb out, endless bodies, blobs longer or
shorter than declared, redirect loops, and silence."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hostile import DEPOT_API, ModelPack, endless, hostile_server, redirect, truncated
from hostile import Hostile as Server
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, FormatError, IntegrityError, ModelNotFound, UnsafePath
from modeldepot.receive.remote import MAX_JSON
from servers import DEPOT


@pytest.fixture
def hostile() -> Iterator[Server]:
    yield from hostile_server()


def _home(tmp_path: Path) -> Path:
    """A home three folders down, so that a path climbing out of it lands in `tmp_path`."""
    return tmp_path / "a" / "b" / "home"


def _outside(tmp_path: Path) -> list[str]:
    """Every file under `tmp_path` that is not in the home."""
    home = _home(tmp_path)
    return sorted(str(p) for p in tmp_path.rglob("*") if not p.is_dir()
                  and not p.is_relative_to(home))  # fmt: skip


def _pull(hostile: Server, kind: str) -> Callable[[Depot], object]:
    if kind == "depot":
        return lambda depot: depot.intake.pull(f"{hostile.url}/evil")
    host = hostile.url.removeprefix("http://")
    return lambda depot: depot.intake.pull_oci(f"oci://{host}/evil:v1")


def _nothing_kept(depot: Depot) -> None:
    """No version (pending or not), no manifest, no temporary file; gc still works."""
    assert depot.names.versions(include_untagged=True) == []
    assert depot.registry.pending() == []
    tmp: Path = depot.store.tmp  # type: ignore[attr-defined]
    assert not tmp.exists() or list(tmp.iterdir()) == []
    depot.housekeeping.gc()
    assert list(depot.store.digests()) == []


@pytest.mark.parametrize("kind", ["depot", "oci"])
@pytest.mark.parametrize("path", ["../../../../escaped.txt", "/ABSOLUTE"])
def test_a_file_path_that_leaves_the_store_refuses_the_pull(
    hostile: Server, tmp_path: Path, kind: str, path: str
) -> None:
    path = path.replace("/ABSOLUTE", str(tmp_path / "absolute.txt"))
    pack = ModelPack(["ok.txt", path])
    hostile.routes.update(pack.routes())
    with Depot(Settings(home=_home(tmp_path), user="t")) as depot:
        with pytest.raises(UnsafePath, match="nothing was stored") as refused:
            _pull(hostile, kind)(depot)
        assert repr(path) in str(refused.value)
        assert not any("/blobs/" in asked for asked in hostile.asked)  # refused before fetching
        _nothing_kept(depot)
    assert _outside(tmp_path) == []


def test_the_command_line_refuses_it_in_one_line_and_gc_still_works(
    hostile: Server, tmp_path: Path
) -> None:
    hostile.routes.update(ModelPack(["ok.txt", "../../../../escaped.txt",
                                     str(tmp_path / "absolute.txt")]).routes())  # fmt: skip
    env = {**os.environ, "DEPOT_HOME": str(_home(tmp_path))}
    env.pop("DEPOT_DATABASE_URL", None)

    def depot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    for source in (f"{hostile.url}/evil", f"oci://{hostile.url.removeprefix('http://')}/evil:v1"):
        pulled = depot("pull", source)
        assert pulled.returncode == 1, pulled.stderr
        lines = pulled.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in pulled.stderr, pulled.stderr
        assert "escaped.txt" in lines[0] and "climbs out" in lines[0]
    assert json.loads(depot("list", "--all", "--json").stdout) == []
    collected = depot("gc")
    assert collected.returncode == 0, collected.stderr
    assert _outside(tmp_path) == []


@pytest.mark.parametrize("kind", ["depot", "oci"])
def test_an_endless_json_answer_is_cut_at_its_cap(
    hostile: Server, tmp_path: Path, kind: str
) -> None:
    pack = ModelPack(["ok.txt"])
    hostile.routes.update(pack.routes())
    route = f"{DEPOT_API}/models/evil" if kind == "depot" else "/v2/evil/manifests/v1"
    hostile.routes[route] = endless(b'{"digest": "', b"a" * 65536)
    with Depot(Settings(home=_home(tmp_path), user="t")) as depot:
        with pytest.raises(FormatError, match=f"more than {MAX_JSON // 1024**2} MiB"):
            _pull(hostile, kind)(depot)
        _nothing_kept(depot)


@pytest.mark.parametrize("kind", ["depot", "oci"])
def test_a_blob_longer_than_declared_is_refused_as_it_arrives(
    hostile: Server, tmp_path: Path, kind: str
) -> None:
    pack = ModelPack(["weights.bin"])
    hostile.routes.update(pack.routes())
    declared = len(pack.blobs[pack.layer])
    for prefix in (f"{DEPOT_API}/blobs/", "/v2/evil/blobs/"):
        hostile.routes[prefix + pack.layer] = endless(pack.blobs[pack.layer], b"\0" * 65536)
    with Depot(Settings(home=_home(tmp_path), user="t")) as depot:
        with pytest.raises(IntegrityError, match=f"more than the {declared} bytes the manifest"):
            _pull(hostile, kind)(depot)
        _nothing_kept(depot)


def test_a_blob_shorter_than_declared_is_refused(hostile: Server, tmp_path: Path) -> None:
    pack = ModelPack(["weights.bin"])
    hostile.routes.update(pack.routes())
    data = pack.blobs[pack.layer]
    hostile.routes[f"{DEPOT_API}/blobs/{pack.layer}"] = truncated(data[:5])
    with Depot(Settings(home=_home(tmp_path), user="t")) as depot:
        with pytest.raises(IntegrityError, match=f"ended after 5 of the {len(data)} bytes"):
            _pull(hostile, "depot")(depot)
        _nothing_kept(depot)


@pytest.mark.parametrize("kind", ["depot", "oci"])
def test_a_redirect_loop_is_a_clean_error(hostile: Server, tmp_path: Path, kind: str) -> None:
    route = f"{DEPOT_API}/models/evil" if kind == "depot" else "/v2/evil/manifests/v1"
    hostile.routes[route] = redirect(route)
    with Depot(Settings(home=_home(tmp_path), user="t")) as depot:
        with pytest.raises(DepotError, match="redirected more than 5 times"):
            _pull(hostile, kind)(depot)
        _nothing_kept(depot)


def test_a_remote_that_never_answers_times_out(hostile: Server, tmp_path: Path) -> None:
    hostile.routes[f"{DEPOT_API}/models/evil"] = hostile.silence()
    settings = Settings(home=_home(tmp_path), user="t", remote_timeout=0.5)
    with Depot(settings) as depot:
        with pytest.raises(DepotError, match=r"did not answer within 0.5 s"):
            _pull(hostile, "depot")(depot)
        _nothing_kept(depot)


def test_a_remote_that_trickles_meets_the_deadline(hostile: Server, tmp_path: Path) -> None:
    hostile.routes[f"{DEPOT_API}/models/evil"] = endless(b'{"digest": "', b"a", pause=0.05)
    settings = Settings(home=_home(tmp_path), user="t", remote_timeout=30, pull_deadline=1)
    with Depot(settings) as depot:
        with pytest.raises(DepotError, match="took longer than 1 s in all"):
            _pull(hostile, "depot")(depot)
        _nothing_kept(depot)


def test_a_depot_from_before_the_move_is_pulled_from_its_old_paths(
    hostile: Server, tmp_path: Path
) -> None:
    """A depot that answers only `/api/...` (before `/depot/api`): the pull asks the new path,
    hears 404, and takes everything from the old one."""
    pack = ModelPack(["ok.txt"])
    hostile.routes.update(pack.routes(api="/api"))
    with Depot(Settings(home=_home(tmp_path), user="t")) as depot:
        version = depot.intake.pull(f"{hostile.url}/evil")
        assert version.digest == pack.digest
    assert hostile.asked[:3] == [f"GET {DEPOT_API}/models/evil", "GET /api/models/evil",
                                 "GET /api/manifests/evil"]  # fmt: skip
    assert not any(a.startswith(f"GET {DEPOT_API}/blobs/") for a in hostile.asked)


def test_a_model_neither_path_knows_is_not_found(hostile: Server, tmp_path: Path) -> None:
    with Depot(Settings(home=_home(tmp_path), user="t")) as depot:
        with pytest.raises(ModelNotFound, match="not found on the other depot"):
            depot.intake.pull(f"{hostile.url}/evil")
        _nothing_kept(depot)
    assert hostile.asked == [f"GET {DEPOT_API}/models/evil", "GET /api/models/evil"]
