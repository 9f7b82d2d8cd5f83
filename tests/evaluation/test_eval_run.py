"""`depot eval` on the real packaged models: scores with standard errors, a run killed midway
resumes without redoing finished items, HumanEval runs in the sandbox, and `depot eval
compare` gives the gap table and chart between SmolLM2 and Gemma 3."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot

pytestmark = pytest.mark.slow
DEPOT = [sys.executable, "-c", "from modeldepot.cli import main; main()"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("eval") / "depot"
    with Depot(Settings(home=home, user="tests")) as depot:
        depot.intake.pull("smollm2")
        depot.intake.pull("gemma3")
    return home


def depot(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2"}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _json(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _cached(home: Path) -> int:
    path = home / "eval-cache.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return int(db.execute("SELECT count(*) FROM responses").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _engines(home: Path) -> list[int]:
    """Processes running an engine on a blob of `home`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if "modeldepot.runtime" in command and str(home) in command:
            found.append(int(entry.name))
    return found


def test_killed_run_resumes_and_a_repeat_is_free(home: Path) -> None:
    args = ["eval", "smollm2", "--task", "bbh_sports_understanding", "--limit", "40", "--json"]
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2"}
    env.pop("DEPOT_DATABASE_URL", None)
    proc = subprocess.Popen([*DEPOT, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while _cached(home) < 10 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _cached(home)
    assert 10 <= done_before < 40, "the run should have been killed midway"
    deadline = time.monotonic() + 20  # its engine does not outlive it
    while _engines(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _engines(home)

    resumed = _json(depot(home, *args))[0]
    assert resumed["items"] == 40 and resumed["cached"] >= done_before
    metrics = resumed["metrics"]
    assert set(metrics) == {"acc", "acc_norm"}
    assert 0 <= metrics["acc"]["value"] <= 1 and 0 < metrics["acc"]["stderr"] < 0.2
    again = _json(depot(home, *args))[0]
    assert again["cached"] == 40 and again["metrics"] == metrics

    table = depot(home, "eval", "smollm2", "--task", "bbh_sports_understanding", "--limit", "40")
    assert "acc_norm" in table.stdout and "95% INTERVAL" in table.stdout


def test_humaneval_is_scored_by_running_the_tests_in_the_sandbox(home: Path) -> None:
    result = _json(depot(home, "eval", "smollm2", "--task", "humaneval", "--limit", "3",
                         "--max-tokens", "160", "--json"))[0]  # fmt: skip
    assert result["items"] == 3 and "pass@1" in result["metrics"]  # type: ignore[operator]


def test_letters_and_the_gap_between_two_models(home: Path, tmp_path: Path) -> None:
    letter = _json(depot(home, "eval", "smollm2", "--task", "bbh_navigate", "--limit", "6",
                         "--mc", "letter", "--json"))[0]  # fmt: skip
    assert set(letter["metrics"]) == {"acc_letter"}  # type: ignore[arg-type]

    for model in ("smollm2", "gemma3"):
        depot(home, "eval", model, "--task", "bbh_navigate", "--task", "bbh_object_counting",
              "--limit", "12")  # fmt: skip
    chart = tmp_path / "gap.svg"
    rows = _json(depot(home, "eval", "compare", "smollm2", "gemma3", "--chart", str(chart),
                       "--json"))  # fmt: skip
    kinds = {(r["kind"], r["label"]) for r in rows}
    assert {("task", "bbh_navigate"), ("task", "bbh_object_counting"),
            ("overall", "all items")} <= kinds  # fmt: skip
    navigate = next(r for r in rows if r["label"] == "bbh_navigate")
    assert navigate["items"] == 12 and navigate["low"] <= navigate["difference"] <= navigate[
        "high"]  # fmt: skip
    svg = chart.read_text()
    assert svg.startswith("<svg") and "smollm2" in svg and "gemma3" in svg
    png = tmp_path / "gap.png"
    depot(home, "eval", "compare", "smollm2", "gemma3", "--chart", str(png))
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    board = _json(depot(home, "leaderboard", "--json"))
    assert {b["model"] for b in board["models"]} >= {"smollm2:latest", "gemma3:latest"}
    assert all(b["tasks"]["bbh_navigate"]["items"] == 12 for b in board["models"]
               if "bbh_navigate" in b["tasks"])  # fmt: skip
    card = depot(home, "card", "gemma3").stdout
    assert "model-index:" in card and "bbh_navigate" in card
    depot(home, "bom", "gemma3", "-o", str(tmp_path / "bom.json"))
    bom = json.loads((tmp_path / "bom.json").read_text())
    metrics = bom["components"][0]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert {m["slice"] for m in metrics} >= {"bbh_navigate (12 items)",
                                             "bbh_object_counting (12 items)"}  # fmt: skip
    assert all("confidenceInterval" in m for m in metrics)


def test_errors_are_clear(home: Path) -> None:
    missing = depot(home, "eval", "smollm2", check=False)
    assert missing.returncode == 2 and "--task" in missing.stderr
    unknown = depot(home, "eval", "nosuchmodel", "--task", "bbh_navigate", check=False)
    assert unknown.returncode == 1 and "nosuchmodel" in unknown.stderr
    judge = depot(home, "eval", "smollm2", "--task", "mtbench", check=False)
    assert judge.returncode == 2 and "--judge" in judge.stderr


def test_judged_answers_and_generated_text_metrics(home: Path, tmp_path: Path) -> None:
    # Bounded (--max-tokens) so that its duration does not grow with a rambling answer.
    judged = _json(depot(home, "eval", "smollm2", "--task", "mtbench", "--limit", "1",
                         "--judge", "smollm2", "--max-tokens", "48", "--json"))[0]  # fmt: skip
    assert judged["items"] == 1 and set(judged["metrics"]) <= {"judge"}  # type: ignore[arg-type]

    (tmp_path / "echo.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in ("red fox", "blue sky", "green tree"))
    )
    (tmp_path / "echo.yaml").write_text(
        "name: repeat_words\nversion: 1\noutput: generate\ndata: echo.jsonl\n"
        'prompt: "Repeat: {{ text }}\\nRepeated:"\ntarget: text\nstop: ["\\n"]\n'
        "max_tokens: 8\nmetrics: [chrf, bleu]\n"
    )
    scored = _json(depot(home, "eval", "smollm2", "--task", str(tmp_path / "echo.yaml"),
                         "--json"))[0]  # fmt: skip
    metrics = scored["metrics"]
    assert set(metrics) == {"chrf", "bleu"}  # type: ignore[arg-type]
    assert all(0 <= m["value"] <= 100 for m in metrics.values())  # type: ignore[union-attr]


def test_items_scored_together_fail_alone(home: Path, tmp_path: Path) -> None:
    """Likelihood items are sent to the engine several to a request; an item the engine
    refuses (longer than its context) fails on its own and the others are still scored."""
    rows = [{"question": f"Is {n} an even number?", "choices": ["yes", "no"],
             "target": n % 2} for n in range(6)]  # fmt: skip
    rows[3]["question"] = "word " * 3000 + "Is 3 an even number?"
    (tmp_path / "even.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "even.yaml").write_text(
        "name: even\nversion: 1\noutput: multiple_choice\ndata: even.jsonl\n"
        'prompt: "Q: {{ question }}\\nA:"\nchoices: choices\ntarget: target\n'
    )
    done = depot(home, "eval", "smollm2", "--task", str(tmp_path / "even.yaml"), "--json")
    result = _json(done)[0]
    assert result["items"] == 5
    assert len(result["failed"]) == 1 and result["failed"][0].startswith("3: ")  # type: ignore[index]
    assert result["metrics"]["acc"]["n"] == 5  # type: ignore[index]
