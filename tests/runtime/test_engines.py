"""The engine seam, driven through a fake engine (a real process speaking HTTP, standing in for
llama.cpp): what a version can do is answered in one place, the pool starts, reuses, unloads and
restarts engines through the plugin's launch, and the server routes to whatever engine the
capabilities name."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from builders import write_gguf, write_onnx
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry import LineageLink, ModelVersion
from modeldepot.runtime import (
    Adapter,
    Capability,
    EnginePool,
    EngineProcess,
    Engines,
    EngineSpec,
    Launch,
    ModelFiles,
    ModelUnavailable,
    StoredFiles,
)
from modeldepot.runtime.llama import LlamaServer
from modeldepot.runtime.process import free_port
from modeldepot.runtime.scorer import ScoringEngine
from modeldepot.runtime.sentence import SentenceEngine
from modeldepot.server import create_app
from modeldepot.server.hosts import in_process_transport

FAKE = Path(__file__).parent.parent / "fake_engine.py"
MIB = 1024 * 1024


class FakeEngine:
    """Serves chat and completions for ONNX files (which no built-in engine runs)."""

    name = "fake"
    native_n = False

    def capabilities(self, version: ModelVersion) -> frozenset[Capability]:
        if version.info.format != "onnx":
            return frozenset()
        return frozenset({Capability.CHAT, Capability.COMPLETION})

    def native_tools(self, version: ModelVersion) -> bool:
        return False

    def spec(self, version: ModelVersion, capability: Capability, files: ModelFiles,
             settings: Settings, adapters: tuple[Adapter, ...] = ()) -> EngineSpec:  # fmt: skip
        return EngineSpec(
            name=str(version.reference), digest=version.digest, engine=self.name,
            kind="generate", weights=files.file(version.files[0].digest), context=128,
            parallel=1, threads=1, memory=150 * MIB, device_memory=(("cpu", 150 * MIB),),
        )  # fmt: skip

    def launch(self, spec: EngineSpec, port: int, settings: Settings) -> Launch:
        return Launch([sys.executable, str(FAKE), "--port", str(port), "--name", spec.name],
                      {"PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip


@pytest.fixture
def depot(tmp_path: Path) -> Depot:
    return Depot(Settings(home=tmp_path / "depot", user="t"))


def test_capabilities_are_answered_in_one_place(depot: Depot, tmp_path: Path) -> None:
    engines = Engines([FakeEngine(), LlamaServer(), ScoringEngine(), SentenceEngine()])
    gguf = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "chat")
    onnx = depot.intake.import_path(write_onnx(tmp_path / "m.onnx"), "vision")
    can = engines.capabilities(gguf)
    assert can.engines[Capability.CHAT] == "llama-server"
    assert can.engines[Capability.SCORING] == "scorer"
    assert Capability.ADAPTERS in can and not can.native_n
    assert not can.native_tools  # ChatML without tools: the depot's fallback formats them
    assert engines.capabilities(onnx).to_list() == ["chat", "completion"]
    assert not Engines([LlamaServer()]).capabilities(onnx).servable
    assert Engines.from_entry_points().names == ["llama-server", "vllm", "scorer", "sentence"]
    files = StoredFiles(depot.store, depot.settings.home)
    link = LineageLink("adapter", str(gguf.reference), gguf.digest)
    adapter = depot.intake.import_path(write_gguf(tmp_path / "lora.gguf", seed=3,
                                                                kind="adapter"), "lora",
                                       lineage=[link])  # fmt: skip
    with pytest.raises(ModelUnavailable, match="applies no adapters"):
        engines.spec(gguf, Capability.SCORING, files, depot.settings, (adapter,))
    loaded = engines.spec(gguf, Capability.CHAT, files, depot.settings, (adapter,)).adapters
    assert loaded == (Adapter(files.file(adapter.files[0].digest), 0.0, adapter.digest),)


def test_pool_starts_reuses_unloads_and_restarts_through_the_plugin(
    depot: Depot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modeldepot.runtime")
    engines = Engines([FakeEngine()])
    files = StoredFiles(depot.store, depot.settings.home)
    a = depot.intake.import_path(write_onnx(tmp_path / "a.onnx"), "a")
    b = depot.intake.import_path(write_onnx(tmp_path / "b.onnx", seed=1), "b")
    spec_a = engines.spec(a, Capability.CHAT, files, depot.settings)
    spec_b = engines.spec(b, Capability.CHAT, files, depot.settings)
    assert spec_a.key != spec_b.key

    async def scenario() -> None:
        pool = EnginePool(engines.launcher(depot.settings, tmp_path / "logs"),
                          budget=200 * MIB, keep_alive=60)  # fmt: skip
        try:
            async with pool.use(spec_a) as first:
                answer = httpx.post(f"{first.base_url}/v1/chat/completions", json={})
                assert answer.json()["choices"][0]["message"]["content"].startswith(
                    "a:latest answer 1"
                )
            async with pool.use(spec_a) as again:
                assert again is first  # kept loaded, not started twice
            async with pool.use(spec_b) as other:  # a and b do not fit together: a goes
                assert [s.name for s in pool.status()] == ["b:latest"]
                assert not first.alive
            os.kill(other.process.pid, signal.SIGKILL)
            other.process.wait()
            async with pool.use(spec_b) as restarted:
                assert restarted.alive and restarted.process.pid != other.process.pid
        finally:
            await pool.close()
        # The log names each engine's model and pid as it starts, is unloaded and dies.
        said = [r.getMessage() for r in caplog.records if r.name == "modeldepot.runtime"]
        a_pid, b_pid, b2_pid = first.process.pid, other.process.pid, restarted.process.pid
        assert said[0].startswith(
            f"starting the fake engine (generate) for a:latest {a.digest}: pid {a_pid}, port "
        )
        assert said[1].startswith(f"engine pid {a_pid} ready for a:latest in ")
        assert (f"unloading a:latest (generate engine pid {a_pid}): to make room for b:latest"
                in said)  # fmt: skip
        assert any(m.startswith(f"the generate engine of b:latest (pid {b_pid}) died (exit code "
                                "-9)") for m in said)  # fmt: skip
        assert (f"unloading b:latest (generate engine pid {b2_pid}): the server is stopping"
                in said)  # fmt: skip
        assert [r.levelname for r in caplog.records if "died" in r.getMessage()] == ["WARNING"]

    asyncio.run(scenario())


def test_server_routes_to_the_engine_the_capabilities_name(depot: Depot, tmp_path: Path) -> None:
    depot.intake.import_path(write_onnx(tmp_path / "m.onnx"), "vision")
    depot.close()
    app = create_app(depot.settings, engines=Engines([FakeEngine(), LlamaServer()]))

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            transport = in_process_transport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://d") as client:
                listed = (await client.get("/v1/models")).json()["data"]
                assert [m["id"] for m in listed] == ["vision:latest"]
                chat = {"model": "vision", "messages": [{"role": "user", "content": "hi"}]}
                reply = await client.post("/v1/chat/completions", json=chat)
                assert reply.status_code == 200, reply.text
                assert reply.json()["choices"][0]["message"]["content"].startswith("vision")
                assert reply.headers["x-depot-upstream"] == "vision:latest"
                many = await client.post("/v1/chat/completions", json={**chat, "n": 3})
                assert [c["index"] for c in many.json()["choices"]] == [0, 1, 2]  # fanned out
                assert many.json()["usage"]["completion_tokens"] == 6
                embed = await client.post("/v1/embeddings", json={"model": "vision",
                                                                  "input": "x"})  # fmt: skip
                assert embed.status_code == 400
                assert embed.json()["error"]["code"] == "model_not_servable"

    asyncio.run(scenario())


def test_stop_returns_once_the_engines_own_processes_are_gone(depot: Depot, tmp_path: Path
                                                              ) -> None:  # fmt: skip
    """An engine whose children take a moment to exit (vLLM's engine core and worker) is
    stopped only when they have: their memory is what the next model is loaded into."""
    spec = EngineSpec(name="m", digest="sha256:" + "1" * 64, engine="fake", kind="generate",
                      weights=tmp_path, context=128, parallel=1, threads=1)  # fmt: skip
    launch = Launch([sys.executable, str(FAKE), "--port", "{port}", "--child-linger", "1"],
                    {"PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    port = free_port()
    launch = Launch([a.replace("{port}", str(port)) for a in launch.argv], launch.environment)
    engine = EngineProcess.start(spec, launch, port, tmp_path / "logs")
    child = httpx.get(f"{engine.base_url}/stats").json()["child"]
    assert engine.resident_memory > 0
    engine.stop()
    assert not engine.alive
    status = Path(f"/proc/{child}/stat")
    assert not status.exists() or status.read_text().split(") ")[1].startswith("Z")
