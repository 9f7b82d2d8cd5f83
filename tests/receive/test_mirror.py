"""Pull-through mirrors, with another depot as the upstream: it serves a clean model, a GGUF,
and a folder whose pickle runs `os.system` (released there by its operator, so it serves it).
A second depot mirrors them through the upstream's Hugging Face API (`depot pull hf://...`,
and on demand when a client asks) and through its own API: the clean ones are admitted and
signed with the second depot's key, the hostile one is quarantined and never reaches a
client. Hostile upstreams (a path that climbs out, bytes that do not match, an endless answer,
a page on another server, silence) store nothing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builders import write_gguf, write_hf_folder, write_hostile_hf_folder
from hostile import Hostile, body, endless, hostile_server, sha
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, FormatError, IntegrityError, ModelNotFound, UnsafePath
from modeldepot.registry.mirrors import Mirror
from modeldepot.verify.signing import fingerprint
from servers import DEPOT, hf_client, start_server

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Upstream:
    url: str
    home: Path


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    root = tmp_path_factory.mktemp("upstream")
    home = root / "depot"
    with Depot(Settings(home=home, user="upstream")) as depot:
        depot.intake.import_path(write_hf_folder(root / "clean"), "acme/clean")
        depot.intake.import_path(write_gguf(root / "tiny.gguf"), "tiny")
        evil = depot.intake.import_path(write_hostile_hf_folder(root / "evil"), "acme/evil")
        assert evil.status == "quarantined"
        depot.quarantine.release(evil, "its operator trusts it")
        assert depot.names.show("acme/evil").admitted
    proc, url = start_server(home)
    yield Upstream(url, home)
    proc.terminate()
    proc.wait(30)


def _depot(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPOT_HOME": str(home)}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _upstream_version(upstream: Upstream, name: str) -> tuple[str, list[str]]:
    with Depot(Settings(home=upstream.home)) as depot:
        version = depot.names.show(name)
    return version.digest, sorted(f.digest for f in version.files)


_CLIENT = """
    import json, os
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    def kind(call):
        try:
            return ["ok", call()]
        except Exception as exc:
            return [type(exc).__name__, str(exc)]
    def files(folder):
        return sorted(os.path.relpath(os.path.join(d, f), folder)
                      for d, _, names in os.walk(folder) for f in names)
    print(json.dumps({
        "clean": kind(lambda: files(snapshot_download(CLEAN))),
        "evil": kind(lambda: hf_hub_download("acme/evil", "pytorch_model.bin")),
        "evil_info": kind(lambda: HfApi().model_info("acme/evil").sha),
        "missing": kind(lambda: HfApi().model_info("acme/not-anywhere").sha),
    }))
"""


def test_pull_through_another_depots_hub(upstream: Upstream, tmp_path: Path) -> None:
    home = tmp_path / "here"
    _depot(home, "keygen")
    _depot(home, "mirror", "add", "up", "--hf", f"{upstream.url}/hf")
    clean = json.loads(_depot(home, "pull", "hf://acme/clean", "--json").stdout)
    assert clean["status"] == "ok" and clean["reference"] == "acme/clean:latest"
    refused = _depot(home, "pull", "hf://acme/evil", check=False)
    assert refused.returncode == 1 and "is quarantined" in refused.stderr, refused.stderr
    assert "pickle.dangerous-global" in refused.stderr
    # the same files, checked, make the same manifest as upstream
    digest, files = _upstream_version(upstream, "acme/clean")
    assert clean["digest"] == digest and sorted(f["digest"] for f in clean["files"]) == files
    with Depot(Settings(home=home)) as depot:
        evil = depot.names.show("acme/evil")
        assert evil.status == "quarantined"
        assert any("pickle.dangerous-global" in r for r in evil.reasons)
        own = fingerprint(depot.settings.layout.public_key.read_text())
        signed = depot.signatures.trust.signatures(digest)
        assert [s.identity for s in signed] == [own]
        assert depot.signatures.trust.signatures(evil.digest) == []  # never vouched for
        pulled = [e for e in depot.audit.events() if e.action == "pull"]
        assert pulled[0].details["mirror"] == "up" and pulled[0].details["commit"] == digest[7:47]
        assert pulled[0].details["asked"] == "hf://acme/clean@main"
    # served to a Hugging Face client: the clean model, never the hostile one
    proc, url = start_server(home)
    try:
        got = hf_client(f"{url}/hf", tmp_path, _CLIENT.replace("CLEAN", '"acme/clean"'))
    finally:
        proc.terminate()
        proc.wait(30)
    assert got["clean"][0] == "ok" and "model.safetensors" in got["clean"][1]
    for call in ("evil", "evil_info"):
        assert got[call][0] == "GatedRepoError" and "pickle.dangerous-global" in got[call][1]
    assert got["missing"][0] == "RepositoryNotFoundError"


def test_on_demand_a_client_gets_what_the_gate_admits(upstream: Upstream, tmp_path: Path) -> None:
    home = tmp_path / "here"
    _depot(home, "mirror", "add", "up", "--hf", f"{upstream.url}/hf", "--on-demand")
    proc, url = start_server(home, DEPOT_API_KEYS="all,narrow=smollm2")
    try:  # a key may not have the depot fetch what it could not use
        narrow = hf_client(f"{url}/hf", tmp_path / "narrow", _CLIENT.replace("CLEAN", '"tiny"'),
                           token="narrow")  # fmt: skip
        assert narrow["clean"][0] == "GatedRepoError" and "may not use tiny" in narrow["clean"][1]
        with Depot(Settings(home=home)) as depot:
            assert depot.names.versions(include_untagged=True) == []
        got = hf_client(f"{url}/hf", tmp_path, _CLIENT.replace("CLEAN", '"Tiny"'), token="all")
    finally:
        proc.terminate()
        proc.wait(30)
    assert got["clean"][0] == "ok" and "tiny.gguf" in got["clean"][1], got["clean"]
    for call in ("evil", "evil_info"):
        assert got[call][0] == "GatedRepoError" and "pickle.dangerous-global" in got[call][1]
    assert got["missing"][0] == "RepositoryNotFoundError"
    assert "could not bring it" in got["missing"][1]
    with Depot(Settings(home=home)) as depot:
        assert depot.names.show("tiny").admitted
        assert depot.names.show("acme/evil").status == "quarantined"
        pulled = {e.subject.split("@")[0]: e.details for e in depot.audit.events()
                  if e.action == "pull"}  # fmt: skip
    assert set(pulled) == {"tiny:latest", "acme/evil:latest"}


def test_pull_through_another_depots_own_api(upstream: Upstream, tmp_path: Path) -> None:
    home = tmp_path / "here"
    _depot(home, "keygen")
    _depot(home, "mirror", "add", "up", "--hf", f"{upstream.url}/hf")
    _depot(home, "mirror", "add", "native", "--depot", upstream.url)
    ambiguous = _depot(home, "pull", "hf://tiny", check=False)
    assert ambiguous.returncode == 2 and "native, up" in ambiguous.stderr
    for wrong in (["mirror", "add", "x"], ["mirror", "add", "x", "--hf", "http://a", "--depot",
                  "http://b"], ["pull", "hf://tiny", "--api-key-env", "KEY"],
                  ["pull", "hf://../etc"], ["pull", "smollm2", "--mirror", "native"]):  # fmt: skip
        assert _depot(home, *wrong, check=False).returncode == 2, wrong
    pulled = json.loads(_depot(home, "pull", "hf://tiny", "--mirror", "native", "--json").stdout)
    digest, _ = _upstream_version(upstream, "tiny")
    assert pulled["digest"] == digest and pulled["status"] == "ok"
    refused = _depot(home, "pull", "hf://acme/evil", "--mirror", "native", check=False)
    assert refused.returncode == 1 and "pickle.dangerous-global" in refused.stderr
    listed = json.loads(_depot(home, "mirror", "list", "--json").stdout)
    assert [(m["name"], m["kind"]) for m in listed] == [("native", "depot"), ("up", "hf")]
    _depot(home, "mirror", "rm", "native")
    gone = _depot(home, "pull", "hf://tiny", "--mirror", "native", check=False)
    assert gone.returncode == 1 and "no mirror named 'native'" in gone.stderr


# -- hostile upstreams ---------------------------------------------------------------------

COMMIT = "c" * 40
WEIGHTS = b"not really a model, but bytes all the same"


def _tree(path: str = "config.json") -> bytes:
    lfs = {"oid": sha(WEIGHTS)[7:], "size": len(WEIGHTS), "pointerSize": 130}
    entry = {"type": "file", "path": path, "size": len(WEIGHTS), "oid": "0" * 40, "lfs": lfs}
    return json.dumps([entry]).encode()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    yield from hostile_server()


def _hub(hostile: Hostile) -> None:
    """Honest answers for `evil/x`, one file, as a hub under `/hf` would give them."""
    hostile.routes.update({
        "/hf/api/models/evil/x/revision/main": body(json.dumps({"sha": COMMIT}).encode()),
        f"/hf/api/models/evil/x/tree/{COMMIT}": body(_tree()),
        f"/hf/evil/x/resolve/{COMMIT}/config.json": body(WEIGHTS),
    })  # fmt: skip


@pytest.mark.parametrize(
    ("case", "error", "words"),
    [
        ("climbing-path", UnsafePath, "climbs out"),
        ("longer-than-declared", IntegrityError, "more than the"),
        ("other-bytes", IntegrityError, "not what its tree declares"),
        ("endless-answer", FormatError, "more than 16 MiB"),
        ("page-elsewhere", FormatError, "another server"),
        ("silence", DepotError, "did not answer"),
        ("not-there", ModelNotFound, "not on the hub"),
    ],
)
def test_a_hostile_hub_stores_nothing(case: str, error: type[Exception], words: str,
                                      hostile: Hostile, tmp_path: Path) -> None:  # fmt: skip
    tree = f"/hf/api/models/evil/x/tree/{COMMIT}"
    _hub(hostile)
    if case == "climbing-path":
        hostile.routes[tree] = body(_tree("../../../outside.json"))
    elif case == "longer-than-declared":
        hostile.routes[f"/hf/evil/x/resolve/{COMMIT}/config.json"] = body(WEIGHTS * 100)
    elif case == "other-bytes":
        other = bytes(reversed(WEIGHTS))
        hostile.routes[f"/hf/evil/x/resolve/{COMMIT}/config.json"] = body(other)
    elif case == "endless-answer":
        hostile.routes[tree] = endless(b"[", b'{"type": "file", "path": "a", "size": 1},' * 64)
    elif case == "page-elsewhere":
        link = '<http://169.254.169.254/latest/meta-data>; rel="next"'
        hostile.routes[tree] = body(_tree(), {"link": link})
    elif case == "silence":
        hostile.routes[tree] = hostile.silence()
    elif case == "not-there":
        del hostile.routes["/hf/api/models/evil/x/revision/main"]
    settings = Settings(home=tmp_path / "depot", user="t", remote_timeout=1.0)
    with Depot(settings) as depot:
        depot.mirrors.add(Mirror("evil", "hf", f"{hostile.url}/hf"))
        with pytest.raises(error, match=words):
            depot.mirroring.pull("hf://evil/x")
        assert depot.names.versions(include_untagged=True) == []
        assert not [e for e in depot.audit.events() if e.action == "pull"]
    assert not (tmp_path / "outside.json").exists()
    assert not list((tmp_path / "depot" / "work").glob("mirror-*"))  # the staging folder went too
    if case == "page-elsewhere":
        assert not any("meta-data" in asked for asked in hostile.asked)
