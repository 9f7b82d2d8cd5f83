"""Evaluation tasks: declarative YAML files, in modeldepot's format or lm-evaluation-harness's.

modeldepot's format:

    name: arithmetic_word
    version: 1
    output: multiple_choice        # multiple_choice | generate | code | judge
    data: arithmetic.jsonl         # JSONL or CSV, relative to the task file
    prompt: "Q: {{ question }}\\nA:"
    choices: "{{ options }}"       # multiple choice: a list (field, Jinja, or literal list)
    target: "{{ answer }}"         # the answer text, or the index of the right choice
    fewshot: 3                     # examples from `fewshot_data`, else the first items
    extract: "(-?\\\\d+)"          # generate: regex whose first group is the answer
    stop: ["\\n"]
    max_tokens: 32
    metrics: [acc, acc_norm]       # acc, acc_norm, acc_letter, exact_match, chrf, bleu, pass@1
    category: reasoning
    source: where the data comes from
    licence: its licence

lm-evaluation-harness task YAML (`task`, `doc_to_text`, `doc_to_choice`, `doc_to_target`,
`output_type`, `metric_list`, `generation_kwargs`, `num_fewshot`, `include`, `filter_list`
regexes) is read too, with the data pointed at local files (`dataset_kwargs: {data_files:
...}`); `!function` hooks (Python code) are refused.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache, cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from modeldepot import jsonl
from modeldepot.errors import NotFound, UsageError

__all__ = ["BBQ_METRICS", "CROWS_METRICS", "MAX_DATA_BYTES", "OUTPUTS", "Task", "builtin_tasks",
           "load_task", "read_rows",
           "suites"]  # fmt: skip

OUTPUTS = ("multiple_choice", "generate", "code", "judge")
MAX_DATA_BYTES = 256 * 1024**2
"""The most bytes a task's data file may hold, once decompressed for a `.gz` one: it is read
whole, so a bigger one (a gzip bomb among them) is refused rather than read."""
_METRICS = {
    "acc",
    "acc_norm",
    "acc_letter",
    "exact_match",
    "contains",
    "chrf",
    "bleu",
    "pass@1",
    "judge",
    "acc_amb",
    "acc_disamb",
    "bias_amb",
    "bias_disamb",
    "pct_stereotype",
    "likelihood_diff",
    "refusal",
}
BBQ_METRICS = frozenset({"acc_amb", "acc_disamb", "bias_amb", "bias_disamb"})
"""Scored by BBQ's rules (modeldepot.evaluation.safety): the data has `biased`, `unknown`,
`context_condition`."""
CROWS_METRICS = frozenset({"pct_stereotype", "likelihood_diff"})
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)


@dataclass(frozen=True)
class Task:
    name: str
    version: str
    output: str
    prompt: str
    target: str | None = None
    choices: str | None = None
    data: Path | None = None
    loader: str | None = None
    """A built-in loader for data shipped by a package (humaneval, mtbench)."""
    fewshot: int = 0
    fewshot_data: Path | None = None
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    stop: tuple[str, ...] = ()
    max_tokens: int = 256
    extract: str | None = None
    aliases: str | None = None
    """Field holding other accepted answers (a list) for exact match."""
    canary: str = ""
    metrics: tuple[str, ...] = ()
    category: str = "general"
    source: str = ""
    licence: str = ""
    description: str = ""
    chat: bool = False
    """Generate through a chat turn (the model's chat template) instead of plain completion."""
    system: str = ""
    """A system message for chat turns."""
    origin: str = ""
    """The task file it was read from."""
    items_cache: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)

    # -- data ------------------------------------------------------------------------------

    def items(self) -> list[dict[str, Any]]:
        """The scored items, each with a stable `_id` (few-shot examples excluded)."""
        docs = _load(self)
        if self.fewshot and self.fewshot_data is None:
            docs = docs[self.fewshot :]
        return docs

    def examples(self) -> list[dict[str, Any]]:
        if not self.fewshot:
            return []
        source = list(read_rows(self.fewshot_data)) if self.fewshot_data else _load(self)
        return source[: self.fewshot]

    # -- rendering -------------------------------------------------------------------------

    def render(self, template: str | None, doc: dict[str, Any]) -> str:
        if template is None:
            raise UsageError(f"task {self.name}: missing a template")
        try:
            return _compiled(template).render(**doc)
        except Exception as exc:
            raise UsageError(f"task {self.name}: template failed on item {doc.get('_id')}: "
                             f"{exc}") from None  # fmt: skip

    def question(self, doc: dict[str, Any]) -> str:
        return self.render(self.prompt, doc)

    def choice_list(self, doc: dict[str, Any]) -> list[str]:
        spec = self.choices
        if spec is None:
            raise UsageError(f"task {self.name}: multiple choice needs `choices`")
        if spec in doc and isinstance(doc[spec], list):
            return [str(c) for c in doc[spec]]
        value = _literal(self.render(spec, doc) if "{" in spec else spec)
        if not isinstance(value, list):
            raise UsageError(f"task {self.name}: `choices` gave {value!r}, not a list")
        return [str(c) for c in value]

    def answer(self, doc: dict[str, Any]) -> str:
        """The target as text (for multiple choice: the right choice's text)."""
        raw = self._target_value(doc)
        if self.output == "multiple_choice":
            choices = self.choice_list(doc)
            return choices[raw] if isinstance(raw, int) else str(raw)
        return str(raw)

    def answer_index(self, doc: dict[str, Any]) -> int:
        raw = self._target_value(doc)
        choices = self.choice_list(doc)
        if isinstance(raw, int):
            return raw
        text = str(raw).strip()
        for i, choice in enumerate(choices):
            if choice.strip() == text:
                return i
        raise UsageError(f"task {self.name}: target {text!r} is not one of the choices "
                         f"of item {doc.get('_id')}")  # fmt: skip

    def _target_value(self, doc: dict[str, Any]) -> int | str:
        spec = self.target
        if spec is None:
            raise UsageError(f"task {self.name}: missing `target`")
        value = doc[spec] if spec in doc else self.render(spec, doc) if "{" in spec else spec
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return value
        text = str(value)
        return (
            int(text)
            if text.strip().lstrip("-").isdigit()
            and self.output == "multiple_choice"
            and self.choices
            else text
        )

    def context(self, doc: dict[str, Any]) -> str:
        """Few-shot examples, then the item's question."""
        return self.fewshot_delimiter.join([*self._shots, self.question(doc)])

    @cached_property
    def _shots(self) -> tuple[str, ...]:
        """The few-shot examples as text, the same before every item."""
        return tuple(
            self.question(ex) + self.target_delimiter + self.answer(ex) for ex in self.examples()
        )

    def extracted(self, text: str) -> str:
        if self.extract:
            match = re.search(self.extract, text)
            if match:
                return (match.group(1) if match.groups() else match.group(0)).strip()
        return text.strip()


# -- loading -------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    """A template compiled once: every item renders the same few."""
    return _ENV.from_string(template)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text


@lru_cache(maxsize=64)
def read_rows(path: Path | None, *, max_bytes: int = MAX_DATA_BYTES) -> tuple[dict[str, Any], ...]:
    """A data file's rows, read once per process (every item's prompt asks for them); a file
    of more than `max_bytes` (once decompressed) is refused."""
    if path is None:
        return ()
    if not path.is_file():
        raise NotFound(f"{path}: no such data file")
    name = path.name.removesuffix(".gz")
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as whole:
            raw = whole.read(max_bytes + 1)
    except (OSError, EOFError) as exc:  # a damaged or truncated .gz
        raise UsageError(f"{path}: cannot be read ({exc})") from None
    if len(raw) > max_bytes:
        unpacked = " once decompressed" if path.suffix == ".gz" else ""
        raise UsageError(f"{path}: more than {max_bytes} bytes{unpacked}, the most task data "
                         "may hold")  # fmt: skip
    with io.BytesIO(raw) as f:
        if name.endswith(".csv"):
            try:
                rows = [dict(r) for r in csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"))]
            except (csv.Error, UnicodeDecodeError) as exc:
                raise UsageError(f"{path}: not CSV text ({exc})") from None
        elif name.endswith(".json"):
            try:
                data = jsonl.loads(f.read())
            except ValueError as exc:
                raise UsageError(f"{path}: {exc}") from None
            rows = data.get("examples", []) if isinstance(data, dict) else data
        else:
            rows = []
            for line in jsonl.read_lines(f):
                if line.problem is not None:
                    raise UsageError(f"{path}:{line.number}: {line.problem}")
                rows.append(line.value)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UsageError(f"{path}: every row must be a JSON object")
    return tuple({**r, "_id": str(r.get("_id", r.get("id", i)))} for i, r in enumerate(rows))


def _load(task: Task) -> list[dict[str, Any]]:
    if task.items_cache:
        return list(task.items_cache)
    if task.loader:
        from modeldepot.evaluation import datasets

        return list(datasets.load(task.loader))
    return list(read_rows(task.data))


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


class _Loader(yaml.SafeLoader):
    pass


def _refuse_function(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise UsageError(f"`!function` hooks run Python code and are not supported ({node.start_mark})")


_Loader.add_constructor("!function", _refuse_function)


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such task file") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a task file is a mapping")
    if "include" in data:
        base = _yaml(path.parent / str(data.pop("include")))
        data = {**base, **data}
    return data


def load_task(path: Path) -> Task:
    data = _yaml(Path(path))
    task = _from_harness(data, Path(path)) if "task" in data else _from_native(data, Path(path))
    if task.output not in OUTPUTS:
        raise UsageError(f"{path}: output must be one of {', '.join(OUTPUTS)}")
    unknown = set(task.metrics) - _METRICS
    if unknown:
        raise UsageError(f"{path}: unknown metrics {sorted(unknown)} (known: {sorted(_METRICS)})")
    return task


def _from_native(data: dict[str, Any], path: Path) -> Task:
    try:
        name = str(data["name"])
        output = str(data["output"])
    except KeyError as exc:
        raise UsageError(f"{path}: missing `{exc.args[0]}`") from None
    defaults = {
        "multiple_choice": ("acc", "acc_norm"), "generate": ("exact_match",),
        "code": ("pass@1",), "judge": ("judge",),
    }  # fmt: skip
    return Task(
        name=name,
        version=str(data.get("version", 1)),
        output=output,
        prompt=str(data.get("prompt", "{{ question }}")),
        target=None if data.get("target") is None else str(data["target"]),
        choices=_choices_spec(data.get("choices")),
        data=path.parent / str(data["data"]) if data.get("data") else None,
        loader=data.get("loader"),
        fewshot=int(data.get("fewshot", 0)),
        fewshot_data=path.parent / str(data["fewshot_data"]) if data.get("fewshot_data") else None,
        target_delimiter=str(data.get("target_delimiter", " ")),
        fewshot_delimiter=str(data.get("fewshot_delimiter", "\n\n")),
        stop=_strings(data.get("stop")),
        max_tokens=int(data.get("max_tokens", 256)),
        extract=data.get("extract"),
        aliases=data.get("aliases"),
        canary=str(data.get("canary", "")),
        metrics=_strings(data.get("metrics")) or defaults.get(output, ()),
        category=str(data.get("category", "general")),
        source=str(data.get("source", "")),
        licence=str(data.get("licence", data.get("license", ""))),
        description=str(data.get("description", "")),
        chat=bool(data.get("chat", False)),
        system=str(data.get("system", "")),
        origin=str(path),
    )


def _choices_spec(value: Any) -> str | None:
    if value is None:
        return None
    return repr(list(value)) if isinstance(value, list) else str(value)


def _field_or_template(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return text if "{" in text or " " in text else "{{ " + text + " }}"


def _from_harness(data: dict[str, Any], path: Path) -> Task:
    """An lm-evaluation-harness task, with its data in local files."""
    kinds = {"multiple_choice": "multiple_choice", "generate_until": "generate"}
    kind = str(data.get("output_type", "generate_until"))
    if kind not in kinds:
        raise UsageError(f"{path}: output_type {kind!r} is not supported (multiple_choice, "
                         "generate_until)")  # fmt: skip
    files = (data.get("dataset_kwargs") or {}).get("data_files") or data.get("data_files")
    split = data.get("test_split") or data.get("validation_split") or "test"
    shots = None
    if isinstance(files, dict):
        shots = files.get(str(data.get("fewshot_split"))) if data.get("fewshot_split") else None
        files = files.get(split) or next(iter(files.values()))
    if not files:
        raise UsageError(
            f"{path}: point the task at local data: `dataset_kwargs: {{data_files: FILE}}` "
            f"(dataset_path {data.get('dataset_path')!r} would be fetched from the Hub)"
        )
    if isinstance(files, list):
        files = files[0]
    gen = data.get("generation_kwargs") or {}
    extract = None
    for flt in data.get("filter_list") or []:
        for step in flt.get("filter", []):
            if step.get("function") == "regex" and step.get("regex_pattern"):
                extract = str(step["regex_pattern"])
                break
    metrics = [str(m.get("metric")) for m in data.get("metric_list") or [] if isinstance(m, dict)]
    target = data.get("doc_to_target")
    return Task(
        name=str(data["task"]),
        version=str((data.get("metadata") or {}).get("version", 1)),
        output=kinds[kind],
        prompt=_field_or_template(data.get("doc_to_text")) or "{{ question }}",
        target=_field_or_template(target),
        choices=_choices_spec(data.get("doc_to_choice")),
        data=path.parent / str(files),
        fewshot=int(data.get("num_fewshot") or 0),
        fewshot_data=path.parent / str(shots) if shots else None,
        target_delimiter=str(data.get("target_delimiter", " ")),
        fewshot_delimiter=str(data.get("fewshot_delimiter", "\n\n")),
        stop=_strings(gen.get("until")),
        max_tokens=int(gen.get("max_gen_toks", 256)),
        extract=extract,
        metrics=tuple(m for m in metrics if m in _METRICS)
        or (("acc", "acc_norm") if kind == "multiple_choice" else ("exact_match",)),
        source=str(data.get("dataset_path", "")),
        origin=str(path),
    )


# -- the built-in suite ----------------------------------------------------------------------


@cache
def builtin_tasks() -> dict[str, Task]:
    folder = resources.files("modeldepot.evaluation") / "tasks"
    found: dict[str, Task] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            with resources.as_file(entry) as path:
                task = load_task(path)
            found[task.name] = task
    return found


@cache
def suites() -> dict[str, tuple[str, ...]]:
    folder = resources.files("modeldepot.evaluation") / "tasks"
    data = yaml.safe_load((folder / "suites.yml").read_text(encoding="utf-8"))
    return {str(k): tuple(v) for k, v in data.items()}


def resolve(names: Iterator[str] | list[str], suite: str | None) -> list[Task]:
    """Tasks named (built-in names or YAML paths) plus a suite's."""
    wanted = list(names)
    if suite:
        if suite not in suites():
            raise UsageError(f"unknown suite {suite!r}; known: {', '.join(suites())}")
        wanted += suites()[suite]
    if not wanted:
        raise UsageError("name a task (--task) or a suite (--suite); `depot eval tasks` lists them")
    out = []
    for entry in wanted:
        name, _, count = entry.rpartition(":") if _SUITE_LIMIT.search(entry) else (entry, "", "")
        if name.endswith((".yaml", ".yml")) or "/" in name:
            task = load_task(Path(name))
        elif name in builtin_tasks():
            task = builtin_tasks()[name]
        else:
            raise UsageError(f"unknown task {name!r}; `depot eval tasks` lists them")
        out.append(limited(task, int(count)) if count else task)
    return out


_SUITE_LIMIT = re.compile(r":\d+$")


def limited(task: Task, limit: int | None) -> Task:
    """The task with only its first `limit` items (a smaller limit already set wins)."""
    if limit is None or (task.items_cache and len(task.items()) <= limit):
        return task
    return replace(task, items_cache=tuple(task.items()[:limit]) if not task.fewshot or
                   task.fewshot_data else tuple(_load(task)[: task.fewshot + limit]))  # fmt: skip
