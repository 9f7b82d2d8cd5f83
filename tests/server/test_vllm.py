"""vLLM behind `depot serve`, on this CPU: the packaged SmolLM2 converted to a Hugging Face
folder (`depot convert --to hf`), served by vLLM (started once for the module, eager) to the
openai client, chat and stream, in the precision stored (its answer and log-probabilities
those of transformers in float32); a PEFT adapter of it served by vLLM's LoRA support on the
same engine; a quarantined Hugging Face model never started; a client that
leaves stopping the work; `depot stop` leaving none of vLLM's processes behind.

vLLM comes from `make vllm` (`vllm-python` beside the interpreter) or DEPOT_VLLM_PYTHON; CI
installs it and must run these tests. A vLLM start takes minutes on a busy machine: the
timeouts are generous, and nothing here measures time."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from builders import write_hf_folder
from customise.conftest import depot_cli
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.runtime import StoredFiles
from modeldepot.runtime.vllm import VLLM_PYTHON
from servers import start_server

pytestmark = pytest.mark.slow
transformers = pytest.importorskip("transformers")  # depot convert --to hf
openai = pytest.importorskip("openai")

QUESTION = [{"role": "user", "content": "Name three colours."}]
TOKENS = 16
START = 900.0  # seconds a first request may wait for vLLM to start


def _vllm_python() -> Path:
    given = os.environ.get("DEPOT_VLLM_PYTHON")
    found = Path(given) if given else Path(sys.executable).parent / VLLM_PYTHON
    if found.is_file():
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the vLLM tests: `make vllm` installs vLLM")
    pytest.skip("vLLM is not installed (make vllm)")


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("vllm") / "depot"
    depot_cli(home, "pull", "smollm2")
    depot_cli(home, "convert", "smollm2", "--to", "hf", "--name", "smollm2-hf")
    return home


@pytest.fixture(scope="module")
def hf_folder(hf_home: Path) -> Path:
    """The converted model's files, as the engine loads them."""
    with Depot(Settings(home=hf_home, user="tests")) as depot:
        return StoredFiles(depot.store, hf_home).folder(depot.names.show("smollm2-hf"))


@pytest.fixture(scope="module")
def reference(hf_folder: Path) -> dict[str, Any]:
    """transformers' greedy answer to QUESTION in float32, with each token's log-probability."""
    import torch

    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_folder, dtype=torch.float32)
    prompt = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)  # fmt: skip
    out = model.generate(**prompt, max_new_tokens=TOKENS, do_sample=False, output_scores=True,
                         return_dict_in_generate=True)  # fmt: skip
    new = out.sequences[0][prompt["input_ids"].shape[1] :]
    logprobs = [float(torch.log_softmax(s[0].float(), -1)[t])
                for s, t in zip(out.scores, new, strict=True)]  # fmt: skip
    return {"text": tokenizer.decode(new, skip_special_tokens=True), "logprobs": logprobs}


def _lora(hf_folder: Path, out: Path) -> Path:
    """A PEFT LoRA of the converted model (r=8 on q and v, random A and B: it changes the
    answers), saved as PEFT saves one."""
    import torch

    peft = pytest.importorskip("peft")
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_folder, dtype=torch.float32)
    torch.manual_seed(0)
    config = peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                             init_lora_weights=False)  # fmt: skip
    peft.get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def served(hf_home: Path, hf_folder: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:  # fmt: skip
    """`depot serve` over the converted model, a PEFT adapter of it and a quarantined Hugging
    Face model, all stored before vLLM starts (an engine holds its base's adapters)."""
    python = _vllm_python()
    lora = _lora(hf_folder, tmp_path_factory.mktemp("lora") / "peft")
    depot_cli(hf_home, "import", str(lora), "--name", "smollm2-hf-lora", "--base", "smollm2-hf",
              "--relation", "adapter")  # fmt: skip
    with Depot(Settings(home=hf_home, user="tests")) as depot:
        held = write_hf_folder(tmp_path_factory.mktemp("held") / "hf", seed=5)
        depot.quarantine.hold(depot.intake.import_path(held, "held"))
    proc, url = start_server(hf_home, DEPOT_VLLM_PYTHON=str(python), DEPOT_PARALLEL="4",
                             DEPOT_CONTEXT="1024", DEPOT_THREADS="2")  # fmt: skip
    yield url
    proc.terminate()
    proc.wait(120)


def _client(url: str) -> Any:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="local", timeout=START, max_retries=0)


def _ps(home: Path) -> list[dict[str, Any]]:
    return list(json.loads(depot_cli(home, "ps", "--json").stdout))


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _engine_metrics(pid: int) -> dict[str, float]:
    """vLLM's own Prometheus counters, summed over labels, from its loopback port."""
    argv = _cmdline(pid)
    port = argv[argv.index("--port") + 1]
    found: dict[str, float] = {}
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text.splitlines():
        if line.startswith("vllm:"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_convert_to_hf_makes_a_folder_with_lineage(hf_home: Path) -> None:
    shown = json.loads(depot_cli(hf_home, "show", "smollm2-hf", "--json").stdout)
    source = json.loads(depot_cli(hf_home, "show", "smollm2", "--json").stdout)
    assert shown["format"] == "safetensors" and shown["quantization"] == "F32"
    assert shown["architecture"] == "LlamaForCausalLM" and shown["license"] == "Apache-2.0"
    assert shown["parameters"] == source["parameters"] and shown["chat_template"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {
        f["path"] for f in shown["files"]}  # fmt: skip
    assert [(link["relation"], link["target_digest"]) for link in shown["lineage"]] == [
        ("converted", source["digest"])]  # fmt: skip
    # a folder is not converted to a folder again; a folder holds no GGUF quantisation
    again = depot_cli(hf_home, "convert", "smollm2-hf", "--to", "hf", check=False)
    assert again.returncode == 2 and "not a single GGUF file" in again.stderr
    q8 = depot_cli(hf_home, "convert", "smollm2", "--to", "hf", "--type", "q8_0", check=False)
    assert q8.returncode == 2 and "--type 'q8_0'" in q8.stderr


def test_chat_and_stream_through_vllm(served: str, hf_home: Path,
                                      reference: dict[str, Any]) -> None:  # fmt: skip
    client = _client(served)
    listed = {m.id: getattr(m, "parent", None) for m in client.models.list().data}
    assert listed["smollm2-hf:latest"] is None and "held:latest" not in listed
    assert listed["smollm2-hf-lora:latest"] == "smollm2-hf"  # its base, as it was named

    whole = client.chat.completions.create(
        model="smollm2-hf", messages=QUESTION, max_tokens=TOKENS, temperature=0, logprobs=True
    )
    assert whole.model == "smollm2-hf:latest"
    assert whole.choices[0].message.content == reference["text"]
    # float32 as stored: the log-probabilities are transformers' own (half precision would
    # be off by hundredths)
    served_logprobs = [t.logprob for t in whole.choices[0].logprobs.content]
    assert len(served_logprobs) == len(reference["logprobs"])
    pairs = zip(served_logprobs, reference["logprobs"], strict=True)
    assert max(abs(a - b) for a, b in pairs) < 2e-3

    stream = client.chat.completions.create(model="smollm2-hf", messages=QUESTION,
                                            max_tokens=TOKENS, temperature=0, stream=True,
                                            stream_options={"include_usage": True})  # fmt: skip
    chunks = list(stream)
    assert {c.model for c in chunks} == {"smollm2-hf:latest"}
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == reference["text"]
    assert chunks[-1].usage.completion_tokens == len(reference["logprobs"])

    # `n` choices decoded together, every choice's tokens counted
    many = client.chat.completions.create(model="smollm2-hf", messages=QUESTION, max_tokens=4,
                                          n=2, seed=1, extra_body={"ignore_eos": True})  # fmt: skip
    assert len(many.choices) == 2 and many.usage.completion_tokens == 8

    (engine,) = _ps(hf_home)
    assert engine["engine"] == "vllm" and engine["name"] == "smollm2-hf:latest"
    assert engine["resident_memory"] > 0
    metrics = httpx.get(f"{served}/metrics", timeout=30).text.splitlines()
    assert any(line.startswith("depot_requests_total{") and 'model="smollm2-hf:latest"' in line
               for line in metrics)  # fmt: skip


def test_adapter_is_served_by_vllm_lora(served: str, hf_home: Path) -> None:
    client = _client(served)

    def logprobs(model: str) -> tuple[str, list[float]]:
        answer = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=6,
                                                temperature=0, logprobs=True)  # fmt: skip
        return answer.model, [t.logprob for t in answer.choices[0].logprobs.content]

    name, tuned = logprobs("smollm2-hf-lora")
    assert name == "smollm2-hf-lora:latest"
    assert logprobs("smollm2-hf")[1] != tuned  # the adapter changes the model
    assert logprobs("smollm2-hf-lora")[1] == tuned  # and only for its own requests
    # one engine holds the base and its adapter, as a LoRA module named by digest
    (engine,) = _ps(hf_home)
    argv = _cmdline(engine["pid"])
    with Depot(Settings(home=hf_home, user="tests")) as depot:
        digest = depot.names.show("smollm2-hf-lora").digest
    assert "--enable-lora" in argv
    module = json.loads(argv[argv.index("--lora-modules") + 1])
    assert module["name"] == digest and Path(module["path"], "adapter_config.json").is_file()


def test_quarantined_hf_model_is_never_started(served: str, hf_home: Path) -> None:
    chat = httpx.post(f"{served}/v1/chat/completions", timeout=60, json={
        "model": "held", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert chat.status_code == 403 and chat.json()["error"]["code"] == "model_quarantined"
    with Depot(Settings(home=hf_home, user="tests")) as depot:
        held = depot.names.show("held").digest.removeprefix("sha256:")[:16]
    assert all(e["name"] != "held:latest" for e in _ps(hf_home))
    assert not list((hf_home / "logs").glob(f"{held}-*"))  # no engine ever ran for it


def test_a_client_that_leaves_stops_the_work(served: str, hf_home: Path) -> None:
    client = _client(served)
    client.chat.completions.create(model="smollm2-hf", messages=QUESTION, max_tokens=1)
    (engine,) = _ps(hf_home)
    before = _engine_metrics(engine["pid"])
    finished = sum(v for k, v in before.items() if k.startswith("vllm:request_success_total"))
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{served}/v1/chat/completions", timeout=5, json={
            "model": "smollm2-hf", "messages": QUESTION, "max_tokens": 900,
            "ignore_eos": True})  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = _engine_metrics(engine["pid"])
        running = sum(v for k, v in now.items() if k.startswith("vllm:num_requests_running"))
        if running == 0:
            break
        time.sleep(0.5)
    # aborted, never finished: 900 tokens would have ended it with `length`
    assert sum(v for k, v in now.items() if k.startswith("vllm:request_success_total")) == (
        finished
    )
    generated = "vllm:generation_tokens_total"
    assert sum(v for k, v in now.items() if k.startswith(generated)) < sum(
        v for k, v in before.items() if k.startswith(generated)) + 900  # fmt: skip


def test_stop_leaves_no_vllm_process_behind(served: str, hf_home: Path) -> None:
    _client(served).chat.completions.create(model="smollm2-hf", messages=QUESTION, max_tokens=1)
    (engine,) = _ps(hf_home)
    stopped = httpx.post(f"{served}/depot/api/stop", json={"model": "smollm2-hf"}, timeout=300)
    assert [e["pid"] for e in stopped.json()] == [engine["pid"]]
    # vLLM's engine core and worker run in the session its server leads: all gone by the time
    # the stop is answered (their memory is free for the next model)
    left = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == engine["pid"] and fields[0] != "Z":
            left.append(f"{entry.name} {stat[: stat.rfind(')') + 1]}")
    assert left == []
    assert _ps(hf_home) == []
