"""The leaderboard ranks models on the tasks they all ran, keeps a full run over a later partial
one, and shows every score with its interval and item count; the model card takes its numbers
(and its comparisons) from the same module as `depot eval compare`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.evaluation.compare import leaderboard
from modeldepot.evaluation.grading import ItemResult
from modeldepot.evaluation.runs import aggregate
from modeldepot.evaluation.tasks import builtin_tasks
from modeldepot.registry.evaluations import EvaluationRecord, EvaluationStore
from modeldepot.scores import Score, compare, interval

TASK = next(iter(builtin_tasks().values()))


def _record(store: EvaluationStore, model: str, task: str, correct: list[float],
            *, limit: int | None = None, minutes: int = 0, version: str = "1") -> None:  # fmt: skip
    items = {f"i{n}": {"acc": v} for n, v in enumerate(correct)}
    results = [ItemResult(i, {"acc": v}) for i, v in zip(items, correct, strict=True)]
    store.record(EvaluationRecord(
        subject=f"remote:{model}", model=model, task=task, task_version=version, category="test",
        metrics=aggregate(TASK, results), items=items, settings={"limit": limit},
        at=datetime.now(UTC) + timedelta(minutes=minutes)), actor="tester")  # fmt: skip


def _board(any_depot: Depot) -> EvaluationStore:
    store = EvaluationStore(any_depot.registry)
    # `strong` ran two tasks (0.9 and 0.5); `narrow` ran only the easy one (0.8).
    _record(store, "strong", "easy", [1.0] * 9 + [0.0] * 1)
    _record(store, "strong", "hard", [1.0] * 5 + [0.0] * 5)
    _record(store, "narrow", "easy", [1.0] * 8 + [0.0] * 2)
    _record(store, "weak", "easy", [1.0] * 6 + [0.0] * 4)
    _record(store, "weak", "hard", [0.0] * 10)
    return store


def test_models_are_ranked_on_the_tasks_every_one_of_them_ran(any_depot: Depot) -> None:
    store = _board(any_depot)
    board = leaderboard(store)
    assert board.tasks == ["easy", "hard"] and board.ranked_on == ["easy"]
    # A mean over each model's own tasks would put `narrow` (0.8) above `strong` (0.7), which
    # beats it on the one task both ran.
    assert [(s.model, s.rank) for s in board.standings] == [
        ("strong", 1), ("narrow", 2), ("weak", 3)]  # fmt: skip
    hard = leaderboard(store, task="hard")
    assert [(s.model, s.rank) for s in hard.standings] == [
        ("strong", 1), ("weak", 2), ("narrow", None)]  # fmt: skip
    both = leaderboard(store, include=lambda model: model != "narrow")
    assert both.ranked_on == ["easy", "hard"]
    first = both.standings[0]
    assert first.model == "strong" and first.mean is not None
    assert first.mean.items == 20 and first.mean.low < 0.7 < first.mean.high
    assert round(first.mean.value, 3) == 0.7


def test_a_later_partial_run_does_not_replace_the_full_one(any_depot: Depot) -> None:
    store = _board(any_depot)
    _record(store, "weak", "easy", [1.0, 1.0], limit=2, minutes=5)  # 1.000 from 2 items
    score = next(s for s in leaderboard(store).standings if s.model == "weak").scores["easy"]
    assert (score.value, score.items) == (0.6, 10)
    newest = next(s for s in leaderboard(store, newest=True).standings if s.model == "weak")
    kept = newest.scores["easy"]
    assert (kept.value, kept.items) == (1.0, 2)
    assert kept.text() == "1.000 [0.342, 1.000] n=2"  # not a certainty from two items
    assert newest.runs["easy"]["limit"] == 2


def test_a_partial_run_of_a_new_task_version_is_its_own_column(any_depot: Depot) -> None:
    """A `--limit 2` run of version 2 of a task neither replaces nor outranks the full runs of
    version 1: the two versions are two columns, and only models that ran one are ranked on it."""
    store = _board(any_depot)
    _record(store, "weak", "easy", [1.0, 1.0], limit=2, minutes=5, version="2")  # 1.000 of 2
    board = leaderboard(store)
    assert board.tasks == ["easy v1", "easy v2", "hard"] and board.ranked_on == ["easy v1"]
    assert [(s.model, s.rank) for s in board.standings] == [
        ("strong", 1), ("narrow", 2), ("weak", 3)]  # fmt: skip
    weak = board.standings[2]
    assert (weak.scores["easy v1"].value, weak.scores["easy v1"].items) == (0.6, 10)
    assert weak.runs["easy v2"] | {"at": None} == {"at": None, "version": "2", "limit": 2}
    newest = leaderboard(store, newest=True)
    assert newest.ranked_on == ["easy v1"] and newest.standings[0].model == "strong"
    alone = leaderboard(store, task="easy v2")
    assert (alone.standings[0].model, alone.standings[0].rank) == ("weak", 1)


def test_the_cli_and_the_json_show_intervals_and_item_counts(tmp_path: Path) -> None:
    from modeldepot.cli import app

    home = tmp_path / "home"
    with Depot(Settings(home=home)) as d:
        _board(d)
    env = {"DEPOT_HOME": str(home), "DEPOT_DATABASE_URL": ""}
    shown = CliRunner().invoke(app, ["leaderboard"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "0.800 [0.490, 0.943] n=10" in shown.output and "ranked on easy" in shown.output
    data = json.loads(CliRunner().invoke(app, ["leaderboard", "--json"], env=env).output)
    assert data["ranked_on"] == ["easy"]
    top = data["models"][0]
    assert top["model"] == "strong" and top["rank"] == 1
    assert top["tasks"]["easy"]["items"] == 10 and top["tasks"]["easy"]["low"] > 0.48
    missing = CliRunner().invoke(app, ["leaderboard", "--task", "nope"], env=env)
    assert missing.exit_code != 0 and "no listed model was evaluated on 'nope'" in missing.output


def test_intervals() -> None:
    low, high = interval([1.0, 1.0])
    assert round(low, 3) == 0.342 and high == 1.0
    low, high = interval([0.5, 0.7, 0.9])
    assert low < 0.7 < high
    old = Score.of("acc", {"value": 0.5, "stderr": 0.1, "n": 25})  # recorded before intervals
    assert round(old.low, 3) == 0.304 and old.items == 25
    assert Score.of("acc", {"value": 0.9, "stderr": 0.1, "n": 8}).high == 1.0  # within 0-1


def test_one_comparison_for_the_card_and_eval_compare(any_depot: Depot) -> None:
    """The card's before/after and `depot eval compare` pair the same items the same way."""
    a = {f"i{n}": {"acc": float(n % 3 == 0)} for n in range(30)}
    b = {f"i{n}": {"acc": float(n % 2 == 0)} for n in range(30)}
    gap = compare(a, b, "acc")
    assert gap is not None and gap.items == 30 and round(gap.difference, 4) == round(
        10 / 30 - 15 / 30, 4)  # fmt: skip
    # describe (the card) no longer reaches into evaluation for its numbers.
    code = ("import sys, modeldepot.describe.documents; "
            "print([m for m in sys.modules if m.startswith('modeldepot.evaluation')])")  # fmt: skip
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)  # fmt: skip
    assert found.stdout.strip() == "[]"
