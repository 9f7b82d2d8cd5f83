"""The sentence-embedding engine: a sentence-transformers model (such as the packaged
all-MiniLM-L6-v2) behind an OpenAI-style `/v1/embeddings`, one process per model:

    python -m modeldepot.runtime.sentence --model FOLDER --port N [--threads N]

FOLDER is the model's files laid out under their own names (the depot links them to the
stored blobs). Nothing is fetched: the model loads from that folder, and the runner starts
this process with the Hugging Face libraries set offline.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import TYPE_CHECKING, Any

from modeldepot.config import Settings
from modeldepot.runtime.engine import Capability, EngineSpec, Launch, ModelFiles
from modeldepot.runtime.engine_http import JSONHandler, serve

if TYPE_CHECKING:
    from modeldepot.registry import ModelVersion

__all__ = ["SentenceEngine", "is_sentence_model", "main"]


def is_sentence_model(version: ModelVersion) -> bool:
    """A sentence-transformers folder: served for embeddings by this engine."""
    return version.info.format != "gguf" and any(
        f.path in ("modules.json", "config_sentence_transformers.json") for f in version.files
    )


class SentenceEngine:
    """The plugin that runs this program for sentence-transformers folders."""

    name = "sentence"
    native_n = False

    def capabilities(self, version: ModelVersion) -> frozenset[Capability]:
        return frozenset({Capability.EMBEDDINGS}) if is_sentence_model(version) else frozenset()

    def installed(self, settings: Settings) -> bool:
        return True  # part of the depot's own install

    def native_tools(self, version: ModelVersion) -> bool:
        return False

    def spec(
        self,
        version: ModelVersion,
        capability: Capability,
        files: ModelFiles,
        settings: Settings,
        adapters: tuple[ModelVersion, ...] = (),
    ) -> EngineSpec:
        del adapters  # never asked: this engine is not capable of ADAPTERS
        weights = sum(f.size for f in version.files if f.kind == "weights")
        memory = 2 * weights + 400 * 1024 * 1024  # the weights, torch's own overhead
        return EngineSpec(
            name=str(version.reference),
            digest=version.digest,
            engine=self.name,
            kind="sentence",
            weights=files.folder(version),
            context=version.info.context_length or 512,
            parallel=1,
            threads=settings.engine_threads,
            memory=memory,
            device_memory=(("cpu", memory),),
        )

    def launch(self, spec: EngineSpec, port: int, settings: Settings) -> Launch:
        return Launch(
            [
                sys.executable, "-m", "modeldepot.runtime.sentence",
                "--model", str(spec.weights),
                "--name", spec.name,
                "--port", str(port),
                "--threads", str(spec.threads),
            ],
            {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )  # fmt: skip


def _handler(model: Any, name: str) -> type[JSONHandler]:
    lock = threading.Lock()

    class Handler(JSONHandler):
        def do_POST(self) -> None:
            try:
                texts = self.read_json()["input"]
                texts = [texts] if isinstance(texts, str) else list(texts)
                if not texts or not all(isinstance(t, str) for t in texts):
                    raise ValueError("`input` must be a string or a list of strings")
            except (ValueError, KeyError, TypeError) as exc:
                error = {"message": str(exc), "type": "invalid_request_error", "code": None}
                self.reply(400, {"error": error})
                return
            with lock:
                vectors = model.encode(texts, convert_to_numpy=True)
                tokens = sum(len(ids) for ids in model.tokenizer(texts)["input_ids"])
            self.reply(200, {
                "object": "list",
                "model": name,
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })  # fmt: skip

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="modeldepot sentence-embedding engine")
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", default="model")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu", local_files_only=True)
    serve(_handler(model, args.name), args.port)


if __name__ == "__main__":
    main()
