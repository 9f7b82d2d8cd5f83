"""Describe: what a version is, told once. The read model every surface renders (the CLI's
`--json`, `/api`, the web UI), the model card, and the AI-BOM."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = ["Documents", "describe_rows", "version_view"]

if TYPE_CHECKING:
    from modeldepot.describe.documents import Documents
    from modeldepot.describe.view import describe_rows, version_view
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {
            "modeldepot.describe.documents": ["Documents"],
            "modeldepot.describe.view": ["describe_rows", "version_view"],
        },
    )
