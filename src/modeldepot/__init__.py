"""modeldepot: receive, verify, describe, evaluate, customise and serve open-weight models."""

from __future__ import annotations

from modeldepot._version import __version__
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError
from modeldepot.refs import Reference

__all__ = ["Depot", "DepotError", "Reference", "Settings", "__version__"]
