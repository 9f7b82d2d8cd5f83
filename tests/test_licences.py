"""Licences through SPDX (license-expression): identifiers and compound expressions normalise,
the policy's allow and deny lists and families match them alternative by alternative, and the
AI-BOM writes an expression as an expression (checked by CycloneDX's validator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.licences import (
    MAX_LICENCE,
    licence_alternatives,
    licence_terms,
    normalize_licence,
)
from modeldepot.verify.policy import Policy


@pytest.mark.parametrize(
    ("raw", "spdx", "family"),
    [
        ("gpl-2.0", "GPL-2.0-only", "copyleft"),
        ("mpl-2.0", "MPL-2.0", "weak-copyleft"),
        ("lgpl-3.0", "LGPL-3.0-only", "weak-copyleft"),
        ("cc-by-nc-nd-4.0", "CC-BY-NC-ND-4.0", "non-commercial"),
        ("apache-2.0 or mit", "Apache-2.0 OR MIT", "permissive"),
        ("Apache 2.0", "Apache-2.0", "permissive"),
        ("llama3.1", "llama3.1", "llama"),
        ("gemma", "gemma", "gemma"),
    ],
)
def test_spdx_identifiers_and_expressions_normalise(raw: str, spdx: str, family: str) -> None:
    assert normalize_licence(raw) == spdx
    assert licence_terms(spdx).family == family


@pytest.mark.parametrize("raw", ['"><img src=x onerror=alert(1)>', "<b>MIT</b>", "a'b"])
def test_a_licence_spdx_cannot_read_is_kept_as_written(raw: str) -> None:
    # license-expression raises (not reports) on characters it cannot tokenise
    assert normalize_licence(raw) == raw
    assert licence_terms(raw).commercial_use is None  # unknown terms, judged unknown


def test_expressions_are_judged_alternative_by_alternative() -> None:
    assert licence_alternatives("Apache-2.0 OR (MIT AND GPL-3.0-only)") == [
        ["Apache-2.0"],
        ["GPL-3.0-only", "MIT"],
    ]
    assert licence_terms("CC-BY-NC-4.0 OR Apache-2.0").commercial_use is True  # may choose
    assert licence_terms("CC-BY-NC-4.0 AND Apache-2.0").commercial_use is False  # bound by both

    def refused(licence: str, **policy: tuple[str, ...]) -> list[str]:
        return Policy(**policy).violations(  # type: ignore[arg-type]
            licence=licence, fmt="gguf", findings=[], signed_by_trusted=False
        )

    assert not refused("Apache-2.0 OR GPL-3.0-only", licences_allowed=("permissive",))
    assert refused("MIT AND GPL-3.0-only", licences_allowed=("permissive",))
    assert not refused("Apache-2.0 OR GPL-3.0-only", licences_denied=("copyleft",))
    assert refused("GPL-3.0-or-later OR AGPL-3.0-only", licences_denied=("copyleft",))
    assert refused("GPL-2.0-only", licences_denied=("gpl-2.0",))  # any spelling of the id
    assert refused("CC-BY-NC-ND-4.0", require_commercial_use=True)


def test_ai_bom_writes_an_expression_as_an_expression(tmp_path: Path) -> None:
    with Depot(Settings(home=tmp_path / "depot", user="t")) as depot:
        version = depot.intake.import_path(
            write_gguf(tmp_path / "m.gguf", licence="apache-2.0 or mit"), "dual"
        )
        assert version.info.license == "Apache-2.0 OR MIT"
        document = depot.documents.bom(version)  # validated against the schema inside
    assert document["components"][0]["licenses"] == [{"expression": "Apache-2.0 OR MIT"}]


@pytest.mark.parametrize(
    "raw", ["MIT<x>", "MIT OR", "a AND", "Apache-2.0 WITH", "(((", "mit or <", "MIT-evil",
            "x" * 10_000, "MIT\x00\n", 5, ["MIT", "Apache-2.0"]],
)  # fmt: skip
def test_any_licence_a_file_states_is_recorded_not_a_crash(raw: object) -> None:
    recorded = normalize_licence(raw)
    assert recorded and len(recorded) <= MAX_LICENCE and recorded.isprintable()
    terms = licence_terms(recorded)
    assert terms.family is not None  # judged, as what it is or as unknown


def test_an_unknown_licence_in_a_gguf_is_imported_as_written_and_the_policy_decides(
    tmp_path: Path,
) -> None:
    """`MIT<x>` crashed import inside license-expression; it is not MIT either, so neither the
    licence nor its family lets it through an allow-list."""
    home = tmp_path / "depot"
    with Depot(Settings(home=home, user="t")) as depot:
        version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf", licence="MIT<x>"), "m")
        assert (version.info.license, version.info.license_source) == (
            "MIT<x>", "gguf:general.license")  # fmt: skip
        assert depot.admission.refusals(version) == []  # the default policy allows any licence
        assert licence_terms("MIT<x>").family == "other"
        document = depot.documents.bom(version)  # validated against the schema inside
        assert document["components"][0]["licenses"] == [{"license": {"name": "MIT<x>"}}]
        assert "MIT<x>" in depot.documents.card(version)
    for allowed in ('"MIT"', '"permissive"'):
        (home / "policy.toml").write_text(f"[licences]\nallow = [{allowed}]\n")
        with Depot(Settings(home=home, user="t")) as depot:
            refused = depot.intake.import_path(
                write_gguf(tmp_path / "n.gguf", licence="MIT<x>", seed=len(allowed)), "n"
            )
            assert depot.admission.refusals(refused) == [
                "licence: MIT<x> is not in the allowed licences"]  # fmt: skip
