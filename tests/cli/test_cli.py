"""The `depot` command as a user runs it: output, --json, exit codes, error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from builders import write_gguf, write_hf_folder
from modeldepot.cli import app


@pytest.fixture
def depot_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DEPOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEPOT_DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


def test_import_list_show_json(depot_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_gguf(tmp_path / "tiny.gguf", arch="gemma3")
    result = depot_cli("import", str(path), "--name", "tiny:v1")
    assert result.exit_code == 0, result.output
    assert "stored tiny (v1)" in result.output
    listed = json.loads(depot_cli("list", "--json").output)
    assert len(listed) == 1
    entry = listed[0]
    assert (entry["name"], entry["tag"]) == ("tiny", "v1")
    assert entry["digest"].startswith("sha256:") and entry["size"] > 0
    assert {f["path"] for f in entry["files"]} == {"tiny.gguf", "chat_template.jinja"}
    assert all(f["digest"].startswith("sha256:") for f in entry["files"])
    shown = json.loads(depot_cli("show", "tiny:v1", "--json").output)
    assert shown["architecture"] == "gemma3" and shown["context_length"] == 256
    assert shown["license"] == "Apache-2.0" and shown["quantization"] == "F32"
    text = depot_cli("show", "tiny:v1").output
    assert "architecture    gemma3" in text and "licence" in text


def test_tag_rm_gc_du_search(depot_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    depot_cli("import", str(write_hf_folder(tmp_path / "hf")), "-n", "enc")
    assert depot_cli("tag", "enc", "enc:v1").exit_code == 0
    assert "enc:v1" in depot_cli("search", "llama").output
    assert depot_cli("rm", "enc:latest", "enc:v1").exit_code == 0
    gc = json.loads(depot_cli("gc", "--json").output)
    assert gc["removed_blobs"] == 7  # 5 files + config + manifest
    du = json.loads(depot_cli("du", "--json").output)
    assert du["blob_count"] == 0 and du["models"] == []


def test_check_exits_1_on_damage(depot_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    depot_cli("import", str(write_gguf(tmp_path / "m.gguf")), "-n", "m")
    assert depot_cli("check").exit_code == 0
    blob = next(p for p in (tmp_path / "home" / "blobs").iterdir() if p.stat().st_size > 1000)
    blob.chmod(0o644)
    blob.write_bytes(b"tampered" + blob.read_bytes()[8:])
    result = depot_cli("check", "m")
    assert result.exit_code == 1
    assert "corrupt: m:latest m.gguf" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("show", "nope"), 1, "no model named nope:latest"),
        (("show", "Nope"), 2, "lowercase"),
        (("import", "/no/such/file.gguf", "-n", "x"), 1, "no such file"),
        (("import", "{cut}", "-n", "x"), 1, "truncated"),
        (("import", "{junk}", "-n", "x"), 1, "not a model file"),
        (("import", "{cut}"), 2, "Missing option '--name'"),
        (("tag", "nope", "x"), 1, "no model named"),
        (("rm", "x@sha256:123"), 2, "sha256 digest"),
        (("pull", "llama-9000"), 1, "no packaged model named 'llama-9000'"),
        (("frobnicate",), 2, "No such command"),
    ],
)
def test_errors_are_messages_with_exit_codes(  # type: ignore[no-untyped-def]
    depot_cli, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    whole = write_gguf(tmp_path / "w.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[:-40])
    (tmp_path / "junk.bin").write_bytes(b"\x00junk" * 10)
    args = tuple(a.format(cut=tmp_path / "cut.gguf", junk=tmp_path / "junk.bin") for a in args)
    result = depot_cli(*args)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_pull_smollm2_and_show(depot_cli) -> None:  # type: ignore[no-untyped-def]
    result = depot_cli("pull", "smollm2")
    assert result.exit_code == 0, result.output
    shown = json.loads(depot_cli("show", "smollm2", "--json").output)
    assert shown["architecture"] == "llama"
    assert shown["parameters"] == 134_515_008
    assert shown["context_length"] == 8192
    assert shown["quantization"] == "Q4_1"
    assert shown["license"] == "Apache-2.0"
    assert shown["tags"] == ["135m-instruct-q4_1", "latest"]
    weights = next(f for f in shown["files"] if f["kind"] == "weights")
    assert weights["digest"] == (
        "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    )
    assert weights["size"] == 98_362_432
    again = depot_cli("pull", "smollm2", "--json")
    assert json.loads(again.output)["digest"] == shown["digest"]


def test_serve_refuses_other_hosts_without_keys(depot_cli) -> None:  # type: ignore[no-untyped-def]
    result = depot_cli("serve", "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "local use only" in result.output


def test_key_create_list_revoke(depot_cli) -> None:  # type: ignore[no-untyped-def]
    created = depot_cli("key", "create", "ci", "--models", "smollm2*", "--rpm", "10")
    assert created.exit_code == 0
    secret = created.stdout.strip()
    assert secret.startswith("md-") and len(secret) > 30
    listed = json.loads(depot_cli("key", "list", "--json").output)
    assert [(k["name"], k["models"], k["rpm"]) for k in listed] == [("ci", "smollm2*", 10)]
    assert secret not in depot_cli("key", "list").output
    assert depot_cli("key", "create", "ci").exit_code == 1  # the name is taken
    assert depot_cli("key", "revoke", "ci").exit_code == 0
    assert depot_cli("key", "revoke", "ci").exit_code == 1


def test_remote_and_alias_commands(depot_cli) -> None:  # type: ignore[no-untyped-def]
    added = depot_cli("remote", "add", "cloud", "--base-url", "https://api.example.com/v1",
                      "--model", "big-model", "--api-key-env", "CLOUD_KEY")  # fmt: skip
    assert added.exit_code == 0, added.output
    remotes = json.loads(depot_cli("remote", "list", "--json").output)
    assert remotes == [{"name": "cloud", "base_url": "https://api.example.com/v1",
                        "upstream_model": "big-model", "api_key_env": "CLOUD_KEY"}]  # fmt: skip
    assert depot_cli("alias", "set", "chat", "cloud", "--fallback", "smollm2").exit_code == 0
    aliases = json.loads(depot_cli("alias", "list", "--json").output)
    assert aliases == [{"name": "chat", "targets": ["cloud", "smollm2"]}]
    assert depot_cli("alias", "set", "cloud", "smollm2").exit_code == 1  # a remote's name
    assert (
        depot_cli("remote", "add", "x", "--base-url", "ftp://nope", "--model", "m").exit_code == 2
    )
    assert depot_cli("alias", "rm", "chat").exit_code == 0
    assert depot_cli("remote", "rm", "cloud").exit_code == 0
    assert depot_cli("remote", "rm", "cloud").exit_code == 1
    assert "no remote named 'cloud'" in depot_cli("remote", "rm", "cloud").output


def test_state_changing_commands_print_json(depot_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = write_gguf(tmp_path / "m.gguf")
    assert depot_cli("import", str(model), "-n", "tiny:v1").exit_code == 0
    tagged = json.loads(depot_cli("tag", "tiny:v1", "tiny:v2", "--json").output)
    assert tagged["reference"] == "tiny:v2" and tagged["status"] == "ok"
    made = json.loads(depot_cli("keygen", "--json").output)
    assert made["created"] is True
    signed = json.loads(depot_cli("sign", "tiny:v1", "--json").output)
    assert signed["reference"] == "tiny:v1" and signed["signature"].startswith("sha256:")
    verified = json.loads(depot_cli("verify", "tiny:v1", "--json").output)
    assert verified[0]["verified"] is True and verified[0]["signatures"]
    removed = json.loads(depot_cli("rm", "tiny:v2", "--json").output)
    assert removed[0]["removed"] == "tiny:v2"
