"""The one loader of plugins: model formats (`modeldepot.formats`), scanners
(`modeldepot.scanners`) and engines (`modeldepot.engines`) are entry points naming a class
that is built with no arguments. The built-in ones are entry points of modeldepot itself, so
they load exactly as a third-party plugin does. A plugin that fails to load stops the load with
a `PluginError` naming it; none is ever skipped in silence."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, TypeVar

from modeldepot.errors import PluginError

__all__ = ["Named", "load", "ranked"]

log = logging.getLogger("modeldepot.plugins")


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def load(group: str) -> list[Any]:
    """An instance of every plugin of entry-point `group`."""
    plugins = []
    for entry in entry_points(group=group):
        try:
            plugins.append(entry.load()())
        except Exception as exc:
            raise PluginError(
                f"plugin {entry.name!r} of {group} ({entry.value}) could not be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        log.debug("plugin %s of %s loaded from %s", entry.name, group, entry.value)
    return plugins


def ranked(plugins: Iterable[N], first: Sequence[str]) -> list[N]:
    """`plugins` with those named in `first` ahead, in its order (the others keep theirs)."""
    return sorted(plugins, key=lambda p: first.index(p.name) if p.name in first else len(first))
