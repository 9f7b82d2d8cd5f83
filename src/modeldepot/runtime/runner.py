"""One loaded model: a `llama-server` process of llama.cpp, driven the way Ollama drives its
runner. The process decodes concurrent requests together (continuous batching over
`--parallel` slots), reuses the KV cache of a repeated prompt prefix, and speaks an
OpenAI-compatible HTTP API on a private loopback port. Running each model in its own process
means a crash or an out-of-memory kills that model only, and unloading frees all its memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from modeldepot.config import Settings, child_environment
from modeldepot.errors import DepotError
from modeldepot.registry import ModelVersion
from modeldepot.runtime import scoring

__all__ = [
    "ModelUnavailable",
    "Runner",
    "RunnerSpec",
    "engine_client_limits",
    "find_llama_server",
    "memory_estimate",
]

# Chat templates llama.cpp has built in, for models whose file carries none: the template the
# architecture is trained with, never llama.cpp's silent default.
ARCHITECTURE_TEMPLATES = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "olmo2": "chatml",
    "llama": "llama3",
    "mistral": "mistral-v7",
    "phi3": "phi3",
    "granite": "granite",
    "falcon": "falcon3",
    "deepseek2": "deepseek3",
}


SCORING_CONTEXT = 2048
"""Longest prompt the scoring engine takes."""


class ModelUnavailable(DepotError):
    """The model's engine could not be started or stopped answering (HTTP 503)."""


def find_llama_server(settings: Settings) -> Path:
    if settings.llama_server is not None:
        candidates = [settings.llama_server]
    else:
        candidates = [Path(sys.executable).parent / "llama-server"]
        on_path = shutil.which("llama-server")
        if on_path:
            candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ModelUnavailable(
        "llama.cpp's llama-server is not installed; build it with `make setup` "
        "(scripts/build-llama-server.sh) or point DEPOT_LLAMA_SERVER at one"
    )


def memory_estimate(version: ModelVersion, context_tokens: int) -> int:
    """Bytes the loaded model will need: weights plus an f16 KV cache for `context_tokens`."""
    info = version.info
    weights = sum(f.size for f in version.files if f.kind == "weights")
    arch = info.architecture or ""
    heads = info.details.get(f"{arch}.attention.head_count") or 0
    kv_heads = info.details.get(f"{arch}.attention.head_count_kv") or heads
    if heads and info.embedding_length and info.layers:
        kv_width = info.embedding_length * kv_heads // heads
        kv_cache = 2 * info.layers * kv_width * context_tokens * 2
    else:
        kv_cache = weights // 4
    return weights + kv_cache + 64 * 1024 * 1024


def engine_client_limits() -> httpx.Limits:
    """Connections to an engine are not kept alive: llama.cpp's HTTP server may close an idle
    one just as a client reuses it, which fails that request; a new loopback connection per
    request costs far less than a token."""
    return httpx.Limits(max_keepalive_connections=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunnerSpec:
    """Everything needed to start the engine for one model version."""

    name: str
    digest: str
    weights: Path
    context: int
    parallel: int
    threads: int
    chat_template: str | None = None
    """A llama.cpp built-in template name, for models whose file has none."""
    memory: int = 0
    full_swa_cache: bool = False
    """Keep the whole context in sliding-window layers' cache too, so a repeated prefix can
    be reused (llama.cpp cannot cut a sliding-window cache back to an arbitrary prefix)."""
    kind: str = "generate"
    """`generate` and `embed` (llama-server), `score` (prompt log-probabilities, see
    `scoring`), or `sentence` (a sentence-transformers model, see `sentence`)."""

    @property
    def key(self) -> str:
        return f"{self.digest}:{self.kind}"

    @classmethod
    def sentence(cls, version: ModelVersion, folder: Path, settings: Settings) -> RunnerSpec:
        weights = sum(f.size for f in version.files if f.kind == "weights")
        return cls(
            name=str(version.reference),
            digest=version.digest,
            weights=folder,
            context=version.info.context_length or 512,
            parallel=1,
            threads=settings.engine_threads,
            memory=2 * weights + 400 * 1024 * 1024,  # the weights, torch's own overhead
            kind="sentence",
        )

    @classmethod
    def for_version(
        cls, version: ModelVersion, weights: Path, settings: Settings, kind: str = "generate"
    ) -> RunnerSpec:
        info = version.info
        if info.format != "gguf":
            raise ModelUnavailable(
                f"{version.reference} is {info.format}; the local engine serves GGUF models "
                "(convert it to GGUF first)"
            )
        per_sequence = min(settings.context, info.context_length or settings.context)
        template = None
        if not info.chat_template:
            template = ARCHITECTURE_TEMPLATES.get(info.architecture or "", "chatml")
        context = per_sequence * settings.parallel
        if kind == "score":
            context = min(per_sequence, SCORING_CONTEXT)
            scores = min(context, scoring.BATCH) * (info.vocab_size or 32000) * 4  # logit rows
            return cls(
                name=str(version.reference),
                digest=version.digest,
                weights=weights,
                context=context,
                parallel=1,
                threads=settings.engine_threads,
                memory=memory_estimate(version, context) + scores,
                kind="score",
            )
        return cls(
            name=str(version.reference),
            digest=version.digest,
            weights=weights,
            context=context,
            parallel=settings.parallel,
            threads=settings.engine_threads,
            chat_template=template,
            memory=memory_estimate(version, context),
            full_swa_cache=f"{info.architecture}.attention.sliding_window" in info.details,
            kind=kind,
        )


@dataclass
class Runner:
    spec: RunnerSpec
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    active: int = 0

    @classmethod
    def start(cls, spec: RunnerSpec, binary: Path, log_dir: Path, timeout: float = 120) -> Runner:
        port = _free_port()
        environment = None
        if spec.kind == "sentence":
            command = [
                sys.executable, "-m", "modeldepot.runtime.sentence",
                "--model", str(spec.weights),
                "--name", spec.name,
                "--port", str(port),
                "--threads", str(spec.threads),
            ]  # fmt: skip
            environment = child_environment(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        elif spec.kind == "score":
            command = [
                sys.executable, "-m", "modeldepot.runtime.scoring",
                "--model", str(spec.weights),
                "--port", str(port),
                "--threads", str(spec.threads),
                "--ctx", str(spec.context),
            ]  # fmt: skip
        else:
            command = cls._server_command(spec, binary, port)
        chrt = shutil.which("chrt")
        if chrt:  # the normal policy, whatever the server's thread runs under
            command = [chrt, "--other", "0", *command]
        setpriv = shutil.which("setpriv")
        if setpriv:
            # The engine ends with the process that started it, even one killed. The signal
            # follows the starting thread: engines start from the main thread or the event
            # loop's executor, whose threads live as long as the loop.
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{spec.digest.removeprefix('sha256:')[:16]}-{spec.kind}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=environment,
            )
        runner = cls(spec, process, f"http://127.0.0.1:{port}", log_path)
        runner._wait_ready(timeout)
        return runner

    @staticmethod
    def _server_command(spec: RunnerSpec, binary: Path, port: int) -> list[str]:
        command = [
            str(binary),
            "--model", str(spec.weights),
            "--alias", spec.name,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ctx-size", str(spec.context),
            "--parallel", str(spec.parallel),
            "--threads", str(spec.threads),
            "--threads-batch", str(spec.threads),
            "--no-webui",
            "--metrics",
        ]  # fmt: skip
        if spec.chat_template:
            # A built-in template by name, rendered by llama.cpp itself: with jinja (on by
            # default) the name would be taken for the template's text. Tools for such models
            # go through the depot.
            command += ["--no-jinja", "--chat-template", spec.chat_template]
        else:
            command += ["--jinja"]  # the model's own template, tool-call formats included
        if spec.full_swa_cache:
            command += ["--swa-full"]
        if spec.kind == "embed":
            command += ["--embeddings", "--pooling", "mean"]
        return command

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ModelUnavailable(
                        f"{self.spec.name}: the engine exited while loading "
                        f"(code {self.process.returncode}): {self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return
                time.sleep(0.05)
        self.stop()
        raise ModelUnavailable(f"{self.spec.name}: the engine did not become ready in {timeout}s")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def resident_memory(self) -> int:
        """Resident bytes of the engine process (0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
