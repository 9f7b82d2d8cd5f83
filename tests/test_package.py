"""The package's public surface and documentation stay honest."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
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


def test_an_engine_process_loads_neither_the_registry_nor_sqlalchemy() -> None:
    # Package __init__s re-export lazily: `python -m modeldepot.runtime.scorer` (and the
    # sentence engine) import what serving a model needs, not the depot behind `modeldepot`.
    probe = (
        "import sys, modeldepot, modeldepot.runtime.scorer, modeldepot.runtime.sentence\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "modeldepot.runtime.scorer" in loaded
    heavy = ("sqlalchemy", "alembic", "fastapi", "modeldepot.registry", "modeldepot.depot")
    unwanted = [m for m in loaded if m.startswith(heavy)]
    assert unwanted == []


def _lazy_tables() -> dict[str, tuple[dict[str, set[str]], dict[str, set[str]]]]:
    """Per package using `reexports`: its TYPE_CHECKING imports and its table, module -> names."""
    found = {}
    for init in sorted((ROOT / "src" / "modeldepot").rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        for node in tree.body:
            if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"):
                continue
            imported = {i.module or "": {a.name for a in i.names} for i in node.body
                        if isinstance(i, ast.ImportFrom)}  # fmt: skip
            call = node.orelse[0].value  # type: ignore[attr-defined]
            table = {k: set(v) for k, v in ast.literal_eval(call.args[1]).items()}
            found[str(init.relative_to(ROOT))] = (imported, table)
    return found


def test_lazy_reexports_match_what_type_checkers_see() -> None:
    tables = _lazy_tables()
    assert "src/modeldepot/__init__.py" in tables and "src/modeldepot/runtime/__init__.py" in tables
    for init, (imported, table) in tables.items():
        assert imported == table, f"{init}: TYPE_CHECKING imports and reexports() differ"
