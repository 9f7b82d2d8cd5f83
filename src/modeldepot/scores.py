"""Scores and their comparison: a score with its 95% interval and item count, and the
difference between two models on the same items with its paired bootstrap interval.

The one source of these numbers for every surface: the model card and AI-BOM (describe),
`depot eval`, `depot eval compare` and the leaderboard (evaluation), the web UI. It imports
nothing of the package, so every layer may use it.

Means of per-item scores get the standard error lm-evaluation-harness reports (sample standard
deviation over the square root of n). Their interval is Wilson's when every item scored 0 or 1
(so 2 of 2 right reads 1.000 [0.342, 1.000], not a certainty), else mean ± 1.96 standard
errors.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RANGE", "SCALE", "Z95", "Difference", "Score", "compare", "interval", "mean",
           "mean_stderr", "paired_bootstrap", "pairs", "within"]  # fmt: skip

SCALE = {"judge": 10.0, "chrf": 100.0, "bleu": 100.0}
"""The full scale of metrics not scored 0-1 (to put every score on 0-1 for a mean)."""
RANGE = {"bias_amb": (-1.0, 1.0), "bias_disamb": (-1.0, 1.0),
         "likelihood_diff": (0.0, math.inf)}  # fmt: skip
"""The range of metrics that are not scores from 0 to their scale (BBQ's bias scores, a
difference of log-likelihoods)."""
Z95 = 1.959964


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def mean_stderr(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return float("nan")
    m = mean(values)
    variance = sum((v - m) ** 2 for v in values) / (n - 1)
    return math.sqrt(variance / n)


def _wilson(successes: float, n: int) -> tuple[float, float]:
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def interval(values: Sequence[float]) -> tuple[float, float]:
    """The 95% interval of the mean of per-item `values`."""
    if not values:
        return float("nan"), float("nan")
    if all(v in (0.0, 1.0) for v in values):
        return _wilson(sum(values), len(values))
    m, se = mean(values), mean_stderr(values)
    return m - Z95 * se, m + Z95 * se


def within(metric: str, low: float, high: float) -> tuple[float, float]:
    """An interval cut to the metric's range (0 to its scale, or RANGE's); an unknown bound
    stays so."""
    bottom, top = RANGE.get(metric, (0.0, SCALE.get(metric, 1.0)))
    return (low if math.isnan(low) else max(bottom, low),
            high if math.isnan(high) else min(top, high))  # fmt: skip


@dataclass(frozen=True)
class Score:
    """A metric's value on a task, with its 95% interval and the items it was measured on."""

    metric: str
    value: float
    low: float
    high: float
    items: int
    stderr: float = float("nan")

    @classmethod
    def of(cls, metric: str, recorded: Mapping[str, float]) -> Score:
        """From a recorded metric ({"value", "stderr", "n"}, and "low"/"high" when the run
        recorded them; older runs get mean ± 1.96 standard errors, within the metric's
        scale)."""
        value = float(recorded["value"])
        stderr = float(recorded.get("stderr", float("nan")))
        low, high = within(metric, value - Z95 * stderr, value + Z95 * stderr)
        low, high = recorded.get("low", low), recorded.get("high", high)
        return cls(metric, value, float(low), float(high), int(recorded.get("n", 0)), stderr)

    @property
    def scale(self) -> float:
        return SCALE.get(self.metric, 1.0)

    def scaled(self) -> Score:
        """The same score on 0-1."""
        s = self.scale
        return Score(self.metric, self.value / s, self.low / s, self.high / s, self.items,
                     self.stderr / s)  # fmt: skip

    @property
    def known(self) -> bool:
        """Whether its interval is known (one item, or an old record without one: not)."""
        return not (math.isnan(self.low) or math.isnan(self.high))

    def text(self, digits: int = 3) -> str:
        """`0.620 [0.521, 0.713] n=100` (the interval left out when unknown)."""
        if math.isnan(self.value):
            return "-"
        span = f" [{self.low:.{digits}f}, {self.high:.{digits}f}]" if self.known else ""
        return f"{self.value:.{digits}f}{span} n={self.items}"

    def to_dict(self) -> dict[str, Any]:
        def number(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {"metric": self.metric, "value": number(self.value), "low": number(self.low),
                "high": number(self.high), "stderr": number(self.stderr),
                "items": self.items}  # fmt: skip


@dataclass(frozen=True)
class Difference:
    """Score of A minus score of B on the same items, with a bootstrap confidence interval."""

    a: float
    b: float
    difference: float
    low: float
    high: float
    items: int

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, rounds: int = 2000, seed: int = 1234,
    confidence: float = 0.95,
) -> Difference:  # fmt: skip
    if len(a) != len(b) or not a:
        raise ValueError("a paired comparison needs the same non-empty set of items")
    rng = random.Random(seed)
    n = len(a)
    deltas = [x - y for x, y in zip(a, b, strict=True)]
    resampled = sorted(sum(deltas[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    tail = (1 - confidence) / 2
    low = resampled[int(tail * rounds)]
    high = resampled[min(rounds - 1, int((1 - tail) * rounds))]
    return Difference(mean(a), mean(b), mean(deltas), low, high, n)


Items = Mapping[str, Mapping[str, float]]
"""Per-item scores of a run: item id -> metric -> score."""


def pairs(a: Items, b: Items, metric: str) -> list[tuple[str, float, float]]:
    """(item, A's score, B's score) for every item both scored on `metric`."""
    out = []
    for item, scores in a.items():
        other = b.get(item, {})
        if metric in scores and metric in other:
            x, y = scores[metric], other[metric]
            if not (math.isnan(x) or math.isnan(y)):
                out.append((item, x, y))
    return out


def compare(a: Items, b: Items, metric: str) -> Difference | None:
    """A minus B on `metric` over the items both scored, with its paired bootstrap 95%
    interval (None when they share no item)."""
    found = pairs(a, b, metric)
    if not found:
        return None
    return paired_bootstrap([x for _, x, _ in found], [y for _, _, y in found])
