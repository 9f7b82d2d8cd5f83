"""Standard errors and the paired bootstrap (and the optional metrics package).

Means of per-item scores get the standard error lm-evaluation-harness reports (sample standard
deviation over the square root of n); corpus-level metrics (BLEU, chrF) get a bootstrap
standard error. Two models on the same items are compared with a paired bootstrap over items.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modeldepot.errors import PackageNotInstalled

__all__ = ["Difference", "bootstrap_stderr", "mean", "mean_stderr", "paired_bootstrap",
           "pass_at_k", "sacrebleu"]  # fmt: skip


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def mean_stderr(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return float("nan")
    m = mean(values)
    variance = sum((v - m) ** 2 for v in values) / (n - 1)
    return math.sqrt(variance / n)


def bootstrap_stderr(
    items: Sequence[object], metric: Callable[[Sequence[object]], float], *,
    rounds: int = 1000, seed: int = 1234,
) -> float:  # fmt: skip
    """Standard deviation of `metric` over resamples of `items` (for corpus metrics)."""
    if len(items) < 2:
        return float("nan")
    rng = random.Random(seed)
    n = len(items)
    values = [metric([items[rng.randrange(n)] for _ in range(n)]) for _ in range(rounds)]
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (rounds - 1))


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


def pass_at_k(n: int, correct: int, k: int) -> float:
    """The unbiased pass@k estimator of the HumanEval paper (n samples, `correct` passing)."""
    if n - correct < k:
        return 1.0
    product = 1.0
    for i in range(n - correct + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def sacrebleu() -> Any:
    """The sacrebleu module (chrF, BLEU), from the `evaluation` extra."""
    try:
        import sacrebleu as module
    except ImportError:
        raise PackageNotInstalled(
            "chrF and BLEU need the sacrebleu package: pip install 'modeldepot[evaluation]'"
        ) from None
    return module
