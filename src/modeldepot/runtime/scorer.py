"""The scoring engine: log-probabilities of a prompt's own tokens (OpenAI's `echo` with
`logprobs`), which llama.cpp's server does not offer and evaluation harnesses need.

Runs as its own process, one per model, like the generation engine:

    python -m modeldepot.runtime.scorer --model PATH --port N [--threads N] [--ctx N]

Each token's log-probability is read from the logits at the position before it (llama-cpp-
python's own `echo` reads them at the token's own position, which is wrong for some models).
The engine drives llama.cpp's context directly, so that:

- logits are computed only at the positions a request needs: with `from` (a character
  offset), only the tokens reaching past it are scored, so a question's context costs its
  evaluation but not its output layer;
- the prompts of one request that share a prefix (a question followed by each of its answers)
  are decoded together: the new part of the prefix once, then every answer in one batch, each
  on a sequence of its own branching from it;
- consecutive requests reuse the cached prefix (few-shot examples, a system prompt) and the
  rows already scored instead of computing them again.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modeldepot.config import Settings
from modeldepot.runtime.engine import Capability, EngineSpec, Launch, ModelFiles
from modeldepot.runtime.engine_http import JSONHandler, serve
from modeldepot.runtime.llama import memory_estimate, single_weights
from modeldepot.runtime.process import ModelUnavailable

if TYPE_CHECKING:
    from modeldepot.registry import ModelVersion

__all__ = ["BATCH", "SCORING_CONTEXT", "Scorer", "ScoringEngine", "main"]

BATCH = 512

SCORING_CONTEXT = 2048
"""Longest prompt the scoring engine takes."""


class ScoringEngine:
    """The plugin that runs this program for GGUF models."""

    name = "scorer"
    native_n = False

    def capabilities(self, version: ModelVersion) -> frozenset[Capability]:
        return frozenset({Capability.SCORING}) if version.info.format == "gguf" else frozenset()

    def installed(self, settings: Settings) -> bool:
        return True  # part of the depot's own install

    def native_tools(self, version: ModelVersion) -> bool:
        return False

    def spec(
        self,
        version: ModelVersion,
        capability: Capability,
        files: ModelFiles,
        settings: Settings,
        adapters: tuple[ModelVersion, ...] = (),
    ) -> EngineSpec:
        del adapters  # never asked: this engine is not capable of ADAPTERS
        info = version.info
        if info.format != "gguf":
            raise ModelUnavailable(f"{version.reference} is {info.format}; scoring needs GGUF")
        per_sequence = min(settings.context, info.context_length or settings.context)
        context = min(per_sequence, SCORING_CONTEXT)
        scores = min(context, BATCH) * (info.vocab_size or 32000) * 4  # logit rows
        memory = memory_estimate(version, context) + scores
        return EngineSpec(
            name=str(version.reference),
            digest=version.digest,
            engine=self.name,
            kind="score",
            weights=files.file(single_weights(version)),
            context=context,
            parallel=1,
            threads=settings.engine_threads,
            memory=memory,
            device_memory=(("cpu", memory),),
        )

    def launch(self, spec: EngineSpec, port: int, settings: Settings) -> Launch:
        return Launch([
            sys.executable, "-m", "modeldepot.runtime.scorer",
            "--model", str(spec.weights),
            "--port", str(port),
            "--threads", str(spec.threads),
            "--ctx", str(spec.context),
        ])  # fmt: skip


"""Tokens per llama_decode, and so the most rows of logits the engine holds at once."""
_BRANCHES = 16
"""Most prompts of one request decoded together; a request with more runs them in turn."""


@dataclass
class _Row:
    """What was read from the logits at one position."""

    lse: float
    """Log-sum-exp of the logits."""
    top: list[tuple[int, float]]
    """The most likely next tokens with their log-probabilities."""
    following: dict[int, float]
    """Log-probabilities of the tokens that follow this position in the prompts seen."""
    logits: np.ndarray | None
    """The whole row, kept for the last position of sequence 0 only: the next prompt may
    continue from there with a token of its own (each answer after a shared question)."""


@dataclass
class _Entry:
    """One token of a batch, on one or more sequences."""

    token: int
    position: int
    sequences: tuple[int, ...]
    after: frozenset[int]
    """The tokens that follow it in the prompts it belongs to, scored when `read`."""
    read: bool
    keep: bool = False
    """Keep the whole row (the last position of sequence 0)."""


class Scorer:
    def __init__(self, model: str, *, threads: int, context: int, batch: int = BATCH) -> None:
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        set_verbose(False)
        llama_cpp.llama_backend_init()
        self._llama = llama_cpp
        self.model = _internals.LlamaModel(
            path_model=model, params=llama_cpp.llama_model_default_params(), verbose=False
        )
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context
        params.n_batch = params.n_ubatch = min(batch, context)
        params.n_threads = params.n_threads_batch = threads
        params.n_seq_max = _BRANCHES + 1
        params.kv_unified = True
        # as llama-server does on CPU; it also keeps a prompt's numbers the same whatever else
        # shares its batch
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        self.ctx = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(
            n_tokens=params.n_batch, embd=0, n_seq_max=_BRANCHES + 1, verbose=False
        )
        self.batch_size = int(params.n_batch)
        self.context = context
        self.vocab = self.model.n_vocab()
        self.lock = threading.RLock()
        """Held for a whole request, so that its prompts run back to back and share their
        prefix."""
        self._pieces: dict[int, str] = {}
        self._cached: list[int] = []
        """The tokens in sequence 0 of the KV cache, from position 0; the other sequences
        live only while a request is decoded."""
        self._rows: dict[int, _Row] = {}

    # -- tokens ----------------------------------------------------------------------------

    def tokens(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, str):
            return list(self.model.tokenize(prompt.encode(), add_bos=True, special=False))
        return [int(t) for t in prompt]

    def piece(self, token: int) -> str:
        found = self._pieces.get(token)
        if found is None:
            text = self.model.detokenize([token], special=False)
            found = self._pieces[token] = text.decode("utf-8", "replace")
        return found

    def _first_after(self, tokens: list[int], start: int | None) -> int:
        """Index of the first token (after the first) whose text reaches past character
        `start`, counting characters as the API's `text_offset` does."""
        if start is None:
            return 1
        end = 0
        for index, token in enumerate(tokens):
            end += len(self.piece(token))
            if index and end > start:
                return index
        return len(tokens)

    # -- requests --------------------------------------------------------------------------

    def score_all(
        self,
        prompts: list[str | list[int]],
        top: int,
        generate: int,
        start: int | list[int | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every prompt scored as `score` does (`start` for all, or one per prompt). Without
        generation, prompts are decoded together: their common prefix once, then everything
        after it in one batch, every prompt on a sequence of its own and the tokens that
        prompts share (a question before its answers) decoded once for all of them."""
        starts = start if isinstance(start, list) else [start] * len(prompts)
        if len(starts) != len(prompts):
            raise ValueError("give one `from` offset per prompt")
        lists = [self._checked(self.tokens(p), generate) for p in prompts]
        with self.lock:
            if generate:
                return [
                    self._score(t, top, generate, s) for t, s in zip(lists, starts, strict=True)
                ]
            firsts = [self._first_after(t, s) for t, s in zip(lists, starts, strict=True)]
            results: list[dict[str, Any]] = []
            for chunk in self._chunks(lists):
                results += self._together(
                    [lists[i] for i in chunk], top, [firsts[i] for i in chunk]
                )
            return results

    def score(
        self, prompt: str | list[int], top: int, generate: int, start: int | None = None
    ) -> dict[str, Any]:
        """The prompt's tokens with their log-probabilities and the top alternatives at each
        position (None for the first token, and for tokens that end at or before character
        `start` when it is given), then `generate` greedy tokens scored the same way."""
        tokens = self._checked(self.tokens(prompt), generate)
        with self.lock:
            return self._score(tokens, top, generate, start)

    def _checked(self, tokens: list[int], generate: int) -> list[int]:
        if not tokens:
            raise ValueError("the prompt is empty")
        if len(tokens) + generate > self.context:
            raise ValueError(
                f"the prompt has {len(tokens)} tokens; scoring takes at most "
                f"{self.context - generate}"
            )
        return tokens

    def _chunks(self, lists: list[list[int]]) -> list[list[int]]:
        """Consecutive runs of prompts that fit one batch after their common prefix, with at
        most _BRANCHES sequences; a prompt alone is its own run."""
        chunks: list[list[int]] = []
        current: list[int] = []
        for index in range(len(lists)):
            trial = [lists[i] for i in [*current, index]]
            trunk = _common_prefix(trial)
            fits = (
                trunk > 0
                and len(set(_sequences(trial).values())) <= _BRANCHES
                and _tree_size(trial, trunk) <= self.batch_size
            )
            if current and not fits:
                chunks.append(current)
                current = []
            current.append(index)
        return [*chunks, current] if current else chunks

    def _score(
        self, tokens: list[int], top: int, generate: int, start: int | None
    ) -> dict[str, Any]:
        first = self._first_after(tokens, start)
        self._extend(tokens, range(first - 1, len(tokens) - 1), top)
        for _ in range(generate):
            last = self._rows[len(tokens) - 1].logits
            assert last is not None
            tokens.append(int(np.argmax(last)))
            self._extend(tokens, range(len(tokens) - 2, len(tokens) - 1), top)
        rows = {p: self._rows[p] for p in range(first - 1, len(tokens) - 1)}
        chosen: dict[int, float | None] = {p: r.following[tokens[p + 1]] for p, r in rows.items()}
        return self._result(tokens, chosen, {p: r.top for p, r in rows.items()}, first, generate)

    def _together(
        self, lists: list[list[int]], top: int, firsts: list[int]
    ) -> list[dict[str, Any]]:
        """The prompts in two decodes: their common prefix (the trunk) on sequence 0, then the
        prefix tree of what follows it, each prompt on a sequence of its own (a prompt that
        begins another rides on that one's sequence)."""
        trunk = _common_prefix(lists)
        wanted = [p for t, f in zip(lists, firsts, strict=True) for p in range(f - 1, trunk)
                  if p < len(t) - 1]  # fmt: skip
        self._extend(lists[0][:trunk], range(min(wanted, default=trunk - 1), trunk), top)
        sequence = _sequences(lists)
        entries: list[_Entry] = []
        where: dict[tuple[int, int], int] = {}
        groups = [[j for j in range(len(lists)) if len(lists[j]) > trunk]]
        position = trunk
        while groups:
            following = []
            for group in groups:
                by_token: dict[int, list[int]] = {}
                for j in group:
                    by_token.setdefault(lists[j][position], []).append(j)
                for token, members in by_token.items():
                    longer = [j for j in members if len(lists[j]) > position + 1]
                    entries.append(_Entry(
                        token, position, tuple(sorted({sequence[j] for j in members})),
                        frozenset(lists[j][position + 1] for j in longer),
                        any(position >= firsts[j] - 1 for j in longer),
                    ))  # fmt: skip
                    for j in members:
                        where[(j, position)] = len(entries) - 1
                    if longer:
                        following.append(longer)
            groups = following
            position += 1
        if entries and not any(e.read for e in entries):
            entries[-1].read = True  # a decode reads at least one row
        branches = sorted({s for e in entries for s in e.sequences})
        memory = self.ctx.memory
        for branch in branches:
            self._llama.llama_memory_seq_cp(memory, 0, branch, 0, trunk)
        decoded = self._decode(entries, top) if entries else []
        for branch in branches:
            self._llama.llama_memory_seq_rm(memory, branch, -1, -1)
        shared = self._rows[trunk - 1]
        assert shared.logits is not None
        results = []
        for j, (tokens, first) in enumerate(zip(lists, firsts, strict=True)):
            chosen: dict[int, float | None] = {}
            tops: dict[int, list[tuple[int, float]]] = {}
            for p in range(first - 1, len(tokens) - 1):
                if p < trunk - 1:
                    chosen[p], tops[p] = self._rows[p].following[tokens[p + 1]], self._rows[p].top
                elif p == trunk - 1:
                    chosen[p] = float(shared.logits[tokens[p + 1]]) - shared.lse
                    tops[p] = shared.top
                else:
                    read = decoded[where[(j, p)]]
                    assert read is not None
                    chosen[p], tops[p] = read.following[tokens[p + 1]], read.top
            results.append(self._result(tokens, chosen, tops, first, 0))
        return results

    def _result(
        self,
        tokens: list[int],
        chosen: dict[int, float | None],
        tops: dict[int, list[tuple[int, float]]],
        first: int,
        generate: int,
    ) -> dict[str, Any]:
        logprobs: list[float | None] = [None] * len(tokens)
        alternatives: list[list[tuple[int, float]] | None] = [None] * len(tokens)
        for position in range(first - 1, len(tokens) - 1):
            logprobs[position + 1] = chosen[position]
            alternatives[position + 1] = tops[position]
        return {
            "tokens": tokens,
            "pieces": [self.piece(t) for t in tokens],
            "logprobs": logprobs,
            "top": [
                None if alt is None else [(t, self.piece(t), lp) for t, lp in alt]
                for alt in alternatives
            ],
            "prompt_tokens": len(tokens) - generate,
        }

    # -- the cache -------------------------------------------------------------------------

    def _reusable(self, tokens: list[int], wanted: list[int], top: int) -> int:
        """How much of sequence 0 serves `tokens`: the common prefix, cut back to the first
        wanted position whose row is missing or cannot give the token after it."""
        cached = self._cached
        common = 0
        while common < min(len(cached), len(tokens) - 1) and cached[common] == tokens[common]:
            common += 1
        for position in wanted:
            if position >= common:
                break
            row = self._rows.get(position)
            continues = position + 1 < common or (row is not None and row.logits is not None)
            if row is None or len(row.top) < top or not continues:
                return position
        return common

    def _truncate(self, common: int, tokens: list[int]) -> None:
        """Drop sequence 0 from `common` on, before `tokens[common:]` are decoded."""
        cached = self._cached
        boundary = self._rows.get(common - 1)
        if boundary is not None and cached[common : common + 1] != tokens[common : common + 1]:
            if boundary.logits is None:  # the token after it changes, unscored
                del self._rows[common - 1]
            else:
                boundary.following[tokens[common]] = (
                    float(boundary.logits[tokens[common]]) - boundary.lse
                )
        del cached[common:]
        for position in [p for p in self._rows if p >= common]:
            del self._rows[position]
        self._llama.llama_memory_seq_rm(self.ctx.memory, 0, common, -1)

    def _extend(self, tokens: list[int], wanted: range, top: int) -> None:
        """Bring sequence 0 to `tokens` with a row at every position in `wanted` and at the
        last one (whose whole row is kept), evaluating as little as the cache allows."""
        common = self._reusable(tokens, list(wanted), top)
        self._truncate(common, tokens)
        last = len(tokens) - 1
        for begin in range(common, len(tokens), self.batch_size):
            positions = range(begin, min(begin + self.batch_size, len(tokens)))
            entries = [
                _Entry(tokens[p], p, (0,), frozenset(tokens[p + 1 : p + 2]),
                       p in wanted or p == last, keep=p == last)
                for p in positions
            ]  # fmt: skip
            for p, row in zip(positions, self._decode(entries, top), strict=True):
                if row is not None:
                    self._rows[p] = row
            self._cached.extend(tokens[begin : positions.stop])
        for position, row in self._rows.items():
            if position != last:
                row.logits = None

    def _decode(self, entries: list[_Entry], top: int) -> list[_Row | None]:
        """One llama_decode over `entries`; what was read at each (None where nothing was)."""
        batch = self._batch.batch
        batch.n_tokens = len(entries)
        for i, entry in enumerate(entries):
            batch.token[i] = entry.token
            batch.pos[i] = entry.position
            batch.n_seq_id[i] = len(entry.sequences)
            for k, sequence in enumerate(entry.sequences):
                batch.seq_id[i][k] = sequence
            batch.logits[i] = entry.read
        self.ctx.decode(self._batch)
        reads: list[_Row | None] = []
        for i, entry in enumerate(entries):
            if not entry.read:
                reads.append(None)
                continue
            logits = np.ctypeslib.as_array(self.ctx.get_logits_ith(i), shape=(self.vocab,))
            peak = float(logits.max())
            lse = peak + float(np.log(np.exp(logits - peak).sum(dtype=np.float64)))
            best: list[tuple[int, float]] = []
            if top == 1:
                best = [(int(logits.argmax()), peak - lse)]
            elif top:
                index = np.argpartition(logits, -top)[-top:]
                index = index[np.argsort(-logits[index])]
                best = [(int(t), float(logits[t]) - lse) for t in index]
            following = {t: float(logits[t]) - lse for t in entry.after}
            reads.append(_Row(lse, best, following, logits.copy() if entry.keep else None))
        return reads


def _common_prefix(lists: list[list[int]]) -> int:
    shortest = min(len(t) for t in lists)
    first = lists[0]
    common = 0
    while common < shortest and all(t[common] == first[common] for t in lists):
        common += 1
    return common


def _tree_size(lists: list[list[int]], trunk: int) -> int:
    """Tokens in the prefix tree of the prompts past their first `trunk` tokens."""
    ordered = sorted(lists)
    size = 0
    for index, tokens in enumerate(ordered):
        shared = trunk
        if index:
            before = ordered[index - 1]
            while (shared < min(len(tokens), len(before))
                   and tokens[shared] == before[shared]):  # fmt: skip
                shared += 1
        size += max(len(tokens) - shared, 0)
    return size


def _sequences(lists: list[list[int]]) -> dict[int, int]:
    """A sequence (from 1) for every prompt; a prompt that begins another one shares that
    one's sequence, since every token it has is decoded for the longer prompt anyway."""
    order = sorted(range(len(lists)), key=lambda j: lists[j])
    sequence: dict[int, int] = {}
    fresh = 0
    for index in reversed(range(len(order))):
        j = order[index]
        later = order[index + 1] if index + 1 < len(order) else None
        if later is not None and lists[later][: len(lists[j])] == lists[j]:
            sequence[j] = sequence[later]
        else:
            fresh += 1
            sequence[j] = fresh
    return sequence


def _handler(scorer: Scorer) -> type[JSONHandler]:
    class Handler(JSONHandler):
        def do_POST(self) -> None:
            try:
                request = self.read_json()
                top, generate = int(request.get("top", 1)), int(request.get("generate", 0))
                start = request.get("from")
                if isinstance(start, list):
                    start = [None if s is None else int(s) for s in start]
                elif start is not None:
                    start = int(start)
                results = scorer.score_all(list(request["prompts"]), top, generate, start)
            except (ValueError, KeyError, TypeError) as exc:
                self.reply(400, {"error": str(exc)})
                return
            self.reply(200, {"results": results})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="modeldepot scoring engine")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=1024)
    args = parser.parse_args()
    scorer = Scorer(args.model, threads=args.threads, context=args.ctx)
    serve(_handler(scorer), args.port)


if __name__ == "__main__":
    main()
