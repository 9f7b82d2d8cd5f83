"""A manifest is checked as it is parsed, wherever it comes from: digests, sizes, and a safe,
distinct file path for every layer; the folder of links built from a version checks its paths
again before writing anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from modeldepot.errors import FormatError, UnsafePath
from modeldepot.store import LocalBlobStore, Manifest, materialize

DIGEST = "sha256:" + hashlib.sha256(b"x").hexdigest()


def _manifest(*paths: str | None, digest: str = DIGEST, size: int = 1) -> bytes:
    layers = [{"mediaType": "application/vnd.cncf.model.doc.v1.raw", "digest": digest,
               "size": size,
               "annotations": {} if p is None else {"org.cncf.model.filepath": p}}
              for p in paths]  # fmt: skip
    config = {"mediaType": "application/vnd.cncf.model.config.v1+json", "digest": DIGEST,
              "size": 1}  # fmt: skip
    return json.dumps({"schemaVersion": 2, "config": config, "layers": layers}).encode()


def test_a_manifest_with_plain_paths_parses() -> None:
    manifest = Manifest.from_bytes(_manifest("model.gguf", "tokenizer/vocab.json", "LICENSE"))
    assert [layer.filepath for layer in manifest.layers] == [
        "model.gguf",
        "tokenizer/vocab.json",
        "LICENSE",
    ]


@pytest.mark.parametrize(
    ("paths", "reason"),
    [
        (("ok.txt", "../../escaped.txt"), "climbs out"),
        (("/tmp/abs.txt",), "absolute"),
        (("a\x00b",), "control character"),
        ((None,), "no org.cncf.model.filepath"),
        (("a.txt", "a.txt"), "collides"),
        (("a", "a/b"), "collides"),
        (("a/b/c", "a/b"), "collides"),
    ],
)
def test_a_manifest_whose_paths_could_escape_or_collide_is_refused(
    paths: tuple[str | None, ...], reason: str
) -> None:
    with pytest.raises(UnsafePath, match=reason):
        Manifest.from_bytes(_manifest(*paths))


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"not json", "Invalid JSON"),
        (b"[]", "object"),
        (_manifest("a", digest="sha256:../../etc"), "layers.0.digest"),
        (_manifest("a", size=-1), "layers.0.size"),
        (json.dumps({"layers": []}).encode(), "config"),
    ],
)
def test_a_malformed_manifest_is_a_format_error_not_a_traceback(data: bytes, where: str) -> None:
    with pytest.raises(FormatError, match=where) as refused:
        Manifest.from_bytes(data)
    assert str(refused.value).startswith("not a valid model manifest")


def test_the_folder_of_links_refuses_a_path_that_leaves_it(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "er" / "home"
    store = LocalBlobStore(home)
    blob = store.put_bytes(b"x")
    for bad in ("../../../outside.txt", str(tmp_path / "abs.txt")):
        with pytest.raises(UnsafePath):
            materialize(store, DIGEST, [("fine.txt", blob.digest), (bad, blob.digest)], home)
    assert not (home / "run").exists() or list((home / "run").iterdir()) == []
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert all(str(p).startswith("deep/er/home/") for p in written), written
    folder = materialize(store, DIGEST, [("a/fine.txt", blob.digest)], home)
    assert (folder / "a" / "fine.txt").read_bytes() == b"x"
