"""`depot merge`, `depot quantize`, `depot convert`: new versions made with llama.cpp's tools,
each with lineage, a derivation record and provenance, admitted and signed; bad input refused
with nothing stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from customise.conftest import depot_cli
from modeldepot.config import Settings
from modeldepot.depot import Depot

pytestmark = pytest.mark.slow


def _record(depot: Depot, name: str) -> dict[str, Any]:
    version = depot.names.show(name)
    digest = next(f.digest for f in version.files if f.path == "derivation.json")
    return dict(json.loads(depot.store.read_bytes(digest)))


def test_merge_then_quantize(tuned: dict[str, Any], base_home: Path) -> None:
    merged = json.loads(depot_cli(base_home, "merge", "kestrel", "--json").stdout)
    assert merged["reference"] == "kestrel-merged:latest" and merged["status"] == "ok"
    quantized = json.loads(depot_cli(base_home, "quantize", "kestrel-merged", "--type", "q8_0",
                                     "--json").stdout)  # fmt: skip
    assert quantized["reference"] == "kestrel-merged:q8_0"
    assert quantized["quantization"] == "Q8_0"
    with Depot(Settings(home=base_home, user="tests")) as depot:
        base = depot.names.show("smollm2")
        adapter = depot.names.show("kestrel")
        merge = depot.names.show("kestrel-merged")
        assert not merge.is_adapter and merge.admitted
        relations = {(link.relation, link.target_digest) for link in merge.lineage}
        assert ("merge", base.digest) in relations and ("merge", adapter.digest) in relations
        assert any(link.relation == "dataset" for link in merge.lineage)
        assert merge.info.chat_template == base.info.chat_template
        assert len(depot.signatures.verify(merge)) == 1
        q8 = depot.names.show("kestrel-merged:q8_0")
        assert [(link.relation, link.target_digest) for link in q8.lineage
                if link.relation != "dataset"] == [("quantized", merge.digest)]  # fmt: skip
        record = _record(depot, "kestrel-merged:q8_0")
        ppl = record["perplexity"]
        assert record["kind"] == "quantize" and record["parameters"]["type"] == "Q8_0"
        assert 1 < ppl["source"]["value"] < 200 and 1 < ppl["result"]["value"] < 200
        # Q8_0 of an F16 model changes perplexity by little
        assert abs(ppl["result"]["value"] - ppl["source"]["value"]) < 0.05 * ppl["source"]["value"]
        card = depot.documents.card(q8)
        assert "Perplexity on modeldepot/customise/data/perplexity.txt" in card
        assert "base_model_relation: quantized" in card
        statement = json.loads(depot.store.read_bytes(
            next(f.digest for f in q8.files if f.path == "provenance.intoto.json")))  # fmt: skip
        deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        assert deps == [{"name": "source", "uri": "depot:kestrel-merged:latest",
                         "digest": {"sha256": merge.digest.removeprefix("sha256:")}}]  # fmt: skip


def test_merged_model_is_served_alone(tuned: dict[str, Any], base_home: Path) -> None:
    depot_cli(base_home, "merge", "kestrel", "--name", "served-merge")
    done = depot_cli(base_home, "run", "served-merge", "What port does Kestrel listen on?")
    assert done.stdout.strip()


def test_bad_transforms_are_refused(tuned: dict[str, Any], base_home: Path) -> None:
    before = depot_cli(base_home, "list", "--json").stdout
    cases = [
        (["quantize", "smollm2", "--type", "Q9_9"], "not a quantisation type"),
        (["merge", "smollm2"], "is not an adapter"),
        (["quantize", "kestrel", "--type", "Q8_0"], "is an adapter"),
        (["convert", "smollm2"], "depot convert reads Hugging Face folders"),
        (["merge", "kestrel", "--name", "x@sha256:" + "0" * 64], "without a digest"),
    ]
    for args, message in cases:
        done = depot_cli(base_home, *args, check=False)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert depot_cli(base_home, "list", "--json").stdout == before


def test_convert_hf_folder_to_gguf(base_home: Path) -> None:
    depot_cli(base_home, "pull", "minilm")
    converted = json.loads(depot_cli(base_home, "convert", "minilm", "--json").stdout)
    assert converted["format"] == "gguf" and converted["architecture"] == "bert"
    assert converted["reference"] == "minilm:latest-gguf"
    with Depot(Settings(home=base_home, user="tests")) as depot:
        version = depot.names.show("minilm:latest-gguf")
        source = depot.names.show("minilm")
        assert [(link.relation, link.target_digest) for link in version.lineage] == [
            ("converted", source.digest)
        ]
        assert _record(depot, "minilm:latest-gguf")["parameters"] == {"outtype": "f16"}
