"""The scoring engine itself on the real SmolLM2: prompts decoded together as a prefix tree
give each prompt what scoring it alone gives, whatever the shape of the tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeldepot.runtime.scorer import Scorer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scorer(smollm2_path: Path) -> Scorer:
    return Scorer(str(smollm2_path), threads=2, context=1024)


@pytest.fixture(scope="module")
def alone(smollm2_path: Path) -> Scorer:
    return Scorer(str(smollm2_path), threads=2, context=1024)


QUESTIONS = ["Q: Is the sky blue?\nA:", "Q: Can fish fly?\nA:", "Q: What is two plus two?\nA:"]
ANSWERS = [" yes", " no", " it depends on the weather"]


def test_a_tree_of_prompts_matches_each_prompt_alone(scorer: Scorer, alone: Scorer) -> None:
    prompts: list[str | list[int]] = []
    starts: list[int | None] = []
    for question in QUESTIONS:
        for text in (question, *(question + a for a in ANSWERS)):
            prompts.append(text)
            starts.append(len(question))
    prompts += ["Q: Is the sky blue?\nA: yes", "Unrelated text, no shared words."]  # a repeat
    starts += [None, None]
    together = scorer.score_all(prompts, 2, 0, starts)
    assert len(together) == len(prompts)
    differences = []
    for prompt, start, mine in zip(prompts, starts, together, strict=True):
        alone.score("Something else first.", 0, 0)  # nothing shared with the cache
        theirs = alone.score(prompt, 2, 0, start)
        assert mine["tokens"] == theirs["tokens"]
        assert [lp is None for lp in mine["logprobs"]] == [lp is None for lp in theirs["logprobs"]]
        for a, b, top_a, top_b in zip(mine["logprobs"], theirs["logprobs"], mine["top"],
                                      theirs["top"], strict=True):  # fmt: skip
            if a is None:
                continue
            differences.append(abs(a - b))
            assert len(top_a) == len(top_b) == 2
            assert top_a[0][0] == top_b[0][0] or abs(top_a[0][2] - top_a[1][2]) < 0.2
    # the same rows: llama.cpp's arithmetic moves with the batch by hundredths, a row taken
    # from the wrong place by whole nats
    assert max(differences) < 0.5 and sum(differences) / len(differences) < 0.05
    # only the answers are scored when `from` is given
    answer = together[1]
    scored = [i for i, lp in enumerate(answer["logprobs"]) if lp is not None]
    assert "".join(answer["pieces"][scored[0] :]) == ANSWERS[0]
    assert all(lp is None for lp in together[0]["logprobs"])


def test_too_many_prompts_for_one_batch_still_match(scorer: Scorer, alone: Scorer) -> None:
    prompts: list[str | list[int]] = [f"Item {n}: the colour of grass is" for n in range(40)]
    together = scorer.score_all(prompts, 0, 0)
    for prompt, mine in zip(prompts[::13], together[::13], strict=True):
        theirs = alone.score(prompt, 0, 0)
        assert mine["tokens"] == theirs["tokens"]
        assert all(
            abs(a - b) < 0.5
            for a, b in zip(mine["logprobs"][1:], theirs["logprobs"][1:], strict=True)
        )
