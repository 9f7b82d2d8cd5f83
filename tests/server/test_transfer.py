"""`depot pull http://HOST:PORT/NAME` between two depots, every digest checked."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import IntegrityError, ModelNotFound, UsageError

pytestmark = pytest.mark.slow


def test_pull_from_another_depot(server: str, served_home: Path, tmp_path: Path) -> None:
    with Depot(Settings(home=served_home)) as there:
        original = there.names.show("smollm2")
    with Depot(Settings(home=tmp_path / "here", user="puller")) as here:
        version = here.intake.pull(f"{server}/smollm2:135m-instruct-q4_1", as_name="copy:v1")
        assert version.digest == original.digest
        assert [f.digest for f in version.files] == [f.digest for f in original.files]
        assert version.info == original.info
        assert version.source == f"{server}/smollm2:135m-instruct-q4_1"
        assert list(here.integrity.check()) == []
        again = here.intake.pull(f"{server}/smollm2")  # everything is there: nothing fetched
        assert again.digest == original.digest and str(again.reference) == "smollm2:latest"
        assert [e.action for e in here.audit.events()] == ["pull", "scan", "pull", "scan"]
        with pytest.raises(ModelNotFound):
            here.intake.pull(f"{server}/nothing-here")
        with pytest.raises(UsageError):
            here.intake.pull("http://")


class _Liar(http.server.BaseHTTPRequestHandler):
    """A server on loopback that names honest digests and sends other bytes."""

    manifest: bytes = b""
    digest: str = ""

    def do_GET(self) -> None:
        if self.path.startswith("/depot/api/models/"):
            body = json.dumps({"digest": self.digest, "lineage": []}).encode()
        elif self.path.startswith("/depot/api/manifests/"):
            body = self.manifest
        else:
            body = b"these are not the bytes you are looking for"
        self.send_response(200)
        self.send_header("x-depot-digest", self.digest)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def liar(served_home: Path) -> Iterator[str]:
    with Depot(Settings(home=served_home)) as there:
        version = there.names.show("smollm2")
        _Liar.manifest = there.store.read_bytes(version.digest)
    _Liar.digest = "sha256:" + hashlib.sha256(_Liar.manifest).hexdigest()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Liar)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_bytes_that_do_not_match_their_digest_are_refused(liar: str, tmp_path: Path) -> None:
    with Depot(Settings(home=tmp_path / "here")) as here:
        with pytest.raises(IntegrityError, match="nothing was stored"):
            here.intake.pull(f"{liar}/smollm2")
        assert here.names.versions(include_untagged=True) == []
        assert list(here.store.tmp.iterdir()) == []
