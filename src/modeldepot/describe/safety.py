"""A version's safety results (red-teaming with garak, BBQ and CrowS-Pairs bias, over-refusal)
as its card's risks and limitations, its AI-BOM's `modelCard.considerations`, and the
difference against the version it was made from.

Rows: {"task", "metric", "label", "value", "low", "high", "items"}, one per metric of every
safety evaluation kept (a red-team run gives its probe module and each class).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modeldepot.registry.evaluations import REDTEAM, EvaluationRecord
from modeldepot.scores import Score, compare

__all__ = ["START", "card_block", "comparisons", "considerations", "headlines", "limitations",
           "rows"]  # fmt: skip

START = "[//]: # (depot:generated safety)"
END = "[//]: # (depot:end safety)"

_LABELS = {
    "bias_disamb": "bias score in disambiguated contexts (-1 against the stereotype, 0 none, "
    "+1 with it)",
    "bias_amb": "bias score in ambiguous contexts (-1 against the stereotype, 0 none, +1 with it)",
    "acc_disamb": "accuracy in disambiguated contexts",
    "acc_amb": "accuracy in ambiguous contexts",
    "acc": "accuracy",
    "pct_stereotype": "share of pairs where the stereotyped sentence is likelier (0.5: none)",
    "likelihood_diff": "mean log-likelihood gap between the sentences of a pair",
    "refusal": "share of safe prompts refused (lower is better)",
}
_GROUPS = {
    "bbq": "the groups of BBQ's 11 categories (age, disability, gender identity, nationality, "
    "physical appearance, race and ethnicity, religion, socio-economic status, sexual "
    "orientation, and race crossed with gender and with status)",
    "crows_pairs": "the groups of CrowS-Pairs' 9 bias types (race and colour, gender, "
    "nationality, socio-economic status, religion, sexual orientation, age, physical "
    "appearance, disability)",
}


def _rounded(x: float) -> float | None:
    return None if x != x else round(x, 4)


_HEADLINES = ("bias_disamb", "bias_amb", "pct_stereotype", "refusal")


def headlines(record: EvaluationRecord) -> list[str]:
    """The metrics of a safety evaluation that a page charts: a red-team run's module rate,
    the bias scores, the refusal rate."""
    if record.task.startswith(REDTEAM):
        return [m for m in record.metrics if "." not in m]
    return [m for m in record.metrics if m in _HEADLINES] or list(record.metrics)[:1]


def rows(records: Iterable[EvaluationRecord]) -> tuple[dict[str, Any], ...]:
    out = []
    for r in sorted(records, key=lambda r: r.task):
        for metric, recorded in r.metrics.items():
            score = Score.of(metric, recorded)
            red = r.task.startswith(REDTEAM)
            out.append({
                "task": r.task, "metric": metric,
                "label": f"attack success rate of {metric}" if red
                else _LABELS.get(metric, metric),
                "value": _rounded(score.value),
                "low": _rounded(score.low) if score.known else None,
                "high": _rounded(score.high) if score.known else None,
                "items": score.items, "redteam": red,
            })  # fmt: skip
    return tuple(out)


def comparisons(after: Iterable[EvaluationRecord], before: Iterable[EvaluationRecord],
                against: str) -> tuple[dict[str, Any], ...]:  # fmt: skip
    """Every safety metric of `after` against the same task's run in `before`, over the items
    both scored (paired bootstrap 95% interval): a red-team run compares output by output
    when both ran with the same seed."""
    earlier = {(r.task, r.task_version): r for r in before}
    out = []
    for r in sorted(after, key=lambda r: r.task):
        old = earlier.get((r.task, r.task_version))
        if old is None:
            continue
        for metric in r.metrics:
            gap = compare(r.items, old.items, metric)
            if gap is None:
                continue
            out.append({"task": r.task, "metric": metric, "before": round(gap.b, 4),
                        "after": round(gap.a, 4), "difference": round(gap.difference, 4),
                        "low": round(gap.low, 4), "high": round(gap.high, 4),
                        "items": gap.items, "against": against})  # fmt: skip
    return tuple(out)


def _span(row: dict[str, Any]) -> str:
    if row["low"] is None or row["high"] is None:
        return "-"
    return f"[{row['low']}, {row['high']}]"


def card_block(found: tuple[dict[str, Any], ...], gaps: tuple[dict[str, Any], ...]) -> list[str]:
    """The card's generated risks-and-limitations block (between its markers)."""
    red = [r for r in found if r["redteam"]]
    other = [r for r in found if not r["redteam"]]
    lines = [START, "", "## Risks and limitations", ""]
    if not found:
        lines += ["- No safety evaluation recorded (`depot redteam`, `depot eval --suite "
                  "safety`).", ""]  # fmt: skip
    if red:
        lines += ["### Red-teaming (garak)", "",
                  "| probe | attack success rate | 95% interval | outputs |", "|---|---|---|---|",
                  *(f"| {r['metric']} | {r['value']} | {_span(r)} | {r['items']} |"
                    for r in red),
                  "",
                  "garak's detectors are string matches: a model that answers anything looks "
                  "vulnerable to every jailbreak, and some count a refusal as a hit. Read the "
                  "hit log kept with the run before trusting a rate.", ""]  # fmt: skip
    if other:
        lines += ["### Bias and refusals", "",
                  "| task | measure | value | 95% interval | items |", "|---|---|---|---|---|",
                  *(f"| {r['task']} | {r['label']} | {r['value']} | {_span(r)} | {r['items']} |"
                    for r in other),
                  ""]  # fmt: skip
        if any(r["task"] == "crows_pairs" for r in other):
            lines += ["CrowS-Pairs' authors warn that its data is unreliable and may not "
                      "indicate social bias in a language model.", ""]  # fmt: skip
    if gaps:
        lines += [f"### Safety before and after (against {gaps[0]['against']})", "",
                  "| task | measure | before | after | difference | 95% interval | items |",
                  "|---|---|---|---|---|---|---|",
                  *(f"| {g['task']} | {g['metric']} | {g['before']} | {g['after']} | "
                    f"{g['difference']:+} | [{g['low']:+}, {g['high']:+}] | {g['items']} |"
                    for g in gaps),
                  ""]  # fmt: skip
    return [*lines, END, ""]


def limitations(found: tuple[dict[str, Any], ...]) -> str:
    """One line for the AI Act's "known limitations and risks" (empty when none measured)."""
    parts = []
    for r in found:
        if r["redteam"] and "." in r["metric"]:
            continue  # the module's line stands for its classes
        parts.append(f"{r['metric'] if r['redteam'] else r['task'] + ' ' + r['metric']} "
                     f"{r['value']} {_span(r)} over {r['items']}")  # fmt: skip
    return "; ".join(parts)


def considerations(found: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """CycloneDX `modelCard.considerations` entries: red-team rates as ethical
    considerations, bias as fairness assessments, over-refusal as a technical limitation."""
    ethical = [{"name": f"red-team probe {r['metric']} (garak): attack success rate "
                        f"{r['value']} {_span(r)} over {r['items']} outputs"}
               for r in found if r["redteam"]]  # fmt: skip
    fairness = [{"groupAtRisk": _GROUPS.get(r["task"], r["task"]),
                 "harms": f"{r['task']}: {r['label']} {r['value']} {_span(r)} over "
                          f"{r['items']} items"}
                for r in found if r["task"] in _GROUPS]  # fmt: skip
    limits = [f"{r['task']}: {r['label']} {r['value']} {_span(r)} over {r['items']} prompts"
              for r in found if r["metric"] == "refusal"]  # fmt: skip
    out: dict[str, Any] = {}
    if ethical:
        out["ethicalConsiderations"] = ethical
    if fairness:
        out["fairnessAssessments"] = fairness
    if limits:
        out["technicalLimitations"] = limits
    return out
