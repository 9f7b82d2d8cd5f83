"""Settings, and every environment variable modeldepot reads, declared once.

Nothing reads `os.environ` elsewhere: the command line builds `Settings.from_env()` and passes
the result in; tests build `Settings(home=tmp_path)` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENVIRONMENT", "EnvVar", "Settings"]


@dataclass(frozen=True)
class EnvVar:
    name: str
    description: str
    default: str


ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar(
        "DEPOT_HOME",
        "Folder holding the store (blobs, temporary files) and, by default, the registry.",
        "~/.modeldepot",
    ),
    EnvVar(
        "DEPOT_DATABASE_URL",
        "SQLAlchemy URL of the registry database, e.g. postgresql+psycopg://user@host/db.",
        "sqlite:///$DEPOT_HOME/registry.db",
    ),
    EnvVar(
        "DEPOT_USER",
        "Name recorded as the actor of registry events.",
        "the login name of the current user",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Where the depot lives and who is acting on it."""

    home: Path
    database_url: str | None = None
    user: str | None = None

    @property
    def registry_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'registry.db'}"

    @property
    def actor(self) -> str:
        if self.user:
            return self.user
        try:
            return os.getlogin()
        except OSError:
            import getpass

            return getpass.getuser()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("DEPOT_HOME") or "~/.modeldepot").expanduser()
        return cls(
            home=home.absolute(),
            database_url=env.get("DEPOT_DATABASE_URL") or None,
            user=env.get("DEPOT_USER") or None,
        )
