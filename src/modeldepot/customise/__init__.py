"""Customise: adapting a model to the user's data. Training data is checked here first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = ["DataReport", "check_data"]

if TYPE_CHECKING:
    from modeldepot.customise.data import DataReport, check_data
else:
    __getattr__, __dir__ = reexports(
        __name__, {"modeldepot.customise.data": ["DataReport", "check_data"]}
    )
