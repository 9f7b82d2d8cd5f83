"""A hostile remote on loopback: a real HTTP server that speaks the depot's API and the OCI
distribution API, and answers with whatever a test tells it to (paths that climb out of the
store, endless bodies, blobs longer than declared, redirect loops, silence)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEPOT_API",
    "Answer",
    "Hostile",
    "ModelPack",
    "body",
    "endless",
    "hostile_server",
    "redirect",
    "truncated",
]

Answer = Callable[[http.server.BaseHTTPRequestHandler], None]
"""Writes a whole answer (status, headers, body) to the handler."""

DEPOT_API = "/depot/api"
"""Where a depot's own API answers."""
ENDLESS_LIMIT = 256 * 1024 * 1024
"""An "endless" body stops here, so that a puller without bounds fails the test rather than
the machine."""


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class ModelPack:
    """A small model in the depot's manifest layout: blobs by digest and the manifest."""

    paths: list[str]
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifest: bytes = b""

    def __post_init__(self) -> None:
        config = json.dumps({"descriptor": {"name": "evil"}, "config": {}, "modelfs": {},
                             "io.modeldepot.metadata": {"format": "gguf"}}).encode()  # fmt: skip
        self.blobs[sha(config)] = config
        layers = []
        for i, path in enumerate(self.paths):
            data = f"file {i}: not a model\n".encode()
            self.blobs[sha(data)] = data
            layers.append({
                "mediaType": "application/vnd.cncf.model.doc.v1.raw", "digest": sha(data),
                "size": len(data), "annotations": {"org.cncf.model.filepath": path,
                                                   "io.modeldepot.kind": "doc"},
            })  # fmt: skip
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.model.config.v1+json",
                       "digest": sha(config), "size": len(config)},
            "layers": layers,
        }).encode()  # fmt: skip

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    @property
    def layer(self) -> str:
        """The digest of the first file."""
        return str(json.loads(self.manifest)["layers"][0]["digest"])

    def routes(self, api: str = DEPOT_API) -> dict[str, Answer]:
        """Honest answers for this model, as another depot (under `api`, name `evil`: a
        depot from before `/depot/api` answers under `/api`) and as an OCI registry
        (`/v2/evil/...`, tag `v1`) would give them."""
        named = {"x-depot-digest": self.digest, "docker-content-digest": self.digest}
        shown = json.dumps({"digest": self.digest, "lineage": []}).encode()
        routes: dict[str, Answer] = {
            f"{api}/models/evil": body(shown),
            f"{api}/manifests/evil": body(self.manifest, named),
            "/v2/evil/manifests/v1": body(self.manifest, named),
        }
        for digest, data in self.blobs.items():
            routes[f"{api}/blobs/{digest}"] = body(data)
            routes[f"/v2/evil/blobs/{digest}"] = body(data)
        return routes


def body(data: bytes, headers: dict[str, str] | None = None, status: int = 200) -> Answer:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return answer


def endless(start: bytes, filler: bytes, headers: dict[str, str] | None = None,
            pause: float = 0.0) -> Answer:  # fmt: skip
    """`start`, then `filler` again and again (with `pause` seconds between), with no length:
    the body ends only when the client hangs up."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        sent = 0
        try:
            handler.wfile.write(start)
            while sent < ENDLESS_LIMIT:
                handler.wfile.write(filler)
                handler.wfile.flush()
                sent += len(filler)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return answer


def truncated(data: bytes) -> Answer:
    """`data`, then the connection closes: a body of no declared length that ends early."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(data)

    return answer


def redirect(location: str) -> Answer:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("location", location)
        handler.send_header("content-length", "0")
        handler.end_headers()

    return answer


@dataclass
class Hostile:
    url: str
    routes: dict[str, Answer]
    silent: threading.Event
    """Set to release the handlers of `silence()` routes (at the end of the test)."""
    asked: list[str] = field(default_factory=list)

    def silence(self) -> Answer:
        """An answer that never comes: the handler waits until the test ends."""

        def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
            self.silent.wait(60)

        return answer


def hostile_server() -> Iterator[Hostile]:
    """A fixture body: a threaded HTTP server on a loopback port, answering from `routes`
    (404 for anything else); every path asked is recorded in `asked`."""
    state = Hostile("", {}, threading.Event())

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            path = self.path.split("?", 1)[0]
            state.asked.append(f"{self.command} {path}")
            found = state.routes.get(path)
            (found or body(b'{"errors": [{"code": "NOT_FOUND"}]}', status=404))(self)

        do_GET = do_HEAD = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        state.silent.set()
        httpd.shutdown()
        httpd.server_close()
