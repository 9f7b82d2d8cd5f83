"""Presets (`depot create NAME -f Modelfile`): a version that names its base's files by digest
(nothing copied) plus small files of its own, lineage `preset`, scanned and admitted like any
import: a hostile system prompt or template quarantines it, a Go template or a refused base is
refused before anything is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import write_gguf
from customise.conftest import depot_cli
from modeldepot.config import Settings
from modeldepot.customise.modelfile import parse_modelfile
from modeldepot.customise.presets import Preset, create_preset, preset_of
from modeldepot.depot import Depot
from modeldepot.errors import UsageError

MODELFILE = '''FROM base
SYSTEM You are terse.
PARAMETER temperature 0.25
PARAMETER stop "###"
MESSAGE user Hello?
MESSAGE assistant Hi.
LICENSE """Some licence
text."""
'''


@pytest.fixture
def depot(tmp_path: Path) -> Iterator[Depot]:
    with Depot(Settings(home=tmp_path / "depot", user="t")) as d:
        d.intake.import_path(write_gguf(tmp_path / "base.gguf"), "base")
        yield d


def test_a_preset_shares_its_base_files_and_records_its_lineage(
    depot: Depot, tmp_path: Path
) -> None:
    base = depot.names.show("base")
    stored = {d for d, _ in depot.store.digests()}
    version = create_preset(depot, "terse:v1", parse_modelfile(MODELFILE, tmp_path))
    assert version.admitted, version.reasons
    mine = {f.path: f.digest for f in version.files}
    for f in base.files:  # the base's files by digest: nothing copied
        assert mine[f.path] == f.digest
    new = {d for d, _ in depot.store.digests()} - stored
    preset_files = {d for p, d in mine.items() if p.startswith("preset/")}
    assert new == preset_files | {version.digest, version.config_digest}
    assert [(x.relation, x.target, x.target_digest) for x in version.lineage] == [
        ("preset", "base:latest", base.digest)]  # fmt: skip
    preset = preset_of(version, depot.store.read_bytes)
    assert preset == Preset("You are terse.", None, {"temperature": 0.25, "stop": ["###"]},
                            ({"role": "user", "content": "Hello?"},
                             {"role": "assistant", "content": "Hi."}),
                            ("Some licence\ntext.",))  # fmt: skip
    assert preset_of(base, depot.store.read_bytes) is None


def test_a_preset_applies_its_defaults_and_the_request_wins(depot: Depot, tmp_path: Path) -> None:
    preset = Preset.of(parse_modelfile(MODELFILE, tmp_path))
    body = preset.apply({"messages": [{"role": "user", "content": "q"}], "temperature": 1.0},
                        chat=True)  # fmt: skip
    assert body["temperature"] == 1.0 and body["stop"] == ["###"]
    assert body["messages"] == [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "Hello?"},
                                {"role": "assistant", "content": "Hi."},
                                {"role": "user", "content": "q"}]  # fmt: skip
    own = preset.apply({"messages": [{"role": "system", "content": "mine"},
                                     {"role": "user", "content": "q"}]}, chat=True)  # fmt: skip
    assert [m["content"] for m in own["messages"]] == ["mine", "Hello?", "Hi.", "q"]
    assert preset.apply({"prompt": "p"}, chat=False) == {"prompt": "p", "temperature": 0.25,
                                                         "stop": ["###"]}  # fmt: skip


def test_a_preset_of_a_preset_starts_from_its_values(depot: Depot, tmp_path: Path) -> None:
    create_preset(depot, "terse", parse_modelfile(MODELFILE, tmp_path))
    again = create_preset(
        depot,
        "terser",
        parse_modelfile(
            "FROM terse\nPARAMETER top_k 5\nPARAMETER temperature 0.1\nLICENSE more\n", tmp_path
        ),
    )
    preset = preset_of(again, depot.store.read_bytes)
    assert preset is not None and preset.system == "You are terse."
    assert dict(preset.parameters) == {"temperature": 0.1, "stop": ["###"], "top_k": 5}
    assert preset.licenses == ("Some licence\ntext.", "more") and len(preset.messages) == 2
    assert len([f for f in again.files if f.kind == "weights"]) == 1
    assert again.lineage[0].target == "terse:latest"


@pytest.mark.parametrize(
    "instruction",
    [
        'SYSTEM """{{ cycler.__init__.__globals__.os.system("id") }}"""',
        'TEMPLATE """{{ messages.__class__.__mro__[1].__subclasses__() }}"""',
    ],
)
def test_a_hostile_system_prompt_or_template_quarantines_the_preset(
    depot: Depot, tmp_path: Path, instruction: str
) -> None:
    version = create_preset(depot, "evil", parse_modelfile(f"FROM base\n{instruction}\n",
                                                           tmp_path))  # fmt: skip
    assert version.status == "quarantined"
    assert any("preset/" in r for r in version.reasons), version.reasons
    assert depot.names.show("base").admitted  # the base is not touched


def test_a_go_template_or_a_refused_base_is_refused_before_anything_is_stored(
    depot: Depot, tmp_path: Path
) -> None:
    before = set(depot.store.digests())
    with pytest.raises(UsageError, match="template error: not a Jinja template"):
        create_preset(
            depot,
            "go",
            parse_modelfile(
                'FROM base\nTEMPLATE """{{ if .System }}{{ .System }}{{ end }}"""\n', tmp_path
            ),
        )
    depot.quarantine.hold(depot.names.show("base"), reason="held for the test")
    with pytest.raises(UsageError, match="cannot be used"):
        create_preset(depot, "late", parse_modelfile("FROM base\nSYSTEM x\n", tmp_path))
    assert set(depot.store.digests()) == before
    assert [str(v.reference) for v in depot.names.versions()] == ["base:latest"]


def test_depot_create_from_the_command_line(depot: Depot, tmp_path: Path) -> None:
    home = depot.settings.home
    depot.close()
    (tmp_path / "Modelfile").write_text(MODELFILE)
    made = depot_cli(home, "create", "terse", "-f", str(tmp_path / "Modelfile"), "--json")
    assert json.loads(made.stdout)["lineage"][0]["relation"] == "preset"
    (tmp_path / "Evil").write_text("FROM ../../etc/passwd\n")
    refused = depot_cli(home, "create", "evil", "-f", str(tmp_path / "Evil"), check=False)
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "FROM path '../../etc/passwd' is refused" in lines[0], lines
