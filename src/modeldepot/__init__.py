"""modeldepot: receive, verify, describe, evaluate, customise and serve open-weight models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports
from modeldepot._version import __version__

__all__ = ["Depot", "DepotError", "Reference", "Settings", "__version__"]

if TYPE_CHECKING:
    from modeldepot.config import Settings
    from modeldepot.depot import Depot
    from modeldepot.errors import DepotError
    from modeldepot.refs import Reference
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {
            "modeldepot.config": ["Settings"],
            "modeldepot.depot": ["Depot"],
            "modeldepot.errors": ["DepotError"],
            "modeldepot.refs": ["Reference"],
        },
    )
