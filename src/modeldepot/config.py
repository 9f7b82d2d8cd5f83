"""Settings, and every environment variable modeldepot reads, declared once.

Nothing reads `os.environ` elsewhere: the command line builds `Settings.from_env()` and passes
the result in; tests build `Settings(home=tmp_path)` directly.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeldepot.errors import UsageError
from modeldepot.layout import Layout

__all__ = [
    "ENVIRONMENT",
    "LOG_LEVELS",
    "EnvVar",
    "Settings",
    "child_environment",
    "secret_from_env",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class EnvVar:
    name: str
    description: str
    default: str


ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar(
        "DEPOT_HOME",
        "Folder holding the store (blobs, temporary files) and, by default, the registry.",
        "~/.modeldepot",
    ),
    EnvVar(
        "DEPOT_BLOBS",
        "Where blobs are kept: s3://BUCKET[/PREFIX] for S3-compatible object storage (with "
        "the AWS_* variables below).",
        "the folder $DEPOT_HOME/blobs",
    ),
    EnvVar(
        "DEPOT_BLOB_CACHE",
        "Local cache of an object store's blobs (bytes, or with K/M/G suffix), for engines, "
        "scanners and signing; the least recently used are evicted.",
        "10G",
    ),
    EnvVar("AWS_ENDPOINT_URL", "The S3 endpoint (a MinIO, SeaweedFS or Ceph server).", "AWS's own"),
    EnvVar("AWS_ACCESS_KEY_ID", "S3 access key.", "none"),
    EnvVar("AWS_SECRET_ACCESS_KEY", "S3 secret key.", "none"),
    EnvVar("AWS_REGION", "S3 region.", "us-east-1"),
    EnvVar(
        "DEPOT_DATABASE_URL",
        "SQLAlchemy URL of the registry database, e.g. postgresql+psycopg://user@host/db.",
        "sqlite:///$DEPOT_HOME/registry.db",
    ),
    EnvVar(
        "DEPOT_USER",
        "Name recorded as the actor of registry events.",
        "the login name of the current user",
    ),
    EnvVar(
        "DEPOT_API_KEYS",
        "API keys the server accepts besides those of `depot key create`: comma-separated "
        "`SECRET` or `SECRET=PATTERN|PATTERN` (model name globs).",
        "none: without any key the server is for local use and listens on loopback only",
    ),
    EnvVar(
        "DEPOT_ALLOWED_HOSTS",
        "Names the server may be called by besides the addresses it listens on (comma-separated "
        "`NAME` or `NAME:PORT`; `*` allows any): a depot without keys answers only requests "
        "whose Host (and, when they change something, Origin) names it, so a web page cannot "
        "reach it by a name of its own (DNS rebinding).",
        "none: the address `depot serve` listens on (on loopback: localhost, 127.0.0.1, [::1])",
    ),
    EnvVar(
        "DEPOT_LLAMA_SERVER",
        "Path of the llama.cpp `llama-server` program that runs GGUF models.",
        "llama-server beside the Python interpreter, else on PATH",
    ),
    EnvVar(
        "DEPOT_LLAMA_CPP",
        "Folder of the llama.cpp sources whose conversion scripts (convert_hf_to_gguf.py, "
        "convert_lora_to_gguf.py) the depot runs.",
        "the pinned sources `make setup` links at .venv/share/modeldepot/llama.cpp",
    ),
    EnvVar(
        "DEPOT_VLLM_PYTHON",
        "Python interpreter of the environment holding vLLM, which serves Hugging Face folders "
        "(its own environment: its pins would fight the depot's).",
        "vllm-python beside the depot's interpreter, written by `make vllm`",
    ),
    EnvVar(
        "DEPOT_DEVICE",
        "Where vLLM runs models: `cpu`, or `cuda` on a machine with an NVIDIA GPU (and the "
        "official vllm wheel, `make vllm VLLM_DEVICE=cuda`).",
        "cpu",
    ),
    EnvVar(
        "DEPOT_ENGINE_<FORMAT>",
        "The engine that generates for models of FORMAT (`gguf`, `safetensors`, ...), by "
        "plugin name, e.g. DEPOT_ENGINE_SAFETENSORS=vllm; it is then chosen whether or not it "
        "looks installed.",
        "the first installed engine that can: llama-server for GGUF, vllm for safetensors",
    ),
    EnvVar(
        "DEPOT_GARAK_PYTHON",
        "Python interpreter of the environment holding garak, which `depot redteam` runs (its "
        "own environment: garak's pins fight the depot's).",
        "garak-python beside the depot's interpreter, written by `make garak`",
    ),
    EnvVar(
        "DEPOT_MAX_MEMORY",
        "Memory budget for loaded models (bytes, or with K/M/G suffix); least recently used "
        "models are unloaded to stay within it.",
        "half of the machine's RAM",
    ),
    EnvVar(
        "DEPOT_KEEP_ALIVE",
        "Seconds an idle model stays loaded.",
        "300",
    ),
    EnvVar(
        "DEPOT_THREADS",
        "CPU threads each model's engine uses.",
        "the number of cores",
    ),
    EnvVar(
        "DEPOT_PARALLEL",
        "Sequences each model decodes together (continuous batching slots).",
        "4",
    ),
    EnvVar(
        "DEPOT_MAX_QUEUE",
        "Requests one model may hold in flight (decoding or waiting for a slot); more are "
        "refused with 429.",
        "16 x DEPOT_PARALLEL",
    ),
    EnvVar(
        "DEPOT_CONTEXT",
        "Context length (tokens) of each sequence; capped at the model's own.",
        "4096",
    ),
    EnvVar(
        "DEPOT_REMOTE_TIMEOUT",
        "Seconds to wait for a remote (another depot, an OCI registry) to accept a connection, "
        "and for each read of its answer.",
        "60",
    ),
    EnvVar(
        "DEPOT_PULL_DEADLINE",
        "Seconds a whole pull, push or fetch (another depot, an OCI registry, a mirror's "
        "upstream) may take, however steadily bytes arrive.",
        "21600 (6 hours)",
    ),
    EnvVar(
        "DEPOT_LOG_LEVEL",
        "Least severe log lines written on standard error: DEBUG, INFO, WARNING or ERROR "
        "(`depot -v` is INFO, `-vv` DEBUG).",
        "WARNING; INFO for `depot serve`",
    ),
    EnvVar(
        "DEPOT_MAX_UPLOAD",
        "Largest file a client may upload through the Ollama API's `POST /api/blobs` (bytes, "
        "or with K/M/G suffix).",
        "64G",
    ),
    EnvVar(
        "EDITOR",
        "Editor `depot card NAME --edit` opens the model card in.",
        "vi",
    ),
)


_ENGINE_PREFIX = "DEPOT_ENGINE_"
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for an engine process: this one's, plus `extra`."""
    return {**os.environ, **extra}


def secret_from_env(name: str | None) -> str | None:
    """The value of a variable the user named to hold a secret (a remote model's API key)."""
    return os.environ.get(name) if name else None


def _parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _total_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Settings:
    """Where the depot lives and who is acting on it."""

    home: Path
    database_url: str | None = None
    blobs: str | None = None
    """`s3://BUCKET[/PREFIX]`, or None for the local folder."""
    blob_cache: int = 10 * 1024**3
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None
    user: str | None = None
    llama_server: Path | None = None
    llama_cpp: Path | None = None
    max_memory: int = 0
    """0 means half of the machine's RAM."""
    keep_alive: float = 300.0
    threads: int = 0
    """0 means one per core."""
    parallel: int = 4
    context: int = 4096
    api_keys: str | None = None
    allowed_hosts: str | None = None
    """`DEPOT_ALLOWED_HOSTS`, as given."""
    max_queue: int = 0
    """0 means 16 requests per parallel slot."""
    editor: str = "vi"
    remote_timeout: float = 60.0
    """Seconds to connect to a remote and to wait for each read of its answer."""
    pull_deadline: float = 6 * 3600.0
    """Seconds a whole pull, push or fetch may take (`DEPOT_PULL_DEADLINE`)."""
    vllm_python: Path | None = None
    device: str = "cpu"
    """`cpu` or `cuda[:N]`: where vLLM runs models."""
    engine_choice: tuple[tuple[str, str], ...] = ()
    """(format, engine name) pairs from DEPOT_ENGINE_<FORMAT>."""
    log_level: str | None = None
    """One of `LOG_LEVELS`; None leaves it to the command (WARNING, INFO for the server)."""
    garak_python: Path | None = None
    """`DEPOT_GARAK_PYTHON`: the interpreter of garak's environment (None: `garak_program`)."""
    measuring: bool = False
    """A server run inside an evaluation (`depot eval`, `depot redteam`): the policy's
    [safety] section refuses nothing there, since measuring is how a version meets it."""
    max_upload: int = 64 * 1024**3
    """Bytes one upload to `/api/blobs` may hold."""

    @property
    def layout(self) -> Layout:
        """Where each file under the home lives."""
        return Layout(self.home)

    def engine_for(self, model_format: str) -> str | None:
        """The engine DEPOT_ENGINE_<FORMAT> names for `model_format`, if any."""
        return dict(self.engine_choice).get(model_format)

    @property
    def garak_program(self) -> Path:
        """The interpreter `depot redteam` runs garak with."""
        return self.garak_python or Path(sys.executable).parent / "garak-python"

    @property
    def queue_limit(self) -> int:
        return self.max_queue or 16 * self.parallel

    @property
    def memory_budget(self) -> int:
        return self.max_memory or _total_memory() // 2

    @property
    def engine_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    @property
    def registry_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.layout.registry_db}"

    @property
    def actor(self) -> str:
        if self.user:
            return self.user
        try:
            return os.getlogin()
        except OSError:
            import getpass

            return getpass.getuser()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; a value out of range is refused with the name of
        its variable (UsageError)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("DEPOT_HOME") or "~/.modeldepot").expanduser()
        server = env.get("DEPOT_LLAMA_SERVER")
        sources = env.get("DEPOT_LLAMA_CPP")
        vllm = env.get("DEPOT_VLLM_PYTHON")
        device = env.get("DEPOT_DEVICE") or "cpu"
        if not _DEVICE.fullmatch(device):
            raise UsageError(f"DEPOT_DEVICE={device!r}: cpu, cuda or cuda:N")
        choice = tuple(sorted(
            (name.removeprefix(_ENGINE_PREFIX).lower(), value.strip())
            for name, value in env.items()
            if name.startswith(_ENGINE_PREFIX) and len(name) > len(_ENGINE_PREFIX) and value.strip()
        ))  # fmt: skip
        log_level = (env.get("DEPOT_LOG_LEVEL") or "").strip().upper() or None
        if log_level is not None and log_level not in LOG_LEVELS:
            raise UsageError(f"DEPOT_LOG_LEVEL={env['DEPOT_LOG_LEVEL']!r}: one of "
                             f"{', '.join(LOG_LEVELS)}")  # fmt: skip
        garak = env.get("DEPOT_GARAK_PYTHON")

        def number(name: str, default: float, low: float, kind: type = int) -> Any:
            text = env.get(name) or ""
            if not text:
                return kind(default)
            try:
                value = (_parse_size(text) if name in ("DEPOT_MAX_MEMORY", "DEPOT_BLOB_CACHE",
                                                       "DEPOT_MAX_UPLOAD")
                     else kind(text))  # fmt: skip
            except ValueError:
                raise UsageError(
                    f"{name}={text!r} is not {'an integer' if kind is int else 'a number'}"
                ) from None
            if value < low:
                raise UsageError(f"{name}={text!r}: it must be at least {low:g}")
            return value

        return cls(
            home=home.absolute(),
            database_url=env.get("DEPOT_DATABASE_URL") or None,
            blobs=env.get("DEPOT_BLOBS") or None,
            blob_cache=number("DEPOT_BLOB_CACHE", 10 * 1024**3, 0),
            s3_endpoint=env.get("AWS_ENDPOINT_URL") or None,
            s3_access_key=env.get("AWS_ACCESS_KEY_ID") or None,
            s3_secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            s3_region=env.get("AWS_REGION") or None,
            user=env.get("DEPOT_USER") or None,
            llama_server=Path(server) if server else None,
            llama_cpp=Path(sources).expanduser() if sources else None,
            max_memory=number("DEPOT_MAX_MEMORY", 0, 0),
            keep_alive=number("DEPOT_KEEP_ALIVE", 300, 0, float),
            threads=number("DEPOT_THREADS", 0, 0),
            parallel=number("DEPOT_PARALLEL", 4, 1),
            context=number("DEPOT_CONTEXT", 4096, 64),
            api_keys=env.get("DEPOT_API_KEYS") or None,
            allowed_hosts=env.get("DEPOT_ALLOWED_HOSTS") or None,
            max_queue=number("DEPOT_MAX_QUEUE", 0, 0),
            editor=env.get("EDITOR") or "vi",
            remote_timeout=number("DEPOT_REMOTE_TIMEOUT", 60, 0.1, float),
            pull_deadline=number("DEPOT_PULL_DEADLINE", 6 * 3600, 1, float),
            vllm_python=Path(vllm).expanduser() if vllm else None,
            device=device,
            engine_choice=choice,
            log_level=log_level,
            garak_python=Path(garak).expanduser() if garak else None,
            max_upload=number("DEPOT_MAX_UPLOAD", 64 * 1024**3, 0),
        )
