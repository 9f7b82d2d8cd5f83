"""The HTTP server: the OpenAI-compatible API over the depot's models."""

from modeldepot.server.app import create_app

__all__ = ["create_app"]
