"""What evaluation alone needs beyond `modeldepot.scores` (means, intervals, the paired
comparison): a bootstrap standard error for corpus-level metrics (BLEU, chrF), pass@k, and the
optional metrics package."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from modeldepot.errors import PackageNotInstalled
from modeldepot.scores import mean

__all__ = ["bootstrap_stderr", "pass_at_k", "sacrebleu"]


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
