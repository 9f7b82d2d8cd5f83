"""The HTTP server: the OpenAI-compatible API over the depot's models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = ["create_app"]

if TYPE_CHECKING:
    from modeldepot.server.app import create_app
else:
    __getattr__, __dir__ = reexports(__name__, {"modeldepot.server.app": ["create_app"]})
