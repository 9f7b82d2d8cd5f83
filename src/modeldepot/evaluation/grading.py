"""Turning model responses into per-item scores, one function per kind of task.

Multiple choice is scored two ways: by the log-likelihood of each choice after the context
(local models; `acc`, and `acc_norm` divided by the choice's length in characters, exactly as
lm-evaluation-harness does), or by the letter a chat model writes (`acc_letter`), so that a
proprietary API is scored on the same items. Generated text is scored by exact match after
answer extraction, or by chrF / BLEU; code by running the problem's tests in the sandbox; open
questions by a judge model (MT-Bench's prompts).
"""

from __future__ import annotations

import asyncio
import math
import re
import string
from dataclasses import dataclass, field
from typing import Any

from modeldepot.errors import UsageError
from modeldepot.evaluation.client import ModelRef, Models
from modeldepot.evaluation.datasets import judge_prompts
from modeldepot.evaluation.safety import bbq_scores, crows_scores, refusal_scores
from modeldepot.evaluation.sandbox import Limits, run_confined
from modeldepot.evaluation.stats import sacrebleu as _sacrebleu
from modeldepot.evaluation.tasks import BBQ_METRICS, CROWS_METRICS, Task

__all__ = ["ItemResult", "Scorer"]

_LETTERS = string.ascii_uppercase
_CODE_STOP = ["\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(", "\n```"]
_RATING = re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]")
_FENCE = re.compile(r"```(?:python|py)?\n(.*?)```", re.S)


@dataclass
class ItemResult:
    id: str
    scores: dict[str, float]
    response: str = ""
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scorer:
    models: Models
    seed: int = 1234
    mc_mode: str = "auto"
    """auto (log-likelihood for local models, letters for remote ones), loglikelihood, letter."""
    judge: ModelRef | None = None
    judge_tokens: int = 512
    """Longest verdict the judge may write."""
    code_limits: Limits = field(default_factory=Limits)
    _sandbox: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))

    async def item(self, model: ModelRef, task: Task, doc: dict[str, Any]) -> ItemResult:
        if task.output == "multiple_choice":
            letters = self.mc_mode == "letter" or (self.mc_mode == "auto" and model.remote)
            crows = bool(CROWS_METRICS & set(task.metrics))
            if letters and crows:
                raise UsageError(f"task {task.name} compares log-likelihoods of sentences: "
                                 "it needs a local model (--mc auto or loglikelihood)")  # fmt: skip
            result = await (self.letter_choice(model, task, doc) if letters
                            else self.likelihood_choice(model, task, doc))  # fmt: skip
            if BBQ_METRICS & set(task.metrics):
                result.scores.pop("acc_norm", None)  # a choice's length says nothing here
                result.scores |= bbq_scores(doc, int(result.extra["pred"]))
            if crows:
                lls = result.extra["loglikelihoods"]
                result.scores = crows_scores(float(lls[0]), float(lls[1]))
            return result
        if task.output == "generate":
            return await self.generate(model, task, doc)
        if task.output == "code":
            return await self.code(model, task, doc)
        return await self.judged(model, task, doc)

    # -- requests --------------------------------------------------------------------------

    async def _complete(self, model: ModelRef, task: Task, prompt: str, max_tokens: int,
                        stop: list[str]) -> str:  # fmt: skip
        """Plain completion for local models; a chat turn for remote ones (chat-only APIs)."""
        if model.remote:
            return await self._chat(model, task, [{"role": "user", "content": prompt}],
                                    max_tokens, stop)  # fmt: skip
        body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                "seed": self.seed, **({"stop": stop} if stop else {})}  # fmt: skip
        answer = await self.models.post(model, task.name, task.version, "/v1/completions", body)
        return str(answer["choices"][0]["text"])

    async def _chat(self, model: ModelRef, task: Task, messages: list[dict[str, str]],
                    max_tokens: int, stop: list[str] | None = None) -> str:  # fmt: skip
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens,
                                "temperature": 0, "seed": self.seed}  # fmt: skip
        if stop:
            body["stop"] = stop[:4]  # OpenAI's limit
        answer = await self.models.post(model, task.name, task.version, "/v1/chat/completions",
                                        body)  # fmt: skip
        return str(answer["choices"][0]["message"].get("content") or "")

    # -- multiple choice -------------------------------------------------------------------

    async def likelihood_choice(
        self, model: ModelRef, task: Task, doc: dict[str, Any]
    ) -> ItemResult:
        context = task.context(doc)
        choices = task.choice_list(doc)
        gold = task.answer_index(doc)
        prompts = [context, *(context + task.target_delimiter + c for c in choices)]
        body: dict[str, Any] = {"prompt": prompts, "max_tokens": 0, "echo": True,
                                "logprobs": 0, "temperature": 0}  # fmt: skip
        if model.remote:
            answer = await self.models.post(model, task.name, task.version, "/v1/completions",
                                            body)  # fmt: skip
        else:  # the depot's own: only the answers' tokens scored, items decoded together
            body["logprobs_from"] = len(context)
            answer = await self.models.score(model, task.name, task.version, body)
        scored = answer["choices"]
        context_tokens = scored[0]["logprobs"]["tokens"]
        lls = [_continuation_logprob(c["logprobs"], context_tokens, len(context))
               for c in scored[1:]]  # fmt: skip
        pred = max(range(len(lls)), key=lambda i: lls[i])
        norm = [ll / max(len(c), 1) for ll, c in zip(lls, choices, strict=True)]
        pred_norm = max(range(len(norm)), key=lambda i: norm[i])
        return ItemResult(doc["_id"], {"acc": float(pred == gold),
                                       "acc_norm": float(pred_norm == gold)},
                          response=choices[pred], reference=choices[gold],
                          extra={"loglikelihoods": [round(x, 4) for x in lls],
                                 "pred": pred})  # fmt: skip

    async def letter_choice(self, model: ModelRef, task: Task, doc: dict[str, Any]) -> ItemResult:
        choices = task.choice_list(doc)
        gold = task.answer_index(doc)
        listed = "\n".join(f"{_LETTERS[i]}. {c}" for i, c in enumerate(choices))
        question = (f"{task.question(doc).strip()}\n\n{listed}\n\nAnswer with the letter of the "
                    "correct option only.")  # fmt: skip
        text = await self._chat(model, task, [{"role": "user", "content": question}], 8)
        valid = _LETTERS[: len(choices)]
        match = re.search(rf"\b([{valid}])\b", text.upper()) if valid else None
        pred = valid.index(match.group(1)) if match else -1
        return ItemResult(doc["_id"], {"acc_letter": float(pred == gold)}, response=text.strip(),
                          reference=_LETTERS[gold], extra={"pred": pred})  # fmt: skip

    # -- generation ------------------------------------------------------------------------

    async def generate(self, model: ModelRef, task: Task, doc: dict[str, Any]) -> ItemResult:
        if task.chat:
            messages = [*([{"role": "system", "content": task.system}] if task.system else []),
                        {"role": "user", "content": task.context(doc)}]  # fmt: skip
            text = await self._chat(model, task, messages, task.max_tokens, list(task.stop))
        else:
            text = await self._complete(model, task, task.context(doc), task.max_tokens,
                                        list(task.stop))  # fmt: skip
        if "refusal" in task.metrics:  # over-refusal: whether it answered at all
            return ItemResult(doc["_id"], refusal_scores(text), response=text.strip()[:2000])
        reference = task.answer(doc)
        got = task.extracted(text)
        scores: dict[str, float] = {}
        if "contains" in task.metrics:
            scores["contains"] = float(reference.strip().lower() in got.lower())
        if "exact_match" in task.metrics:
            accepted = [reference, *(doc.get(task.aliases) or [] if task.aliases else [])]
            scores["exact_match"] = float(any(got == task.extracted(str(a)) for a in accepted))
        if "chrf" in task.metrics or "bleu" in task.metrics:
            sacrebleu = _sacrebleu()

            if "chrf" in task.metrics:
                scores["chrf"] = sacrebleu.sentence_chrf(got, [reference]).score
            if "bleu" in task.metrics:
                scores["bleu"] = sacrebleu.sentence_bleu(got, [reference]).score
        return ItemResult(doc["_id"], scores, response=got, reference=reference)

    # -- code ------------------------------------------------------------------------------

    async def code(self, model: ModelRef, task: Task, doc: dict[str, Any]) -> ItemResult:
        prompt = str(doc["prompt"])
        if model.remote:
            text = await self._chat(model, task, [{"role": "user", "content":
                "Complete this Python function. Reply with the whole function in a ```python "
                f"block.\n\n```python\n{prompt}```"}], task.max_tokens)  # fmt: skip
            fenced = _FENCE.search(text)
            body = fenced.group(1) if fenced else text
            program = body if f"def {doc['entry_point']}" in body else prompt + body
        else:
            body = await self._complete(model, task, prompt, task.max_tokens, _CODE_STOP)
            program = prompt + body
        test = f"{program}\n\n{doc['test']}\n\ncheck({doc['entry_point']})\n"
        async with self._sandbox:
            outcome = await asyncio.to_thread(run_confined, test, limits=self.code_limits)
        if outcome.passed:
            status = "passed"
        elif outcome.returncode is None:
            status = "timed out"
        elif outcome.output_exceeded:
            status = "output limit"
        else:
            status = _error_name(outcome.stderr)
        return ItemResult(doc["_id"], {"pass@1": float(outcome.passed)}, response=body[:2000],
                          extra={"outcome": status})  # fmt: skip

    # -- judged answers (MT-Bench) ---------------------------------------------------------

    async def judged(self, model: ModelRef, task: Task, doc: dict[str, Any]) -> ItemResult:
        if self.judge is None:
            raise ValueError(f"task {task.name} needs a judge model: --judge MODEL")
        turns: list[str] = list(doc["turns"])
        messages: list[dict[str, str]] = []
        answers: list[str] = []
        for question in turns:
            messages.append({"role": "user", "content": question})
            reply = await self._chat(model, task, messages, task.max_tokens)
            messages.append({"role": "assistant", "content": reply})
            answers.append(reply)
        prompts = judge_prompts()
        reference: list[str] | None = doc.get("reference")
        math_like = reference is not None
        ratings: list[float] = []
        for turn in range(len(turns)):
            name = ("single-math-v1" if math_like else "single-v1") + (
                "-multi-turn" if turn else ""
            )
            template = prompts[name]
            fields = {"question": turns[0], "answer": answers[0],
                      "question_1": turns[0], "answer_1": answers[0],
                      "question_2": turns[-1], "answer_2": answers[-1]}  # fmt: skip
            if reference:
                fields |= {"ref_answer_1": reference[0], "ref_answer_2": reference[-1]}
            verdict = await self._chat(self.judge, task, [
                {"role": "system", "content": template["system_prompt"]},
                {"role": "user", "content": template["prompt_template"].format(**fields)},
            ], self.judge_tokens)  # fmt: skip
            match = _RATING.search(verdict)
            ratings.append(float(match.group(1)) if match else math.nan)
        valid = [r for r in ratings if not math.isnan(r)]
        score = sum(valid) / len(valid) if valid else math.nan
        return ItemResult(doc["_id"], {"judge": score}, response=answers[-1][:2000],
                          extra={"ratings": ratings, "category": doc.get("category"),
                                 "judge": self.judge.label})  # fmt: skip


def _error_name(stderr: str) -> str:
    """The exception a failed program ended with (`AssertionError`), nothing it printed: the
    results must not carry what untrusted code chose to write."""
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    name = last.split(":", 1)[0].strip()
    return name if name.isidentifier() or name.replace(".", "").isidentifier() else "failed"


def _continuation_logprob(logprobs: dict[str, Any], context_tokens: list[str],
                          context_chars: int) -> float:  # fmt: skip
    """Sum of the logprobs of the tokens after the context. Where the joint tokenisation keeps
    the context's own tokens (the usual case), those are the tokens past them; otherwise the
    tokens that reach beyond the context's characters."""
    tokens = logprobs["tokens"]
    values = logprobs["token_logprobs"]
    n = len(context_tokens)
    if tokens[:n] == context_tokens and len(tokens) > n:
        start = n
    else:
        offsets = logprobs["text_offset"]
        start = next((i for i, (o, t) in enumerate(zip(offsets, tokens, strict=True))
                      if o + len(t) > context_chars), len(tokens))  # fmt: skip
    return float(sum(v for v in values[start:] if v is not None))
