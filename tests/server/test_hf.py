"""The Hugging Face Hub API (`/hf`) with the unmodified clients: `huggingface_hub`
(snapshot_download, hf_hub_download, model_info, list_models), transformers'
`from_pretrained` and llama-cpp-python's `Llama.from_pretrained`, each run in its own process
with `HF_ENDPOINT` pointing at a real `depot serve`, the way a user sets it. The depot holds
the packaged SmolLM2 (GGUF), a tiny llama in Hugging Face's layout, and a folder whose pickle
runs `os.system` (quarantined); it has keys, so `HF_TOKEN` must be one."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from builders import write_hostile_hf_folder, write_tiny_llama
from modeldepot.config import Settings
from modeldepot.depot import Depot
from servers import hf_client, start_server

pytestmark = pytest.mark.slow
FULL, NARROW = "full-secret", "narrow-secret"


@dataclass(frozen=True)
class Hub:
    url: str
    home: Path
    llama: Path
    """The tiny llama's folder as it was imported."""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("hub")
    home = root / "depot"
    llama = write_tiny_llama(root / "tiny-llama")
    with Depot(Settings(home=home, user="tests")) as depot:
        depot.intake.pull("smollm2")
        depot.intake.import_path(llama, "acme/tiny-llama")
        evil = depot.intake.import_path(write_hostile_hf_folder(root / "evil"), "acme/evil")
        assert evil.status == "quarantined"
    proc, url = start_server(home, DEPOT_API_KEYS=f"{FULL},{NARROW}=smollm2")
    yield Hub(url, home, llama)
    proc.terminate()
    proc.wait(30)


def _client(hub: Hub, tmp_path: Path, script: str, token: str | None = FULL) -> Any:
    return hf_client(f"{hub.url}/hf", tmp_path, script, token)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_huggingface_hub_downloads_lists_and_describes(hub: Hub, tmp_path: Path) -> None:
    got = _client(
        hub,
        tmp_path,
        """
        import json, os
        from huggingface_hub import HfApi, hf_hub_download, list_models, snapshot_download
        api = HfApi()
        folder = snapshot_download("acme/tiny-llama")
        files = {f: os.path.join(folder, f) for f in sorted(os.listdir(folder))}
        config = hf_hub_download("acme/tiny-llama", "config.json")
        info = api.model_info("acme/tiny-llama", files_metadata=True)
        pinned = api.model_info("acme/tiny-llama", revision=info.sha)
        gguf = api.model_info("smollm2", revision="135m-instruct-q4_1")
        print(json.dumps({
            "folder": folder, "files": files, "config": config, "sha": info.sha,
            "pinned": pinned.sha, "tagged": gguf.sha, "main": api.model_info("smollm2").sha,
            "library": api.model_info("library/smollm2").sha,
            "siblings": {s.rfilename: [s.size, s.lfs.sha256] for s in info.siblings},
            "library_name": info.library_name, "author": info.author, "gguf": gguf.gguf,
            "pipeline": gguf.pipeline_tag, "created": info.created_at.isoformat(),
            "listed": [m.id for m in list_models()],
            "searched": [m.id for m in api.list_models(search="llama", author="acme")],
            "filtered": [m.id for m in api.list_models(filter="gguf")],
            "exists": [api.file_exists("smollm2", "chat_template.jinja"),
                       api.file_exists("smollm2", "nothing.bin")],
            "repo_files": api.list_repo_files("smollm2"),
        }))
    """,
    )
    with Depot(Settings(home=hub.home)) as depot:
        llama = depot.names.show("acme/tiny-llama")
        smollm2 = depot.names.show("smollm2")
    # the commit is the manifest digest's first 40 hex digits, and is accepted back
    assert got["sha"] == got["pinned"] == llama.digest[7:47]
    assert got["tagged"] == got["main"] == got["library"] == smollm2.digest[7:47]
    assert Path(got["folder"]).name == got["sha"]  # the client's snapshot is named by it
    # every file arrived whole: the same bytes as the folder that was imported
    assert sorted(got["files"]) == sorted(p.name for p in hub.llama.iterdir())
    for name, path in got["files"].items():
        assert _sha256(Path(path)) == _sha256(hub.llama / name), name
    assert Path(got["config"]).read_bytes() == (hub.llama / "config.json").read_bytes()
    assert got["siblings"] == {f.path: [f.size, f.digest[7:]] for f in llama.files}
    assert got["library_name"] == "transformers" and got["author"] == "acme"
    assert got["gguf"]["architecture"] == "llama" and got["pipeline"] == "text-generation"
    # the quarantined model is never listed; the other two are
    assert got["listed"] == ["acme/tiny-llama", "smollm2"]
    assert got["searched"] == ["acme/tiny-llama"] and got["filtered"] == ["smollm2"]
    assert got["exists"] == [True, False]
    assert "chat_template.jinja" in got["repo_files"]


def test_transformers_loads_a_hugging_face_folder_from_the_depot(hub: Hub, tmp_path: Path) -> None:
    got = _client(
        hub,
        tmp_path,
        f"""
        import json, torch
        from transformers import AutoModelForCausalLM
        served = AutoModelForCausalLM.from_pretrained("acme/tiny-llama")
        local = AutoModelForCausalLM.from_pretrained({str(hub.llama)!r})
        ids = torch.tensor([[1, 5, 9, 3]])
        same = torch.equal(served(ids).logits, local(ids).logits)
        print(json.dumps({{"class": type(served).__name__, "same": same}}))
    """,
    )
    assert got == {"class": "LlamaForCausalLM", "same": True}


def test_llama_cpp_loads_a_gguf_from_the_depot(hub: Hub, tmp_path: Path,
                                               smollm2_path: Path) -> None:  # fmt: skip
    got = _client(
        hub,
        tmp_path,
        """
        import json
        from llama_cpp import Llama
        llm = Llama.from_pretrained("library/smollm2", filename="*.gguf", n_ctx=256,
                                    n_threads=2, verbose=False)
        print(json.dumps({"path": llm.model_path,
                          "tokens": llm.tokenize(b"Hello, depot")}))
    """,
    )
    assert _sha256(Path(got["path"])) == _sha256(smollm2_path)
    assert len(got["tokens"]) > 2


_ERRORS = """
    import json
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    api = HfApi()
    def kind(call):
        try:
            call()
            return ["ok"]
        except Exception as exc:
            return [type(exc).__name__, [c.__name__ for c in type(exc).__mro__], str(exc)]
    print(json.dumps({
        "info": kind(lambda: api.model_info(REPO)),
        "file": kind(lambda: hf_hub_download(REPO, "config.json")),
        "snapshot": kind(lambda: snapshot_download(REPO)),
        "missing": kind(lambda: api.model_info("acme/not-here")),
        "smollm2": kind(lambda: api.model_info("smollm2")),
    }))
"""


def test_a_quarantined_model_is_a_gated_repo_to_every_client(hub: Hub, tmp_path: Path) -> None:
    got = _client(hub, tmp_path, _ERRORS.replace("REPO", '"acme/evil"'))
    for call in ("info", "file", "snapshot"):
        name, bases, message = got[call]
        assert name == "GatedRepoError" and "RepositoryNotFoundError" in bases, got[call]
        assert "quarantined" in message or "scan: " in message, message
        assert "pickle.dangerous-global" in message, message
    assert got["missing"][0] == "RepositoryNotFoundError" and got["smollm2"] == ["ok"]
    assert not (tmp_path / "hf-cache" / "models--acme--evil" / "blobs").exists() or not any(
        (tmp_path / "hf-cache" / "models--acme--evil" / "blobs").iterdir()
    )


def test_a_key_outside_its_scope_gets_a_gated_repo(hub: Hub, tmp_path: Path) -> None:
    held = _client(hub, tmp_path, _ERRORS.replace("REPO", '"acme/tiny-llama"'), token=NARROW)
    for call in ("info", "file", "snapshot"):
        assert held[call][0] == "GatedRepoError", held[call]
        assert "may not use acme/tiny-llama" in held[call][2]
    # a name it may not use is refused the same way whether or not the depot holds it
    assert held["missing"][0] == "GatedRepoError" and held["smollm2"] == ["ok"]
    wrong = _client(hub, tmp_path, _ERRORS.replace("REPO", '"smollm2"'), token="wrong")
    assert wrong["smollm2"][0] == "HfHubHTTPError" and "401" in wrong["smollm2"][2]
    none = _client(hub, tmp_path, _ERRORS.replace("REPO", '"smollm2"'), token=None)
    assert none["smollm2"][0] == "RepositoryNotFoundError"
    assert "authenticated" in none["smollm2"][2]


def _get(hub: Hub, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{hub.url}{path}", headers={"Authorization": f"Bearer {FULL}", **headers})


def test_revisions_ranges_and_pages(hub: Hub) -> None:
    with Depot(Settings(home=hub.home)) as depot:
        smollm2 = depot.names.show("smollm2")
    commit = smollm2.digest[7:47]
    for rev in ("main", "135m-instruct-q4_1", commit, smollm2.digest.replace(":", "%3A")):
        info = _get(hub, f"/hf/api/models/smollm2/revision/{rev}")
        assert info.status_code == 200 and info.json()["sha"] == commit, rev
    template = next(f for f in smollm2.files if f.path == "chat_template.jinja")
    whole = _get(hub, f"/hf/smollm2/resolve/{commit}/chat_template.jinja")
    assert whole.headers["x-repo-commit"] == commit
    assert whole.headers["etag"] == f'"{template.digest[7:]}"'
    assert "content-encoding" not in whole.headers
    part = _get(hub, "/hf/smollm2/resolve/main/chat_template.jinja", Range="bytes=10-19")
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{template.size}"
    # pages: an absolute Link to the next, with the /hf prefix; none on the last
    first = _get(hub, "/hf/api/models?limit=1&sort=createdAt")
    assert len(first.json()) == 1
    following = first.links["next"]["url"]
    assert following.startswith(f"{hub.url}/hf/api/models?") and "sort=createdAt" in following
    second = _get(hub, following.removeprefix(hub.url))
    assert len(second.json()) == 1 and "link" not in second.headers
    assert {first.json()[0]["id"], second.json()[0]["id"]} == {"smollm2", "acme/tiny-llama"}
    # a folder that does not exist is EntryNotFound (transformers probes for one)
    probe = _get(hub, "/hf/api/models/smollm2/tree/main/additional_chat_templates")
    assert probe.status_code == 404 and probe.headers["x-error-code"] == "EntryNotFound"


def _raw(hub: Hub, path: str) -> tuple[int, dict[str, str]]:
    """A request sent with its path exactly as written (httpx would remove the dots)."""
    host, port = hub.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {FULL}"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}


def test_hostile_names_and_paths_reach_nothing(hub: Hub) -> None:
    for path in ("/hf/api/models/../smollm2", "/hf/api/models/..%2F..%2Fetc",
                 "/hf/api/models/acme/..", "/hf/../../etc/passwd",
                 "/hf/acme/../resolve/main/config.json",
                 "/hf/api/models/..%2F..%2Fetc/xet-read-token/main",
                 "/hf/api/models/%3Csvg%20hx-get%3D%22x%22%3E/xet-read-token/main"):  # fmt: skip
        status, headers = _raw(hub, path)
        assert status == 404 and headers["x-error-code"] == "RepoNotFound", (path, headers)
    for path in ("../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
                 "./chat_template.jinja", "a//b"):  # fmt: skip
        status, headers = _raw(hub, f"/hf/smollm2/resolve/main/{path}")
        assert status == 404 and headers["x-error-code"] == "EntryNotFound", (path, headers)
    status, headers = _raw(hub, "/hf/smollm2/resolve/refs%2Fpr%2F1/config.json")
    assert status == 404 and headers["x-error-code"] == "RevisionNotFound"
    status, _ = _raw(hub, "/hf/api/models?cursor=-1")
    assert status == 400


def test_an_endless_request_does_not_hold_the_server(hub: Hub) -> None:
    """A body that never ends (a GET's, which the Hub API never reads) and a header line that
    never ends: each is answered or cut off, and the server goes on answering others."""
    host, port = hub.url.removeprefix("http://").split(":")
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        try:
            while not stop.is_set():
                sock.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
                time.sleep(0.01)
        except OSError:
            pass

    body = socket.create_connection((host, int(port)), timeout=30)
    body.sendall(f"GET /hf/api/models HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: "
                 f"Bearer {FULL}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())  # fmt: skip
    sender = threading.Thread(target=trickle, args=(body,), daemon=True)
    sender.start()
    header = socket.create_connection((host, int(port)), timeout=30)
    header.sendall(b"GET /hf/api/models HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    try:
        assert body.recv(64).startswith(b"HTTP/1.1 200"), "the endless body held the answer"
        answer = b""
        for _ in range(200):  # at most ~6 MiB of header before it must have been cut off
            try:
                header.sendall(b"y" * 32768)
            except OSError:
                break
        header.settimeout(30)
        try:
            answer = header.recv(64)
        except OSError:
            answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer
        assert _get(hub, "/hf/api/models/smollm2").status_code == 200
    finally:
        stop.set()
        body.close()
        header.close()


_GGUF = """
    import json, os
    if NO_XET:
        os.environ["HF_HUB_DISABLE_XET"] = "1"
    from huggingface_hub import HfApi, hf_hub_download
    name = next(f for f in HfApi().list_repo_files("smollm2") if f.endswith(".gguf"))
    print(json.dumps({"path": hf_hub_download("smollm2", name)}))
"""


def _log_lines(hub: Hub, *wanted: str) -> str:
    """The server's log once every `wanted` text is in it (a line is written after its
    response has been sent)."""
    text = ""
    for _ in range(100):
        text = (hub.home / "serve.log").read_text(errors="replace")
        if all(w in text for w in wanted):
            break
        time.sleep(0.1)
    return text


def test_huggingface_hub_downloads_a_large_file_over_xet(hub: Hub, tmp_path: Path,
                                                         smollm2_path: Path) -> None:  # fmt: skip
    """From `xet.XET_FROM` bytes up the client takes the Xet path the depot offers (`hf_xet`
    fetching the xorbs in parallel); with Xet turned off, plain HTTP: the same bytes."""
    with Depot(Settings(home=hub.home)) as depot:
        gguf = next(f for f in depot.names.show("smollm2").files if f.path.endswith(".gguf"))
    xet = _client(hub, tmp_path / "xet", _GGUF.replace("NO_XET", "False"))
    plain = _client(hub, tmp_path / "plain", _GGUF.replace("NO_XET", "True"))
    assert _sha256(Path(xet["path"])) == _sha256(Path(plain["path"])) == _sha256(smollm2_path)
    assert gguf.digest == f"sha256:{_sha256(smollm2_path)}"
    reconstruction = f'"GET /xet/v2/reconstructions/{gguf.digest[7:]}" 200'
    log = _log_lines(hub, reconstruction, '"GET /xet/xorbs/<grant>/1" 206')
    assert '"GET /xet/xorbs/<grant>/0" 206' in log
    # the grants in the URLs are capabilities: the log never shows one
    assert all(line.split("/xet/xorbs/")[1].startswith("<grant>/")
               for line in log.splitlines() if "/xet/xorbs/" in line)  # fmt: skip


def _frames(data: bytes) -> bytes:
    """The chunks of xorb bytes, unframed (version 0, uncompressed: what the depot sends)."""
    out, at = bytearray(), 0
    while at < len(data):
        assert data[at] == 0 and data[at + 4] == 0, "version 0, no compression"
        length = int.from_bytes(data[at + 1 : at + 4], "little")
        assert length == int.from_bytes(data[at + 5 : at + 8], "little") <= 128 * 1024
        out += data[at + 8 : at + 8 + length]
        at += 8 + length
    return bytes(out)


def test_xet_tokens_urls_and_ranges_are_checked(hub: Hub, smollm2_path: Path) -> None:
    with Depot(Settings(home=hub.home)) as depot:
        smollm2 = depot.names.show("smollm2")
        llama = depot.names.show("acme/tiny-llama")
    gguf = next(f for f in smollm2.files if f.path.endswith(".gguf"))
    file_id = gguf.digest[7:]
    head = httpx.head(f"{hub.url}/hf/smollm2/resolve/main/{gguf.path}",
                      headers={"Authorization": f"Bearer {FULL}"})  # fmt: skip
    assert head.headers["x-xet-hash"] == file_id
    refresh = head.headers["x-xet-refresh-route"]
    assert refresh == f"{hub.url}/hf/api/models/smollm2/xet-read-token/{smollm2.digest[7:47]}"
    small = _get(hub, "/hf/smollm2/resolve/main/chat_template.jinja")
    assert "x-xet-hash" not in small.headers  # small files: plain HTTP
    # the token: for a key that may have the version, refused as the Hub refuses
    assert httpx.get(refresh).status_code == 401
    outside = httpx.get(f"{hub.url}/hf/api/models/acme/tiny-llama/xet-read-token/main",
                        headers={"Authorization": f"Bearer {NARROW}"})  # fmt: skip
    assert outside.status_code == 403 and outside.headers["x-error-code"] == "GatedRepo"
    granted = httpx.get(refresh, headers={"Authorization": f"Bearer {NARROW}"})
    assert granted.status_code == 200
    token = granted.headers["x-xet-access-token"]
    assert granted.headers["x-xet-cas-url"] == f"{hub.url}/xet"
    assert int(granted.headers["x-xet-token-expiration"]) > time.time() + 60
    bearer = {"Authorization": f"Bearer {token}"}

    # part of the file, rebuilt from the xorb ranges it names
    data = smollm2_path.read_bytes()
    start, end = 1000, 70 * 1024 * 1024  # across the first xorb's end
    rec = httpx.get(f"{hub.url}/xet/v1/reconstructions/{file_id}",
                    headers={**bearer, "Range": f"bytes={start}-{end}"})  # fmt: skip
    assert rec.status_code == 200, rec.text
    body = rec.json()
    assert [t["range"] for t in body["terms"]] == [{"start": 0, "end": 512},
                                                   {"start": 0, "end": 49}]  # fmt: skip
    rebuilt = b""
    for term in body["terms"]:
        (fetch,) = body["fetch_info"][term["hash"]]
        span = fetch["url_range"]
        got = httpx.get(fetch["url"], headers={"Range": f"bytes={span['start']}-{span['end']}"})
        assert got.status_code == 206 and len(got.content) == span["end"] - span["start"] + 1
        piece = _frames(got.content)
        assert len(piece) == term["unpacked_length"]
        rebuilt += piece
    offset = body["offset_into_first_range"]
    assert rebuilt[offset : offset + end - start + 1] == data[start : end + 1]
    whole = httpx.get(f"{hub.url}/xet/v2/reconstructions/{file_id}", headers=bearer).json()
    assert sum(t["unpacked_length"] for t in whole["terms"]) == gguf.size
    assert len(whole["xorbs"]) == len(whole["terms"]) == -(-gguf.size // (64 * 1024 * 1024))

    # what is refused, and how
    url = body["fetch_info"][body["terms"][0]["hash"]][0]["url"]
    grant = url.split("/xorbs/")[1].split("/")[0]
    beyond = {**bearer, "Range": f"bytes={gguf.size}-{gguf.size + 9}"}
    cases = [
        (f"/xet/v2/reconstructions/{file_id}", {}, 401),  # no token
        (f"/xet/v2/reconstructions/{file_id}", {"Authorization": "Bearer nope"}, 401),
        (f"/xet/v2/reconstructions/{file_id}", {"Authorization": f"Bearer {grant}"}, 401),
        (f"/xet/v2/reconstructions/{file_id}", {"Authorization": f"Bearer {FULL}"}, 401),
        ("/xet/v2/reconstructions/..%2F..%2Fetc", bearer, 404),  # no such route
        (f"/xet/v2/reconstructions/{'z' * 64}", bearer, 400),
        (f"/xet/v2/reconstructions/{file_id.upper()}", bearer, 400),
        (f"/xet/v2/reconstructions/{llama.files[0].digest[7:]}", bearer, 404),  # not its file
        (f"/xet/v2/reconstructions/{file_id}", beyond, 416),
        (f"/xet/xorbs/{token}/0", {}, 403),  # a read token is no URL grant
        (f"/xet/xorbs/{grant}/99", {}, 404),
        (f"/xet/xorbs/{grant}/x", {}, 404),
        (f"/xet/xorbs/{grant}/%C2%B2", {}, 404),  # "²": a digit to str.isdigit, not to int
        (f"/xet/xorbs/{grant}/{'9' * 5000}", {}, 404),
        ("/xet/xorbs/%3Cb%20hx-get%3D%22x%22%3E/0", {}, 403),  # HTML for a grant
        ("/xet/xorbs/..%2F..%2Fetc%2Fpasswd/0", {}, 404),  # no such route
        (f"/xet/xorbs/{grant}/0", {"Range": f"bytes=0-{'9' * 5000}"}, 416),
        (f"/xet/v2/reconstructions/{file_id}", {**bearer, "Range": "bytes=" + "0-1," * 2000}, 416),
        ("/xet/xorbs/nope/0", {}, 403),
        (f"/xet/xorbs/{grant}/0", {"Range": "bytes=0-9,20-29"}, 416),
        (f"/xet/xorbs/{grant}/0", {"Range": "bytes=999999999-1000000000"}, 416),
    ]
    granted = _grant_rows(hub)
    for path, headers, status in cases:
        answer = httpx.get(f"{hub.url}{path}", headers=headers)
        assert answer.status_code == status, (path, headers, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/json", path  # never a page
        assert "hx-get" not in answer.headers.get("x-error-message", ""), path
        if status == 416:
            assert answer.headers["content-range"].startswith("bytes */"), path
    assert _grant_rows(hub) == granted  # nothing refused was granted
    log = _log_lines(hub, "/xet/xorbs/<grant>/99")
    assert grant not in log and token not in log


def _grant_rows(hub: Hub) -> int:
    home = Settings(home=hub.home, user="tests")
    with Depot(home) as depot, depot.registry.engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM transfer_grants")))


def test_a_quarantine_stops_xet_transfers_already_granted(hub: Hub, tmp_path: Path) -> None:
    folder = tmp_path / "held"
    shutil.copytree(hub.llama, folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# held for review\n")
    with Depot(Settings(home=hub.home, user="tests")) as depot:
        version = depot.intake.import_path(folder, "acme/held")
    weights = next(f for f in version.files if f.path.endswith(".safetensors"))
    granted = _get(hub, "/hf/api/models/acme/held/xet-read-token/main")
    token = granted.headers["x-xet-access-token"]
    bearer = {"Authorization": f"Bearer {token}"}
    rec = httpx.get(f"{hub.url}/xet/v1/reconstructions/{weights.digest[7:]}", headers=bearer)
    assert rec.status_code == 200
    (fetch,) = next(iter(rec.json()["fetch_info"].values()))
    assert httpx.get(fetch["url"]).status_code == 200
    with Depot(Settings(home=hub.home, user="tests")) as depot:
        depot.quarantine.hold(version, reason="held for the test")
    answers: list[httpx.Response] = []
    for _ in range(100):  # the server's view of the gate is a few seconds old at most
        answers = [httpx.get(f"{hub.url}/xet/v1/reconstructions/{weights.digest[7:]}",
                             headers=bearer), httpx.get(fetch["url"])]  # fmt: skip
        if all(a.status_code == 403 for a in answers):
            break
        time.sleep(0.1)
    for answer in answers:
        assert answer.status_code == 403 and answer.headers["x-error-code"] == "GatedRepo"
        assert "held for the test" in answer.json()["error"], answer.text


def test_a_revoked_key_ends_its_xet_grants(hub: Hub) -> None:
    with Depot(Settings(home=hub.home, user="tests")) as depot:
        _, secret = depot.keys.create("xet-reader", models="smollm2")
    with Depot(Settings(home=hub.home)) as depot:
        gguf_id = next(f.digest[7:] for f in depot.names.show("smollm2").files
                       if f.path.endswith(".gguf"))  # fmt: skip
    granted = httpx.get(f"{hub.url}/hf/api/models/smollm2/xet-read-token/main",
                        headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert granted.status_code == 200, granted.text
    bearer = {"Authorization": f"Bearer {granted.headers['x-xet-access-token']}"}
    url = f"{hub.url}/xet/v2/reconstructions/{gguf_id}"
    assert httpx.get(url, headers=bearer).status_code == 200
    with Depot(Settings(home=hub.home, user="tests")) as depot:
        depot.keys.revoke("xet-reader")
    answer = httpx.get(url, headers=bearer)
    for _ in range(100):  # keys are looked up again within two seconds
        if answer.status_code != 200:
            break
        time.sleep(0.1)
        answer = httpx.get(url, headers=bearer)
    assert answer.status_code == 401 and "revoked" in answer.json()["error"], answer.text
