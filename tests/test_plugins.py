"""Formats, scanners and engines load through one loader; a plugin that fails to load is named,
never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeldepot.errors import PluginError
from modeldepot.formats import Formats
from modeldepot.plugins import load, ranked
from modeldepot.runtime.engines import Engines

Patch = pytest.MonkeyPatch


def _install(site: Path, monkeypatch: Patch, entry_points: str, modules: dict[str, str]) -> None:
    """A distribution named `thirdparty` on sys.path: `entry_points` and its `modules`."""
    info = site / "thirdparty-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))


def test_a_plugin_that_fails_to_load_is_named(tmp_path: Path, monkeypatch: Patch) -> None:
    _install(tmp_path, monkeypatch, "[modeldepot.formats]\nbroken = thirdparty_gone:Format\n", {})
    with pytest.raises(PluginError) as caught:
        Formats.from_entry_points()
    message = str(caught.value)
    assert "'broken'" in message and "modeldepot.formats" in message
    assert "thirdparty_gone:Format" in message and "ModuleNotFoundError" in message


def test_a_plugin_whose_class_fails_to_build_is_named(tmp_path: Path, monkeypatch: Patch) -> None:
    engine = "class Engine:\n    def __init__(self):\n        raise RuntimeError('no GPU')\n"
    _install(tmp_path, monkeypatch, "[modeldepot.engines]\nbad = thirdparty_engine:Engine\n",
             {"thirdparty_engine": engine})  # fmt: skip
    with pytest.raises(PluginError, match=r"'bad' of modeldepot.engines .*RuntimeError: no GPU"):
        Engines.from_entry_points()


def test_third_party_plugins_load_beside_the_built_in_ones(tmp_path: Path, monkeypatch: Patch
                                                           ) -> None:  # fmt: skip
    scanner = "class Scanner:\n    name = 'extra'\n"
    _install(tmp_path, monkeypatch, "[modeldepot.scanners]\nextra = thirdparty_scanner:Scanner\n",
             {"thirdparty_scanner": scanner})  # fmt: skip
    names = [p.name for p in ranked(load("modeldepot.scanners"), ("gguf", "pickle"))]
    assert names[:2] == ["gguf", "pickle"]
    assert "extra" in names and "safetensors" in names
