"""The gap between two models on the same items (per task, per category, overall, with paired
bootstrap intervals), its chart, and the leaderboard of every evaluated model. The numbers
come from `modeldepot.scores`, as the model card's do."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeldepot.errors import NotFound, UsageError
from modeldepot.evaluation.charts import gap_svg
from modeldepot.evaluation.client import ModelRef
from modeldepot.registry.evaluations import EvaluationRecord, EvaluationStore
from modeldepot.scores import SCALE as _SCALE
from modeldepot.scores import Z95, Difference, Score, compare, paired_bootstrap, pairs

__all__ = ["Board", "GapRow", "Standing", "gap_svg", "gap_table", "leaderboard", "write_chart"]


@dataclass(frozen=True)
class GapRow:
    kind: str
    """task, category or overall"""
    label: str
    metric: str
    gap: Difference

    @property
    def scale(self) -> float:
        """What the row's scores are divided by to lie in 0-1 (judge /10, chrF and BLEU /100)."""
        return _SCALE.get(self.metric, 1.0) if self.kind == "task" else 1.0


def _metric(a: EvaluationRecord, b: EvaluationRecord) -> str | None:
    return next((m for m in a.metrics if m in b.metrics), None)


def gap_table(store: EvaluationStore, a: ModelRef, b: ModelRef,
              tasks: set[str] | None = None) -> list[GapRow]:  # fmt: skip
    left = {(r.task, r.task_version): r for r in store.results(a.identity)}
    right = {(r.task, r.task_version): r for r in store.results(b.identity)}
    common = sorted(k for k in left.keys() & right.keys() if tasks is None or k[0] in tasks)
    if not common:
        raise NotFound(f"{a.label} and {b.label} share no evaluated task: run `depot eval` on "
                       "both with the same tasks first")  # fmt: skip
    rows: list[GapRow] = []
    pooled: dict[str, list[tuple[str, float, float]]] = {}
    for key in common:
        ra, rb = left[key], right[key]
        metric = _metric(ra, rb)
        if metric is None:
            continue
        gap = compare(ra.items, rb.items, metric)
        if gap is None:
            continue
        rows.append(GapRow("task", ra.task, metric, gap))
        scale = _SCALE.get(metric, 1.0)
        pooled.setdefault(ra.category, []).extend(
            (f"{ra.task}/{item}", x / scale, y / scale)
            for item, x, y in pairs(ra.items, rb.items, metric)
        )
    everything = [p for paired in pooled.values() for p in paired]
    if len(pooled) > 1:
        for category, paired in sorted(pooled.items()):
            gap = paired_bootstrap([p[1] for p in paired], [p[2] for p in paired])
            rows.append(GapRow("category", category, "score", gap))
    if everything and len(rows) > 1:
        gap = paired_bootstrap([p[1] for p in everything], [p[2] for p in everything])
        rows.append(GapRow("overall", "all items", "score", gap))
    return rows


def write_chart(rows: list[GapRow], path: Path, a_label: str, b_label: str) -> Path:
    """A bar chart of both models' scores per row, with the difference and its interval: PNG
    (through matplotlib) when `path` ends in .png, SVG otherwise."""
    if path.suffix.lower() == ".png":
        return _png(rows, path, a_label, b_label)
    path.write_text(gap_svg(rows, a_label, b_label) + "\n", encoding="utf-8")
    return path


def _png(rows: list[GapRow], path: Path, a_label: str, b_label: str) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise UsageError(
            "PNG charts need matplotlib: pip install 'modeldepot[charts]' (or write .svg)"
        ) from None
    # matplotlib reads `$...$` in any label as mathematics: a label is shown as written
    a_label, b_label = _plain(a_label), _plain(b_label)
    labels = [_plain(f"{r.label} ({r.metric})" if r.kind == "task" else f"[{r.label}]")
              for r in rows]  # fmt: skip
    figure, axes = pyplot.subplots(figsize=(10, 1.2 + 0.55 * max(len(rows), 1)), dpi=100)
    try:
        places = list(range(len(rows)))
        height = 0.38
        axes.barh([p - height / 2 for p in places], [r.gap.a / r.scale for r in rows], height,
                  label=a_label, color="#3b6ea8")  # fmt: skip
        axes.barh([p + height / 2 for p in places], [r.gap.b / r.scale for r in rows], height,
                  label=b_label, color="#d9822b")  # fmt: skip
        for place, row in zip(places, rows, strict=True):
            mark = " *" if row.gap.significant else ""
            axes.annotate(f"{row.gap.difference:+.3f} [{row.gap.low:+.3f}, {row.gap.high:+.3f}]"
                          f"{mark}", (1.02, place), xycoords=("axes fraction", "data"),
                          va="center", fontsize=9)  # fmt: skip
        axes.set_yticks(places, labels)
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        axes.set_xlabel("score (judge /10, chrF and BLEU /100)")
        axes.set_title(f"{a_label} vs {b_label}: A - B [95% CI]")
        axes.legend(loc="lower right", fontsize=9)
        figure.tight_layout()
        figure.savefig(path, format="png", bbox_inches="tight")
    finally:
        pyplot.close(figure)
    return path


def _plain(text: str) -> str:
    return text.replace("$", r"\$")


@dataclass(frozen=True)
class Standing:
    """One model on the leaderboard."""

    subject: str
    model: str
    scores: dict[str, Score]
    """task -> its primary metric, with interval and items."""
    mean: Score | None = None
    """Over the tasks ranked on, each on 0-1 (None when ranked on one task, or not ranked)."""
    rank: int | None = None
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """task -> the run shown: when it ran, the task's version and its limit (None: every
    item)."""

    def to_dict(self, tasks: list[str]) -> dict[str, Any]:
        return {"rank": self.rank, "model": self.model, "subject": self.subject,
                "mean": self.mean.to_dict() if self.mean else None,
                "tasks": {t: self.scores[t].to_dict() | self.runs.get(t, {})
                          for t in tasks if t in self.scores}}  # fmt: skip


@dataclass(frozen=True)
class Board:
    tasks: list[str]
    """Every task any listed model ran."""
    ranked_on: list[str]
    """The tasks the ranking compares: those every listed model ran, or the one asked for."""
    standings: list[Standing]
    """Ranked first, best first; then those that could not be ranked (without the task)."""
    by_task: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "ranked_on": self.ranked_on, "by_task": self.by_task,
                "models": [s.to_dict(self.tasks) for s in self.standings]}  # fmt: skip


def _mean(scores: list[Score]) -> Score:
    """The mean of several tasks' scores on 0-1, its interval combining theirs."""
    scaled = [s.scaled() for s in scores]
    k = len(scaled)
    value = sum(s.value for s in scaled) / k
    halves = [(s.high - s.low) / 2 for s in scaled]
    half = math.sqrt(sum(h * h for h in halves)) / k
    stderr = half / Z95
    return Score("mean", value, value - half, value + half, sum(s.items for s in scaled), stderr)


def leaderboard(store: EvaluationStore, *, task: str | None = None, newest: bool = False,
                include: Callable[[str], bool] = lambda model: True) -> Board:  # fmt: skip
    """Every evaluated model `include` accepts (by its label), ranked by the mean over the
    tasks every one of them ran (scores on 0-1) or, with `task`, by that task alone. A task is
    a task at one version: runs of two versions are two columns (`easy v1`, `easy v2`; just
    `easy` while the board holds one version of it), never compared with each other. Each
    score is the run kept (the one over the most items; with `newest`, the newest run)."""
    results = [r for r in store.results(newest=newest)
               if r.primary() is not None and include(r.model)]  # fmt: skip
    versions: dict[str, set[str]] = {}
    for r in results:
        versions.setdefault(r.task, set()).add(r.task_version)
    scores: dict[str, dict[str, Score]] = {}
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    labels: dict[str, str] = {}
    for r in results:
        metric = r.primary()
        assert metric is not None
        column = r.task if len(versions[r.task]) == 1 else f"{r.task} v{r.task_version}"
        scores.setdefault(r.subject, {})[column] = Score.of(metric, r.metrics[metric])
        runs.setdefault(r.subject, {})[column] = {"at": r.at.isoformat(),
                                                  "version": r.task_version,
                                                  "limit": r.settings.get("limit")}  # fmt: skip
        labels[r.subject] = r.model
    tasks = sorted({t for by_task in scores.values() for t in by_task})
    if task is not None:
        if task not in tasks:
            raise NotFound(f"no listed model was evaluated on {task!r}"
                           + (f"; tasks: {', '.join(tasks)}" if tasks else ""))  # fmt: skip
        ranked_on = [task]
    else:
        ranked_on = sorted(set.intersection(*(set(s) for s in scores.values()))) if scores else []
    standings = []
    for subject, by_task in scores.items():
        if not all(t in by_task for t in ranked_on) or not ranked_on:
            standings.append(Standing(subject, labels[subject], by_task,
                                      runs=runs[subject]))  # fmt: skip
            continue
        mean = _mean([by_task[t] for t in ranked_on]) if len(ranked_on) > 1 else None
        standings.append(Standing(subject, labels[subject], by_task, mean,
                                  runs=runs[subject]))  # fmt: skip

    def key(s: Standing) -> float:
        score = s.mean if s.mean is not None else s.scores[ranked_on[0]].scaled()
        return -score.value if not math.isnan(score.value) else math.inf

    rankable = [s for s in standings if ranked_on and all(t in s.scores for t in ranked_on)]
    rest = sorted((s for s in standings if s not in rankable), key=lambda s: s.model)
    ordered = [Standing(s.subject, s.model, s.scores, s.mean, i, s.runs)
               for i, s in enumerate(sorted(rankable, key=key), 1)]  # fmt: skip
    return Board(tasks, ranked_on, ordered + rest, task)
