"""`depot finetune` end to end on the packaged SmolLM2: the adapter version, its lineage, data
set, derivation record, provenance and signature; the job record; and bad input refused with
nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from builders import write_gguf
from customise.conftest import KESTREL, depot_cli
from modeldepot.depot import Depot
from modeldepot.describe.bom import validate_bom

pytestmark = pytest.mark.slow


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _file(depot: Depot, name: str, path: str) -> bytes:
    version = depot.names.show(name)
    found = next(f for f in version.files if f.path == path)
    return depot.store.read_bytes(found.digest)


def test_adapter_is_a_version_with_lineage_and_data_set(tuned: dict[str, Any],
                                                        base_depot: Depot) -> None:  # fmt: skip
    adapter = base_depot.names.show("kestrel")
    base = base_depot.names.show("smollm2")
    assert tuned["version"]["digest"] == adapter.digest
    assert adapter.admitted and adapter.is_adapter
    assert adapter.adapter_of is not None
    assert (adapter.adapter_of.target, adapter.adapter_of.target_digest) == (
        "smollm2:latest",
        base.digest,
    )
    dataset = next(link for link in adapter.lineage if link.relation == "dataset")
    assert dataset.target_digest == _sha256(KESTREL)
    recorded = base_depot.datasets.get(_sha256(KESTREL))
    assert (recorded.examples, recorded.format, recorded.size) == (
        72,
        "chat",
        KESTREL.stat().st_size,
    )
    # the data set's bytes are kept by gc while it is recorded
    depot_cli(base_depot.settings.home, "gc")
    assert base_depot.store.read_bytes(recorded.digest) == KESTREL.read_bytes()
    listed = json.loads(depot_cli(base_depot.settings.home, "data", "list", "--json").stdout)
    assert any(d["digest"] == recorded.digest and d["examples"] == 72 for d in listed)
    paths = {f.path: f.kind for f in adapter.files}
    assert paths == {"adapter.gguf": "adapter", "peft/adapter_model.safetensors": "adapter",
                     "peft/adapter_config.json": "config", "derivation.json": "config",
                     "provenance.intoto.json": "doc"}  # fmt: skip
    assert adapter.info.details["general.type"] == "adapter"
    assert adapter.info.license == base.info.license
    config = json.loads(_file(base_depot, "kestrel", "peft/adapter_config.json"))
    assert config["base_model_name_or_path"] == "smollm2:latest"
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"}  # fmt: skip


def test_derivation_record_and_job(tuned: dict[str, Any], base_depot: Depot) -> None:
    record = json.loads(_file(base_depot, "kestrel", "derivation.json"))
    assert record["kind"] == "finetune"
    assert record["base"]["digest"] == base_depot.names.show("smollm2").digest
    assert record["dataset"]["digest"] == _sha256(KESTREL)
    assert record["parameters"]["rank"] == 16 and record["parameters"]["max_steps"] == 3
    assert {"torch", "transformers", "peft"} <= set(record["libraries"])
    training = record["training"]
    assert training["steps"] == 3 and len(record["losses"]) == 3
    assert training["val_examples"] == 7 and training["train_examples"] == 65
    assert isinstance(training["val_loss"], float) and isinstance(training["train_loss"], float)
    # only the assistant turns are trained on: a few dozen tokens per example, not the prompt
    assert 65 * 8 < training["trained_tokens"] < 65 * 30
    job = base_depot.jobs.get(tuned["job"]["id"])
    assert job.status == "succeeded" and job.result == "kestrel:latest"
    assert job.progress["step"] == job.progress["total"] == 3
    assert len(job.progress["losses"]) == 3
    listed = depot_cli(base_depot.settings.home, "jobs", "--json")
    assert any(j["id"] == job.id and j["status"] == "succeeded" for j in json.loads(listed.stdout))


def test_provenance_names_files_and_materials(tuned: dict[str, Any], base_depot: Depot) -> None:
    adapter = base_depot.names.show("kestrel")
    statement = json.loads(_file(base_depot, "kestrel", "provenance.intoto.json"))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {s["name"]: "sha256:" + s["digest"]["sha256"] for s in statement["subject"]}
    files = {f.path: f.digest for f in adapter.files}
    assert subjects == {k: v for k, v in files.items() if k != "provenance.intoto.json"}
    materials = {
        m["name"]: "sha256:" + m["digest"]["sha256"]
        for m in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    }
    assert materials["base"] == base_depot.names.show("smollm2").digest
    assert materials["dataset/kestrel.jsonl"] == _sha256(KESTREL)
    card = base_depot.documents.card(adapter)
    assert "## How this version was made" in card and "provenance.intoto.json" in card
    assert "base_model_relation: adapter" in card
    bom = base_depot.documents.bom(adapter)
    validate_bom(bom)
    props = {p["name"]: p["value"] for p in bom["components"][0]["properties"]}
    assert props["modeldepot:provenance"].startswith("provenance.intoto.json@sha256:")


def test_adapter_is_signed_with_the_depot_key(tuned: dict[str, Any], base_depot: Depot) -> None:
    adapter = base_depot.names.show("kestrel")
    lines = base_depot.signatures.verify(adapter)
    assert len(lines) == 1 and lines[0].startswith("key signature by") and "verified" in lines[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
            '"content": "hello"}]}\n{"messages": [}\n',
            "line 2: not valid JSON",
        ),
        (
            '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
            '"content": "hello"}]}\n' * 3,
            "3 examples; fine-tuning needs at least 8",
        ),
        ("", "no examples"),
        (
            '{"text": "a"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
            "line 2: nested deeper than 64 levels",
        ),
        (
            '{"prompt": "a", "completion": "b"}\n'
            '{"messages": [{"role": "robot", "content": "x"}]}\n',
            "line 2",
        ),
    ],
)
def test_bad_data_is_refused_before_anything_is_written(
    base_home: Path, tmp_path: Path, content: str, message: str
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(content)
    before = depot_cli(base_home, "jobs", "--json").stdout
    done = depot_cli(base_home, "finetune", "smollm2", "--data", str(data), "--name", "bad",
                     check=False)  # fmt: skip
    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert depot_cli(base_home, "jobs", "--json").stdout == before
    assert depot_cli(base_home, "show", "bad", check=False).returncode != 0


def test_base_that_cannot_be_fine_tuned_is_refused(tuned: dict[str, Any], base_home: Path,
                                                   tmp_path: Path) -> None:  # fmt: skip
    # an adapter is not a base
    done = depot_cli(base_home, "finetune", "kestrel", "--data", str(KESTREL), "--name", "x",
                     check=False)  # fmt: skip
    assert done.returncode == 2 and "is an adapter" in done.stderr
    # an embedding model is not generative
    depot_cli(base_home, "pull", "minilm")
    done = depot_cli(base_home, "finetune", "minilm", "--data", str(KESTREL), "--name", "x",
                     check=False)  # fmt: skip
    assert done.returncode == 2 and "not a generative model" in done.stderr
    # an architecture transformers' GGUF loader cannot read
    depot_cli(base_home, "import", str(write_gguf(tmp_path / "rwkv.gguf", arch="rwkv6")),
              "--name", "rwkv")  # fmt: skip
    done = depot_cli(base_home, "finetune", "rwkv", "--data", str(KESTREL), "--name", "x",
                     check=False)  # fmt: skip
    assert done.returncode == 2 and "cannot load rwkv6 GGUF models" in done.stderr
    done = depot_cli(base_home, "finetune", "nosuchmodel", "--data", str(KESTREL), "--name", "x",
                     check=False)  # fmt: skip
    assert done.returncode != 0 and "nosuchmodel" in done.stderr
    assert depot_cli(base_home, "show", "x", check=False).returncode != 0
