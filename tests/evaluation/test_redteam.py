"""`depot redteam` end to end on the packaged SmolLM2 and Gemma 3 behind the depot's own server
(a few probes, few prompts, one generation): results stored as safety evaluations with garak's
report and hit log, shown in the card and the AI-BOM; the policy's [safety] section quarantines
a version over a limit, naming the probe, and a release lets it through as a recorded
exception."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.evaluations import SAFETY, EvaluationStore
from servers import DEPOT, asgi_depot

pytestmark = pytest.mark.slow
PROBES = ["-p", "dan.AutoDANCached", "-p", "lmrc.QuackMedicine"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, garak_python: Path) -> Path:
    home = tmp_path_factory.mktemp("redteam") / "depot"
    with Depot(Settings(home=home, user="tests")) as depot:
        depot.intake.pull("smollm2")
        depot.intake.pull("gemma3")
    return home


def depot(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2", "DEPOT_USER": "tests"}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _status(home: Path, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(depot(home, "show", name, "--json").stdout)
    return shown


def _asked(home: Path, name: str) -> tuple[int, str]:
    """A chat request to the depot's server for `name`: status and body."""

    async def ask() -> tuple[int, str]:
        async with asgi_depot(Settings(home=home, user="tests")) as (_, client):
            answer = await client.post("/v1/chat/completions", json={
                "model": name, "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4})  # fmt: skip
            return answer.status_code, answer.text

    return asyncio.run(ask())


def test_smollm2_red_teamed_and_gated_by_the_policy(home: Path) -> None:
    # A policy that requires a red-team run: the version is refused until it has one ...
    (home / "policy.toml").write_text("[safety]\nrequire_redteam = true\n")
    status = _status(home, "smollm2")
    assert status["status"] == "quarantined"
    assert "safety: no red-team run recorded" in " ".join(status["reasons"])
    code, body = _asked(home, "smollm2")
    assert code == 403 and "quarantined" in body

    # ... and `depot redteam` measures it all the same, through a server of its own
    done = depot(home, "redteam", "smollm2", *PROBES, "--max-prompts", "4", "--json")
    result = json.loads(done.stdout)
    assert result["model"] == "smollm2:latest" and result["garak"] == "0.17.1"
    probes = {p["probe"]: p for p in result["probes"]}
    assert set(probes) == {"dan.AutoDANCached", "lmrc.QuackMedicine"}
    dan = probes["dan.AutoDANCached"]
    assert dan["attempts"] == 3 and 0 <= dan["hits"] <= 3
    assert dan["attack_success_rate"] == pytest.approx(dan["hits"] / 3, abs=1e-4)
    low, high = dan["ci95"]
    assert 0 <= low <= dan["attack_success_rate"] <= high <= 1
    # a hit is an output any detector flagged: at least each detector's own count
    assert dan["hits"] >= max(d["fails"] for d in dan["detectors"].values())
    assert probes["lmrc.QuackMedicine"]["attempts"] == 1

    # garak's report and hit log kept, as the evaluation names them
    report = home / result["artifacts"]["report"]["path"]
    assert (
        hashlib.sha256(report.read_bytes()).hexdigest() == (result["artifacts"]["report"]["sha256"])
    )
    entries = [json.loads(line) for line in report.read_text().splitlines()]
    assert entries[-1]["entry_type"] in ("completion", "digest")
    evals = [e for e in entries if e["entry_type"] == "eval"]
    assert {e["probe"] for e in evals} == {"dan.AutoDANCached", "lmrc.QuackMedicine"}
    if dan["hits"]:
        assert (home / result["artifacts"]["hitlog"]["path"]).is_file()

    with Depot(Settings(home=home, user="tests")) as d:
        version = d.names.show("smollm2")
        records = {
            r.task: r for r in EvaluationStore(d.registry).results(version.digest, kind=SAFETY)
        }
        assert set(records) == {"redteam.dan", "redteam.lmrc"}
        dan_record = records["redteam.dan"]
        assert dan_record.metrics["dan"]["n"] == 3 == dan_record.metrics["dan.AutoDANCached"]["n"]
        assert (
            dan_record.settings["artifacts"]["report"]["path"]
            == (result["artifacts"]["report"]["path"])
        )
        assert len(dan_record.items) == 3
        assert EvaluationStore(d.registry).results(version.digest) == []  # not capability
        card = d.documents.card(version)
        bom = d.documents.bom(version)
    assert "## Risks and limitations" in card and "### Red-teaming (garak)" in card
    assert "| dan.AutoDANCached |" in card
    considerations = bom["components"][0]["modelCard"]["considerations"]
    assert any(c["name"].startswith("red-team probe dan (garak): attack success rate")
               for c in considerations["ethicalConsiderations"])  # fmt: skip
    assert _status(home, "smollm2")["status"] == "ok"  # measured: the policy is met

    # SmolLM2 answers jailbreak prompts instead of refusing them
    assert dan["hits"] > 0, "SmolLM2 refused every DAN prompt: pick a probe it fails"
    (home / "policy.toml").write_text("[safety]\nmax_attack_success = {dan = 0.0}\n")
    status = _status(home, "smollm2")
    reason = "safety: probe dan is over the policy's attack success limit 0"
    assert status["status"] == "quarantined" and reason in status["reasons"]
    code, body = _asked(home, "smollm2")
    assert code == 403 and "quarantined" in body

    released = json.loads(
        depot(
            home,
            "quarantine",
            "release",
            "smollm2",
            "--reason",
            "red-team rate accepted for the demo",
            "--json",
        ).stdout
    )
    assert released["status"] == "ok" and reason in released["waived"]
    status = _status(home, "smollm2")
    assert status["status"] == "ok" and status["exception"]["covers"] == [reason]
    audit = depot(home, "audit", "--json").stdout
    assert "red-team rate accepted for the demo" in audit

    # a limit on a probe never run, which the policy requires: a reason the exception does
    # not waive
    (home / "policy.toml").write_text(
        "[safety]\nmax_attack_success = {dan = 0.0, snowball = 0.5}\nrequire_redteam = true\n"
    )
    status = _status(home, "smollm2")
    assert status["status"] == "quarantined"
    assert status["reasons"] == ["safety: probe snowball was not run, and the policy limits it"]


def test_gemma3_red_teamed_with_two_generations(home: Path) -> None:
    (home / "policy.toml").unlink(missing_ok=True)
    done = depot(home, "redteam", "gemma3", "-p", "lmrc.QuackMedicine", "-p",
                 "encoding.InjectBase64", "--max-prompts", "2", "--generations", "2",
                 "--json")  # fmt: skip
    # garak asks for `n = 2` and aborts on any other number of choices: the server's are exact
    probes = {p["probe"]: p for p in json.loads(done.stdout)["probes"]}
    assert probes["lmrc.QuackMedicine"]["attempts"] == 2  # 1 prompt x 2 generations
    assert probes["encoding.InjectBase64"]["attempts"] == 4
    with Depot(Settings(home=home, user="tests")) as d:
        version = d.names.show("gemma3")
        tasks = {r.task for r in EvaluationStore(d.registry).results(version.digest, kind=SAFETY)}
    assert tasks == {"redteam.lmrc", "redteam.encoding"}
    text = depot(home, "redteam", "gemma3", "-p", "lmrc.QuackMedicine").stdout
    assert "lmrc.QuackMedicine" in text and "ATTACK SUCCESS" in text


def test_refused_before_anything_runs(home: Path) -> None:
    done = depot(home, "redteam", "smollm2", "-p", "dan.NoSuchProbe", check=False)
    assert done.returncode != 0 and "unknown probe 'dan.NoSuchProbe'" in done.stderr
    # a version refused for another reason than safety: garak would only meet 403s
    depot(home, "quarantine", "hold", "gemma3", "--reason", "under review")
    done = depot(home, "redteam", "gemma3", "-p", "lmrc.QuackMedicine", check=False)
    assert done.returncode == 1 and "may not be served: held by hand" in done.stderr
    assert not list((home / "redteam").glob("*/garak.json")) or all(
        "NoSuchProbe" not in p.read_text() for p in (home / "redteam").glob("*/garak.json")
    )
