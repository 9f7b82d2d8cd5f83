from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from databases import drop_postgres as _drop_postgres
from databases import fresh_postgres as _fresh_postgres
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.receive.catalogue import load_catalogue

# Test-only settings: the PostgreSQL server `.ci/run` starts; CI demands it be there.
POSTGRES_URL = os.environ.get("DEPOT_TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("CI") == "true"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("CI must run the PostgreSQL tests: DEPOT_TEST_DATABASE_URL is not set")
        pytest.skip("DEPOT_TEST_DATABASE_URL not set (set it to run against PostgreSQL)")
    name = f"depot_test_{uuid.uuid4().hex[:12]}"
    yield _fresh_postgres(POSTGRES_URL, name)
    _drop_postgres(POSTGRES_URL, name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "depot", user="tester")


@pytest.fixture
def depot(settings: Settings) -> Iterator[Depot]:
    with Depot(settings) as d:
        yield d


@pytest.fixture
def any_depot(tmp_path: Path, database_url: str | None) -> Iterator[Depot]:
    """A depot on SQLite and, where a server is given, on PostgreSQL."""
    with Depot(Settings(home=tmp_path / "depot", database_url=database_url, user="tester")) as d:
        yield d


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    _, parts = load_catalogue()["smollm2"].model_parts()
    return parts[0]


@pytest.fixture(scope="session")
def garak_python() -> Path:
    """garak's own environment (`make garak`), for the red-team tests: CI demands it."""
    program = Settings.from_env().garak_program
    if not program.exists():
        if REQUIRE_POSTGRES:  # CI
            pytest.fail(f"CI must run the red-team tests: {program} is missing (make garak)")
        pytest.skip(f"{program} is missing: `make garak` builds garak's environment")
    return program


@pytest.fixture(scope="session")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A depot with the packaged SmolLM2 stored, shared by the tests that run it."""
    home = tmp_path_factory.mktemp("served") / "depot"
    with Depot(Settings(home=home, user="tests")) as depot:
        depot.intake.pull("smollm2")
    return home
