"""What an operator reads in the log: each stage says what it did, with the model's name and
digest, under its package's logger (`modeldepot.receive`, `modeldepot.verify`...)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from builders import write_gguf
from modeldepot.depot import Depot
from modeldepot.verify.signing import Signer, generate_key


def _lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_an_import_logs_its_digest_and_its_scan(
    depot: Depot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modeldepot")
    path = write_gguf(tmp_path / "m.gguf")
    version = depot.intake.import_path(path, "m:v1")
    assert f"importing {path} as m:v1" in _lines(caplog, "modeldepot.receive")
    assert f"stored m:v1 {version.digest} from {path}: ok" in _lines(caplog, "modeldepot.receive")
    (scanned,) = _lines(caplog, "modeldepot.verify")
    assert scanned.startswith(f"scanned m:v1 {version.digest}: ")
    assert scanned.endswith("; admitted")


def test_a_quarantine_logs_its_reasons_and_a_release_its_actor(
    depot: Depot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modeldepot")
    depot.settings.home.mkdir(parents=True, exist_ok=True)
    (depot.settings.home / "policy.toml").write_text('[formats]\nallow = ["onnx"]\n')
    version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    assert version.status == "quarantined"
    (scanned,) = [m for m in _lines(caplog, "modeldepot.verify") if m.startswith("scanned")]
    assert scanned.startswith(f"scanned m:latest {version.digest}: ")
    assert "; quarantined: " in scanned
    assert all(reason in scanned for reason in version.reasons)
    depot.quarantine.release(version, "reviewed by hand", actor="alice")
    assert any(m.startswith(f"alice released m:latest {version.digest}: reviewed by hand")
               for m in _lines(caplog, "modeldepot.verify"))  # fmt: skip


def test_signing_and_gc_say_what_they_did(depot: Depot, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="modeldepot")
    version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    private, _ = generate_key(tmp_path / "key")
    record = depot.signatures.sign(version, Signer("key", private))
    assert (f"signed m:latest {version.digest} (key, {record.identity[:16]})"
            in _lines(caplog, "modeldepot.verify"))  # fmt: skip
    depot.names.remove("m")
    report = depot.housekeeping.gc()
    (line,) = _lines(caplog, "modeldepot.registry")
    assert line.startswith(f"gc removed {report.removed_blobs} blobs ({report.freed_bytes} bytes)")
    assert report.removed_blobs > 0


def test_a_failed_pull_is_logged_without_the_credentials_of_its_url(
    depot: Depot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modeldepot")
    with pytest.raises(Exception, match="cannot reach"):
        depot.intake.pull("http://alice:hunter2@127.0.0.1:9/m")
    lines = _lines(caplog, "modeldepot.receive")
    assert lines[0] == "pulling http://127.0.0.1:9/m"
    assert lines[1].startswith("pull of http://127.0.0.1:9/m failed: ")
    assert "hunter2" not in caplog.text
