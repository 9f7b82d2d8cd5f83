"""Describe: what a version is, told once. The read model every surface renders (the CLI's
`--json`, `/api`, the web UI), the model card, and the AI-BOM."""

from modeldepot.describe.documents import Documents
from modeldepot.describe.view import describe_rows, version_view

__all__ = ["Documents", "describe_rows", "version_view"]
