"""Prompt scoring (`echo` + `logprobs`), the way lm-evaluation-harness's local-completions
model asks for it, with the real SmolLM2."""

from __future__ import annotations

import math

import openai
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="local", max_retries=0)


def _score(client: openai.OpenAI, prompt: object, **extra: object) -> list[object]:
    reply = client.completions.create(
        model="smollm2", prompt=prompt, echo=True, logprobs=1, max_tokens=0,  # type: ignore[arg-type]
        temperature=0, **extra,  # type: ignore[arg-type]
    )  # fmt: skip
    return reply.choices  # type: ignore[return-value]


def test_echo_scores_every_prompt_token(client: openai.OpenAI) -> None:
    prompt = "The capital of France is Paris"
    (choice,) = _score(client, prompt)
    logprobs = choice.logprobs  # type: ignore[attr-defined]
    assert choice.text == prompt  # type: ignore[attr-defined]
    assert "".join(logprobs.tokens) == prompt
    assert logprobs.token_logprobs[0] is None
    assert all(lp <= 0 for lp in logprobs.token_logprobs[1:])
    assert logprobs.text_offset[0] == 0 and logprobs.text_offset == sorted(logprobs.text_offset)
    assert all(len(top) == 1 for top in logprobs.top_logprobs[1:])


def test_plausible_continuations_score_higher(client: openai.OpenAI) -> None:
    def continuation(answer: str) -> float:
        (choice,) = _score(client, "The capital of France is" + answer)
        context = len(_score(client, "The capital of France is")[0].logprobs.tokens)  # type: ignore[attr-defined]
        return sum(choice.logprobs.token_logprobs[context:])  # type: ignore[attr-defined]

    assert continuation(" Paris") > continuation(" a banana") + 2


def test_shared_prefix_reuse_gives_the_same_numbers(client: openai.OpenAI) -> None:
    question = "Question: which animal says moo? Answer:"
    cold = _score(client, question + " a cow")[0].logprobs.token_logprobs  # type: ignore[attr-defined]
    _score(client, question + " a sheep")  # leaves the question in the cache
    warm = _score(client, question + " a cow")[0].logprobs.token_logprobs  # type: ignore[attr-defined]
    assert all(
        (a is None and b is None) or math.isclose(a, b, abs_tol=1e-3)
        for a, b in zip(cold, warm, strict=True)
    )


def test_lm_eval_payload_with_token_ids_and_one_generated_token(client: openai.OpenAI) -> None:
    """lm-evaluation-harness sends token ids, `max_tokens: 1`, and reads [ctxlen:-1]."""
    (text_choice,) = _score(client, "Hello world")
    ids_reply = client.completions.create(
        model="smollm2", prompt=[[19556, 905], [19556]], echo=True, logprobs=1, max_tokens=1,
        temperature=0,
    )  # fmt: skip
    assert len(ids_reply.choices) == 2
    first = ids_reply.choices[0].logprobs
    assert len(first.tokens) == 3  # two prompt tokens and one generated  # type: ignore[union-attr]
    greedy = first.top_logprobs[-1]  # type: ignore[union-attr]
    assert max(greedy.values()) == first.token_logprobs[-1]  # type: ignore[union-attr]
    assert ids_reply.usage is not None and ids_reply.usage.completion_tokens == 2
    assert text_choice.logprobs.tokens  # type: ignore[attr-defined]


def test_too_long_prompt_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        _score(client, "word " * 5000)


def test_logprobs_from_scores_only_the_continuation(client: openai.OpenAI) -> None:
    question = "Question: which animal says moo? Answer:"
    full = _score(client, question + " a cow")[0].logprobs  # type: ignore[attr-defined]
    part = _score(client, question + " a cow", extra_body={"logprobs_from": len(question)})[0]
    part = part.logprobs  # type: ignore[attr-defined]
    assert part.tokens == full.tokens
    scored = [i for i, lp in enumerate(part.token_logprobs) if lp is not None]
    assert scored and "".join(full.tokens[scored[0] :]) == " a cow"
    for i in scored:
        assert math.isclose(part.token_logprobs[i], full.token_logprobs[i], abs_tol=1e-3)
        assert part.top_logprobs[i] is not None


def test_logprobs_from_must_be_an_offset(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="logprobs_from"):
        _score(client, "Hello", extra_body={"logprobs_from": "3"})
    with pytest.raises(openai.BadRequestError, match="logprobs_from"):
        _score(client, ["Hello", "Hello there"], extra_body={"logprobs_from": [5]})


def test_logprobs_from_one_offset_per_prompt(client: openai.OpenAI) -> None:
    prompts = ["Colour: red", "Animal: a cow"]
    first, second = _score(client, prompts, extra_body={"logprobs_from": [8, 7]})
    for choice, tail in ((first, " red"), (second, " a cow")):
        logprobs = choice.logprobs  # type: ignore[attr-defined]
        scored = [i for i, lp in enumerate(logprobs.token_logprobs) if lp is not None]
        assert "".join(logprobs.tokens[scored[0] :]) == tail


def test_prompts_of_one_request_scored_together_match_alone(client: openai.OpenAI) -> None:
    """A question and its answers in one request share one decode (each answer on a sequence
    of its own); the numbers are those of each prompt scored on its own."""
    question = "Question: what colour is the sky on a clear day? Answer:"
    answers = [" blue", " green", " a shade of grey"]
    together = _score(client, [question, *(question + a for a in answers)])
    assert len(together) == 4
    for choice, answer in zip(together[1:], answers, strict=True):
        alone = _score(client, "Unrelated text first.")  # leaves another prompt in the cache
        alone = _score(client, question + answer)[0].logprobs  # type: ignore[attr-defined]
        mine = choice.logprobs  # type: ignore[attr-defined]
        assert mine.tokens == alone.tokens
        for a, b in zip(mine.token_logprobs[1:], alone.token_logprobs[1:], strict=True):
            assert math.isclose(a, b, abs_tol=1e-2)
    blue, green = (sum(c.logprobs.token_logprobs[-1:]) for c in together[1:3])  # type: ignore[attr-defined]
    assert blue > green
