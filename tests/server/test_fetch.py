"""`depot fetch` (the KServe storage initializer of deploy/kubernetes/kserve.yaml): a model's
files written from a running depot, every digest checked, and nothing written for a model that
is not there."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from servers import DEPOT


def test_fetch_writes_a_model_from_a_depot(server: str, served_home: Path,
                                           tmp_path: Path) -> None:  # fmt: skip
    dest = tmp_path / "mnt" / "models"
    url = server.replace("http://", "depot://") + "/smollm2:latest"
    env = {**os.environ, "DEPOT_HOME": str(tmp_path / "empty")}
    done = subprocess.run([*DEPOT, "fetch", url, str(dest), "--json"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for f in result["files"]:
        data = (dest / f["path"]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == f["digest"]
    assert any(f["path"].endswith(".gguf") for f in result["files"])
    assert not any(p.name.startswith(".depot-fetch-") for p in dest.parent.iterdir())
    missing = subprocess.run([*DEPOT, "fetch", server + "/nosuch", str(tmp_path / "x")],
                             env=env, capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 1 and "nosuch" in missing.stderr
    assert not (tmp_path / "x").exists()
