"""The packaged all-MiniLM-L6-v2: pulled offline, served for embeddings by its own engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import IntegrityError
from modeldepot.receive.catalogue import load_catalogue
from server.conftest import start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("minilm") / "depot"
    with Depot(Settings(home=home)) as depot:
        version = depot.intake.pull("minilm")
        assert version.info.format == "safetensors"
        assert version.info.architecture == "BertModel"
        assert version.info.license == "Apache-2.0"
        assert {"modules.json", "model.safetensors", "1_Pooling/config.json"} <= {
            f.path for f in version.files
        }
    proc, url = start_server(home)
    yield url
    proc.terminate()
    proc.wait(30)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_sentence_embeddings(minilm: str) -> None:
    client = openai.OpenAI(base_url=f"{minilm}/v1", api_key="local", max_retries=0)
    assert "minilm:latest" in {m.id for m in client.models.list()}
    texts = ["A man is eating food.", "A man is eating a piece of bread.",
             "The girl is carrying a baby."]  # fmt: skip
    reply = client.embeddings.create(model="minilm", input=texts)
    vectors = [d.embedding for d in sorted(reply.data, key=lambda d: d.index)]
    assert {len(v) for v in vectors} == {384}
    assert all(abs(_cosine(v, v) - 1) < 1e-4 for v in vectors)  # normalised
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2]) + 0.3
    assert reply.usage.prompt_tokens > 10


def test_sentence_model_does_not_chat(minilm: str) -> None:
    client = openai.OpenAI(base_url=f"{minilm}/v1", api_key="local", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="minilm", messages=[{"role": "user", "content": "x"}])


def test_tampered_folder_digest_is_refused(tmp_path: Path) -> None:
    entry = load_catalogue()["minilm"]
    text = (
        f'[minilm]\ntitle = "x"\npackage = "{entry.package}"\nfolder = "{entry.folder}"\n'
        f'sha256_file = "model.safetensors"\nsha256 = "{"2" * 64}"\ntags = ["latest"]\n'
    )
    with Depot(Settings(home=tmp_path / "d"), packaged=load_catalogue(text)) as depot:
        with pytest.raises(IntegrityError):
            depot.intake.pull("minilm")
        assert depot.names.versions() == []
