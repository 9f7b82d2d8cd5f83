"""Receive: models come in here, from a file or folder, a Python package (the catalogue of
packaged models), or another depot; every one is stored whole, then admitted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = ["Intake"]

if TYPE_CHECKING:
    from modeldepot.receive.intake import Intake
else:
    __getattr__, __dir__ = reexports(__name__, {"modeldepot.receive.intake": ["Intake"]})
