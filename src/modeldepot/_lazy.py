"""Re-exports loaded on first use (PEP 562), so importing a package loads only what is asked
for: an engine process (`python -m modeldepot.runtime.scorer`) imports `modeldepot.runtime`
without the registry, the store or SQLAlchemy behind the package's other names.

A package names what it re-exports twice: in an `if TYPE_CHECKING:` block of plain imports
(what type checkers and readers see) and, otherwise, in the table given here::

    if TYPE_CHECKING:
        from modeldepot.depot import Depot
    else:
        __getattr__, __dir__ = reexports(__name__, {"modeldepot.depot": ["Depot"]})

tests/test_package.py checks that the two agree and that every name loads."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["reexports"]


def reexports(
    package: str, table: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module-level `__getattr__` and `__dir__` for the names of `table` (module
    -> the names it provides); each name is imported on first use, then kept."""
    where = {name: module for module, names in table.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
