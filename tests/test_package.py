"""The package's public surface and documentation stay honest."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import modeldepot
from modeldepot.config import ENVIRONMENT, Settings

ROOT = Path(__file__).parent.parent


def _modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(modeldepot.__path__, "modeldepot.")
            if ".migrations" not in m.name]  # fmt: skip


def test_every_module_declares_an_honest_all() -> None:
    for name in _modules():
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{name} has no __all__"
        missing = [n for n in exported if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ names what it lacks: {missing}"


def test_every_environment_variable_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for var in ENVIRONMENT:
        assert f"`{var.name}`" in readme, f"README.md does not document {var.name}"


def test_settings_read_only_the_declared_variables(tmp_path: Path) -> None:
    env = {"DEPOT_HOME": str(tmp_path), "DEPOT_DATABASE_URL": "sqlite:///x.db", "DEPOT_USER": "u"}
    settings = Settings.from_env(env)
    assert settings.home == tmp_path
    assert settings.registry_url == "sqlite:///x.db"
    assert settings.actor == "u"
    assert Settings.from_env({"DEPOT_HOME": str(tmp_path)}).registry_url == (
        f"sqlite:///{tmp_path / 'registry.db'}"
    )
    source = (ROOT / "src" / "modeldepot").rglob("*.py")
    readers = [p for p in source if "os.environ" in p.read_text() and p.name != "config.py"]
    assert readers == [], f"only config.py may read the environment: {readers}"
