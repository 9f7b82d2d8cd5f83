"""Hugging Face folders that only load with `trust_remote_code=True`: an `auto_map` in a
config names Python classes to import, and `*.py` files are the code that would run.
An `auto_map` entry of the form `other/repo--module.Class` fetches code from another
repository at load time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.templates import check_template

__all__ = ["folder_findings"]


def _entries(auto_map: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(auto_map, dict):
        return
    for key, value in auto_map.items():
        for target in value if isinstance(value, list) else [value]:
            if isinstance(target, str):
                yield str(key), target


def _templates(value: Any) -> Iterator[tuple[str, str]]:
    """`chat_template` of a tokenizer config: one string, or a list of named templates."""
    if isinstance(value, str):
        yield "chat_template", value
    elif isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict) and isinstance(entry.get("template"), str):
                yield f"chat_template.{entry.get('name', 'default')}", entry["template"]


def folder_findings(folder: Path, files: list[Path], label: str) -> list[Finding]:
    out: list[Finding] = []
    for path in files:
        rel = path.relative_to(folder).as_posix()
        where = f"{label}/{rel}"
        if path.suffix == ".py":
            out.append(
                Finding(
                    where,
                    "hf.python-code",
                    Severity.HIGH,
                    "Python code in a model folder runs under trust_remote_code",
                )
            )
            continue  # fmt: skip
        if path.suffix != ".json" or path.stat().st_size > 16 * 1024 * 1024:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, OSError):
            continue
        if not isinstance(data, dict):
            continue
        for key, template in _templates(data.get("chat_template")):
            out += check_template(template, f"{where}:{key}")
        for key, target in _entries(data.get("auto_map")):
            if "--" in target:
                repo = target.split("--", 1)[0]
                out.append(Finding(f"{where}:auto_map.{key}", "hf.remote-code-elsewhere",
                                   Severity.CRITICAL,
                                   f"loads {target!r}: code from another repository ({repo}) "
                                   "fetched at load time"))  # fmt: skip
            else:
                module = target.rsplit(".", 1)[0]
                present = (folder / f"{module.replace('.', '/')}.py").exists()
                out.append(
                    Finding(
                        f"{where}:auto_map.{key}",
                        "hf.remote-code",
                        Severity.HIGH,
                        f"needs trust_remote_code to import {target!r}"
                        + ("" if present else " (its module is not in the folder)"),
                    )
                )
    return out  # fmt: skip
