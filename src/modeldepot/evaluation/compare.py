"""The gap between two models on the same items (per task, per category, overall, with paired
bootstrap intervals), its chart, and the leaderboard of every evaluated model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from modeldepot.errors import NotFound, UsageError
from modeldepot.evaluation.charts import gap_svg
from modeldepot.evaluation.client import ModelRef
from modeldepot.evaluation.stats import Difference, paired_bootstrap
from modeldepot.registry.evaluations import EvaluationRecord, EvaluationStore

__all__ = ["GapRow", "gap_svg", "gap_table", "leaderboard", "write_chart"]

_SCALE = {"judge": 10.0, "chrf": 100.0, "bleu": 100.0}


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


def _pairs(a: EvaluationRecord, b: EvaluationRecord, metric: str) -> list[tuple[str, float, float]]:
    scale = _SCALE.get(metric, 1.0)
    out = []
    for item, scores in a.items.items():
        other = b.items.get(item, {})
        if metric in scores and metric in other:
            x, y = scores[metric], other[metric]
            if not (math.isnan(x) or math.isnan(y)):
                out.append((f"{a.task}/{item}", x / scale, y / scale))
    return out


def gap_table(store: EvaluationStore, a: ModelRef, b: ModelRef,
              tasks: set[str] | None = None) -> list[GapRow]:  # fmt: skip
    left = {(r.task, r.task_version): r for r in store.latest(a.identity)}
    right = {(r.task, r.task_version): r for r in store.latest(b.identity)}
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
        pairs = _pairs(ra, rb, metric)
        if not pairs:
            continue
        scale = _SCALE.get(metric, 1.0)
        gap = paired_bootstrap([p[1] * scale for p in pairs], [p[2] * scale for p in pairs])
        rows.append(GapRow("task", ra.task, metric, gap))
        pooled.setdefault(ra.category, []).extend(pairs)
    everything = [p for pairs in pooled.values() for p in pairs]
    if len(pooled) > 1:
        for category, pairs in sorted(pooled.items()):
            gap = paired_bootstrap([p[1] for p in pairs], [p[2] for p in pairs])
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


def leaderboard(store: EvaluationStore) -> tuple[list[str], list[tuple[str, dict[str, float],
                                                                         float]]]:  # fmt: skip
    """Tasks, and each model with its primary score per task and the mean over them (scores
    scaled to 0-1), best first."""
    by_model: dict[str, dict[str, float]] = {}
    labels: dict[str, str] = {}
    for r in store.latest():
        metric = r.primary()
        if metric is None:
            continue
        by_model.setdefault(r.subject, {})[r.task] = r.metrics[metric]["value"] / _SCALE.get(
            metric, 1.0)  # fmt: skip
        labels[r.subject] = r.model
    tasks = sorted({task for scores in by_model.values() for task in scores})
    ranked = sorted(
        ((labels[s], scores, sum(scores.values()) / len(scores)) for s, scores in by_model.items()),
        key=lambda row: -row[2],
    )
    return tasks, ranked
