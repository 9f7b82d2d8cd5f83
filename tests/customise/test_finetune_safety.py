"""`depot finetune --eval over_refusal --redteam PROBE`: the base and the adapter measured on the
same prompts with the same seed, and the safety difference, with its paired interval, in the
adapter's card and in the command's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customise.conftest import KESTREL, depot_cli
from modeldepot.config import Settings
from modeldepot.depot import Depot

pytestmark = pytest.mark.slow


def test_adapter_card_shows_the_safety_difference(base_home: Path, garak_python: Path) -> None:
    done = depot_cli(base_home, "finetune", "smollm2", "--data", str(KESTREL), "--name",
                     "guarded", "--max-steps", "2", "--batch-size", "4", "--eval",
                     "over_refusal", "--eval-limit", "4", "--redteam", "encoding.InjectBase64",
                     "--json", timeout=1200)  # fmt: skip
    rows = {(r["task"], r["metric"]): r for r in json.loads(done.stdout)["comparisons"]}
    refusal = rows[("over_refusal", "refusal")]
    assert refusal["items"] == 4 and refusal["against"] == "smollm2:latest"
    assert refusal["low"] <= refusal["difference"] <= refusal["high"]
    encoding = rows[("redteam.encoding", "encoding")]
    assert encoding["items"] == 4  # the same 4 prompts (--eval-limit), output by output
    assert encoding["difference"] == pytest.approx(encoding["after"] - encoding["before"],
                                                   abs=1e-3)  # fmt: skip
    assert ("redteam.encoding", "encoding.InjectBase64") in rows
    with Depot(Settings(home=base_home, user="tests")) as depot:
        card = depot.documents.card(depot.names.show("guarded"))
    assert "### Safety before and after (against smollm2:latest)" in card
    assert "| over_refusal | refusal |" in card and "| redteam.encoding | encoding |" in card
