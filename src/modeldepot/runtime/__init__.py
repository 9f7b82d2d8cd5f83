"""Running models: one llama.cpp engine process per loaded model, and the pool that loads,
keeps and unloads them within a memory budget."""

from modeldepot.runtime.pool import PoolStatus, RunnerPool
from modeldepot.runtime.runner import ModelUnavailable, Runner, RunnerSpec, find_llama_server

__all__ = [
    "ModelUnavailable",
    "PoolStatus",
    "Runner",
    "RunnerPool",
    "RunnerSpec",
    "find_llama_server",
]
