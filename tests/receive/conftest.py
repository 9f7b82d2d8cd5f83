"""Debian's docker-registry (the CNCF distribution registry) on loopback, for the tests that
pull from a registry: OCI (ModelPack) and Ollama manifests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servers import free_port

REGISTRY = Path("/usr/bin/docker-registry")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not REGISTRY.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the OCI tests: Debian's docker-registry is missing")
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry)")
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")  # fmt: skip
    proc = subprocess.Popen([str(REGISTRY), "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/v2/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield f"127.0.0.1:{port}", folder / "data"
    proc.terminate()
    proc.wait(30)
