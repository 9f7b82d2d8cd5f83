"""A model whose GGUF has no chat template (the packaged Gemma 3 270M base model) is served
with its architecture's template, and a repeated system prompt comes from the prompt cache."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from server.conftest import start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("gemma") / "depot"
    with Depot(Settings(home=home)) as depot:
        assert depot.intake.pull("gemma3").info.chat_template is None
    proc, url = start_server(home, DEPOT_CONTEXT="2048", DEPOT_PARALLEL="2")
    yield url
    proc.terminate()
    proc.wait(30)


def test_template_less_model_gets_its_architectures_template(gemma: str) -> None:
    client = openai.OpenAI(base_url=f"{gemma}/v1", api_key="local", max_retries=0)
    system = " ".join(f"Rule {i}: answer briefly." for i in range(40))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Hello?"}]
    first = client.chat.completions.create(model="gemma3", messages=messages, max_tokens=4)  # type: ignore[arg-type]
    assert first.usage is not None
    assert first.usage.prompt_tokens > 200  # the whole conversation, not the template's name
    messages[-1]["content"] = "Goodbye?"
    second = client.chat.completions.create(model="gemma3", messages=messages, max_tokens=4)  # type: ignore[arg-type]
    details = second.usage.prompt_tokens_details  # type: ignore[union-attr]
    assert details is not None and details.cached_tokens > 200  # the system prompt was cached
