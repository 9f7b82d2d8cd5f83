"""Licence names as model files state them, normalised to SPDX identifiers where one exists.

Model metadata writes licences loosely (`apache-2.0`, `Apache 2.0`, `llama3.1`, `gemma`); the
registry records one spelling so that search and policy can rely on it. Names with no SPDX
identifier keep the Hugging Face spelling (`llama3.1`, `gemma`, `qwen`), which is what model
cards use.
"""

from __future__ import annotations

import re

__all__ = ["licence_from_text", "normalize_licence"]

_ALIASES = {
    "apache-2.0": "Apache-2.0",
    "apache2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "mit": "MIT",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "cc0-1.0": "CC0-1.0",
    "gpl-3.0": "GPL-3.0-only",
    "agpl-3.0": "AGPL-3.0-only",
    "openrail": "OpenRAIL",
    "openrail++": "OpenRAIL++",
    "creativeml-openrail-m": "CreativeML-OpenRAIL-M",
    "bigscience-openrail-m": "BigScience-OpenRAIL-M",
    "gemma": "gemma",
    "gemma terms of use": "gemma",
    "llama2": "llama2",
    "llama3": "llama3",
    "llama3.1": "llama3.1",
    "llama3.2": "llama3.2",
    "llama3.3": "llama3.3",
    "llama4": "llama4",
    "qwen": "qwen",
    "tongyi-qianwen": "qwen",
    "falcon-llm-license": "falcon",
    "other": "other",
}

# Phrases that identify a licence from the text of a LICENSE / terms file.
_TEXT_MARKERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"apache license\s*,?\s*version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"\bmit license\b|permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"gemma terms of use", re.I), "gemma"),
    (re.compile(r"llama 3\.3 community license", re.I), "llama3.3"),
    (re.compile(r"llama 3\.2 community license", re.I), "llama3.2"),
    (re.compile(r"llama 3\.1 community license", re.I), "llama3.1"),
    (re.compile(r"llama 3 community license", re.I), "llama3"),
    (re.compile(r"llama 2 community license", re.I), "llama2"),
    (re.compile(r"tongyi qianwen license|qwen license", re.I), "qwen"),
    (re.compile(r"attribution-noncommercial 4\.0", re.I), "CC-BY-NC-4.0"),
    (re.compile(r"openrail", re.I), "OpenRAIL"),
)


def normalize_licence(raw: str | None) -> str | None:
    """`apache-2.0` -> `Apache-2.0`; unknown names are kept as written (trimmed)."""
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    if not text:
        return None
    return _ALIASES.get(text.lower(), text)


def licence_from_text(text: str) -> str | None:
    """Recognise a licence from the opening of its full text, or None."""
    head = text[:20000]
    for pattern, licence in _TEXT_MARKERS:
        if pattern.search(head):
            return licence
    return None
