"""A quarantined model is listed by `depot list` but never served or exported; the policy is
applied again when a model is served."""

from __future__ import annotations

from pathlib import Path

import httpx

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from server.conftest import start_server


def test_quarantined_model_is_neither_served_nor_exported(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    with Depot(Settings(home=home, user="t")) as d:
        held = d.intake.import_path(write_gguf(tmp_path / "held.gguf", seed=1), "held")
        fine = d.intake.import_path(write_gguf(tmp_path / "fine.gguf", seed=2), "fine")
        d.quarantine.hold(held)
    proc, url = start_server(home)
    try:
        listed = {m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]}
        assert "fine:latest" in listed and "held:latest" not in listed
        chat = httpx.post(f"{url}/v1/chat/completions", json={
            "model": "held", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        assert chat.status_code == 403
        assert chat.json()["error"]["code"] == "model_quarantined"
        message = chat.json()["error"]["message"]
        assert message.startswith("held:latest is quarantined: held by hand"), message
        assert httpx.get(f"{url}/depot/api/manifests/held").status_code == 403
        weights = next(f.digest for f in held.files if f.kind == "weights")
        assert httpx.get(f"{url}/depot/api/blobs/{weights}").status_code == 403
        shared = next(f.digest for f in fine.files if f.kind == "weights")
        assert httpx.get(f"{url}/depot/api/blobs/{shared}").status_code == 200
        assert httpx.get(f"{url}/depot/api/manifests/fine").status_code == 200

        # The policy changes while serving: `fine` is now refused too (no trusted signature).
        (home / "policy.toml").write_text("[signatures]\nrequired = true\n")
        import time

        time.sleep(2.5)  # the server caches names and refusals for 2 s
        refused = httpx.post(f"{url}/v1/completions", json={"model": "fine", "prompt": "x"})
        assert refused.status_code == 403
        assert "no valid signature" in refused.json()["error"]["message"]
        # ... and no view lists it as servable any more: the one gate answers everywhere.
        assert "fine:latest" not in {m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]}
        assert httpx.get(f"{url}/depot/api/models").json() == []
        catalogue = httpx.get(f"{url}/depot/api/catalogue").json()["rows"]
        assert {r["reference"]: r["status"] for r in catalogue}["fine:latest"] == "quarantined"

        # A release is an exception the server honours (and `held` stays held).
        with Depot(Settings(home=home, user="officer")) as d:
            d.quarantine.release(d.names.show("fine"), "signed out of band", until=None)
        time.sleep(2.5)
        listed = {m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]}
        assert "fine:latest" in listed and "held:latest" not in listed
        assert httpx.get(f"{url}/depot/api/manifests/fine").status_code == 200
        shown = httpx.get(f"{url}/depot/api/models/fine").json()
        assert shown["status"] == "ok" and shown["exception"]["actor"] == "officer"
    finally:
        proc.terminate()
        proc.wait(30)
