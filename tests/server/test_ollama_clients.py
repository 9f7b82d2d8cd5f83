"""The clients themselves, unmodified, against a running `depot serve` as their Ollama: the
official `ollama` library (list, show, chat streamed and not, generate, embed, pull, copy,
delete, create, ps) and LangChain's `ChatOllama`, with the packaged SmolLM2 and MiniLM. Keys
go as the clients send them (`OLLAMA_API_KEY`, headers); a quarantined or out-of-scope model is
`ollama.ResponseError` 403. One server for the module."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from servers import start_server

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "Say hello."}]
SHORT = {"num_predict": 6, "temperature": 0, "seed": 1}


@pytest.fixture(scope="module")
def depot_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("ollama") / "depot"
    with Depot(Settings(home=home, user="tests")) as depot:
        depot.intake.pull("smollm2")
        depot.intake.pull("minilm")
        held = depot.intake.import_path(write_gguf(home.parent / "held.gguf"), "held")
        depot.quarantine.hold(held, reason="held for the test")
        keys = {"admin": depot.keys.create("admin", admin=True)[1],
                "scoped": depot.keys.create("scoped", models="minilm*")[1]}  # fmt: skip
    proc, url = start_server(home, DEPOT_PARALLEL="2", DEPOT_CONTEXT="1024", DEPOT_THREADS="2")
    yield url, keys
    proc.terminate()
    proc.wait(30)


@pytest.fixture
def client(depot_url: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> ollama.Client:
    url, keys = depot_url
    monkeypatch.setenv("OLLAMA_API_KEY", keys["admin"])  # as ollama-python sends a key
    return ollama.Client(host=url)


def test_list_show_and_ps(client: ollama.Client) -> None:
    listed = {m.model: m for m in client.list().models}
    assert {"smollm2:latest", "minilm:latest"} <= set(listed) and "held:latest" not in listed
    assert listed["smollm2:latest"].details.family == "llama"
    shown = client.show("smollm2")
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.context_length"] == 8192
    assert shown.details.quantization_level == "Q4_1"
    assert "<|im_start|>" in (shown.template or "") and "completion" in (shown.capabilities or [])
    client.generate(model="smollm2", prompt="")  # loads it
    assert "smollm2:latest" in [m.model for m in client.ps().models]


def test_chat_and_generate(client: ollama.Client) -> None:
    whole = client.chat(model="smollm2", messages=HI, options=SHORT)
    assert whole.message.role == "assistant" and whole.message.content
    assert whole.done and whole.eval_count and whole.eval_count <= 6
    assert whole.prompt_eval_count and whole.total_duration and whole.eval_duration
    parts = list(client.chat(model="smollm2", messages=HI, options=SHORT, stream=True))
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length")
    assert "".join(p.message.content for p in parts)
    generated = client.generate(model="smollm2", prompt="The sky is", options=SHORT)
    assert generated.response and generated.done


def test_embed_with_minilm(client: ollama.Client) -> None:
    embedded = client.embed(model="minilm", input=["a cat", "a kitten", "tax law"])
    vectors = embedded.embeddings
    assert len(vectors) == 3 and len(vectors[0]) == 384
    assert sum(x * x for x in vectors[0]) == pytest.approx(1.0, abs=1e-4)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    with pytest.raises(ollama.ResponseError) as refused:
        client.chat(model="minilm", messages=HI)
    assert refused.value.status_code == 400


def test_pull_copy_create_delete(client: ollama.Client) -> None:
    progress = list(client.pull("smollm2", stream=True))
    assert progress[-1].status == "success"
    with pytest.raises(ollama.ResponseError) as unknown:
        client.pull("no-such-model")
    assert unknown.value.status_code == 404
    assert client.copy("smollm2", "smol-copy:v1").status == "success"
    made = client.create(model="pirate", from_="smol-copy:v1",
                         system="You are a pirate. Always say Arr.",
                         parameters={"temperature": 0, "num_predict": 8})  # fmt: skip
    assert made.status == "success"
    shown = client.show("pirate")
    assert shown.details.parent_model == "smol-copy:v1"
    assert "SYSTEM" in (shown.modelfile or "")
    answer = client.chat(model="pirate", messages=HI)
    assert answer.message.content and (answer.eval_count or 0) <= 8
    for name in ("pirate", "smol-copy:v1"):
        assert client.delete(name).status == "success"
    assert not {"pirate:latest", "smol-copy:v1"} & {m.model for m in client.list().models}
    with pytest.raises(ollama.ResponseError) as gone:
        client.delete("pirate")
    assert gone.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as push:
        client.push("smollm2")
    assert push.value.status_code == 501


def test_quarantined_and_out_of_scope_are_403(
    client: ollama.Client, depot_url: tuple[str, dict[str, str]]
) -> None:
    url, keys = depot_url
    for call in (lambda c: c.chat(model="held", messages=HI), lambda c: c.show("held")):
        with pytest.raises(ollama.ResponseError) as refused:
            call(client)
        assert refused.value.status_code == 403
    scoped = ollama.Client(host=url, headers={"Authorization": f"Bearer {keys['scoped']}"})
    with pytest.raises(ollama.ResponseError) as outside:
        scoped.chat(model="smollm2", messages=HI)
    assert outside.value.status_code == 403
    assert {m.model for m in scoped.list().models} == {"minilm:latest", "minilm:l6-v2"}
    with pytest.raises(ollama.ResponseError) as nobody:
        ollama.Client(host=url, headers={"Authorization": "Bearer md-wrong"}).list()
    assert nobody.value.status_code == 401


def test_langchain_chat_ollama(depot_url: tuple[str, dict[str, str]]) -> None:
    from langchain_ollama import ChatOllama

    url, keys = depot_url
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    llm = ChatOllama(base_url=url, model="smollm2", num_predict=6, temperature=0,
                     validate_model_on_init=True, client_kwargs={"headers": headers})  # fmt: skip
    message = llm.invoke("Say hello.")
    assert isinstance(message.content, str) and message.content
    assert message.usage_metadata and message.usage_metadata["output_tokens"] <= 6
    chunks = list(llm.stream("Count to three."))
    assert "".join(str(c.content) for c in chunks)
