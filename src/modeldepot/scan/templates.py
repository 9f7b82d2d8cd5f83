"""GGUF chat templates: Jinja programs that run inside the server for every request.

A template is parsed (never rendered outside Jinja's immutable sandbox) and its syntax tree
checked for the known escapes: attribute access to `__class__`, `__globals__`,
`__subclasses__` and friends, the `attr` filter, and the globals (`cycler`, `joiner`,
`lipsum`) whose functions lead to Python's internals. Text emitted only when a message's
content matches something is reported as a hidden instruction. Then the template is rendered
in the sandbox, in a child process with a time limit, and compared with the template its
architecture usually ships (`reference_templates/`).
"""

from __future__ import annotations

import difflib
import json
import multiprocessing
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.ext import Extension, loopcontrols
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.item import Item, Nested

__all__ = ["ChatTemplateScanner", "check_template", "reference_templates"]

_ESCAPE_GLOBALS = {"cycler", "joiner", "lipsum", "self", "config", "request", "url_for",
                   "get_flashed_messages", "g", "session"}  # fmt: skip
_INTERNAL_ATTRS = {"mro", "func_globals", "gi_frame", "gi_code", "f_globals", "f_locals",
                   "f_back", "co_code", "tb_frame", "im_func", "cr_frame", "ag_frame"}  # fmt: skip
_RENDER_SECONDS = 5.0
_PROSE = re.compile(r"[A-Za-z]{2,}(?:[\s,.'’-]+[A-Za-z]{2,}){4,}")
_CHAT = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi there"},
    {"role": "user", "content": "What is 2+2?"},
]
_TOOL = {"type": "function", "function": {"name": "add", "description": "Add two numbers.",
         "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}  # fmt: skip
_SAMPLES: tuple[dict[str, Any], ...] = tuple(
    {"messages": messages, "add_generation_prompt": True, "bos_token": "<s>",
     "eos_token": "</s>", "tools": tools}
    for messages, tools in (
        ([{"role": "system", "content": "You are a test."}, *_CHAT], None),
        (_CHAT, None),  # templates that refuse a system role (Gemma 2)
        (_CHAT, [_TOOL]),  # templates written for tool use only
    )
)  # fmt: skip
"""Chats rendered in turn: a template is fine when one of them renders."""


class _Generation(Extension):
    """transformers' `{% generation %}...{% endgeneration %}` (it marks the assistant's
    tokens for training masks): rendered as its body."""

    tags = {"generation"}  # noqa: RUF012 - Jinja's own attribute

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """`tojson` as transformers defines it for chat templates (not HTML-escaped)."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)  # fmt: skip


def _environment() -> ImmutableSandboxedEnvironment:
    """The environment transformers gives chat templates, in Jinja's immutable sandbox: loop
    controls, `{% generation %}`, `raise_exception`, `strftime_now`, its `tojson`."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols, _Generation])  # fmt: skip

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    def strftime_now(format: str) -> str:
        return datetime(2026, 1, 15, 12, 0, tzinfo=UTC).strftime(format)

    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.filters["tojson"] = _tojson
    return env


@dataclass(frozen=True)
class Reference:
    name: str
    architectures: tuple[str, ...]
    text: str


@cache
def reference_templates() -> tuple[Reference, ...]:
    folder = resources.files("modeldepot.scan") / "reference_templates"
    index = tomllib.loads((folder / "index.toml").read_text(encoding="utf-8"))
    return tuple(
        Reference(name, tuple(entry["architectures"]),
                  (folder / f"{name}.jinja").read_text(encoding="utf-8"))
        for name, entry in index["templates"].items()
    )  # fmt: skip


def _is_content(node: nodes.Node) -> bool:
    """A message's content itself (`m['content']`, `m.content`, a variable named content),
    not a part of it (`content['type']`) or a test of its kind (`content is string`)."""
    if isinstance(node, nodes.Getattr):
        return node.attr == "content"
    if isinstance(node, nodes.Getitem):
        return getattr(getattr(node, "arg", None), "value", None) == "content"
    return isinstance(node, nodes.Name) and node.name == "content"


_TEXT_METHODS = {"startswith", "endswith", "find", "count", "index", "rfind", "__contains__"}


def _content_matches(test: nodes.Node) -> list[str]:
    """The literals a condition compares a message's content with (`content == 'x'`,
    `'x' in content`, `content.startswith('x')`): what makes text appear only for some
    messages."""
    within = [test, *test.find_all(nodes.Node)]
    # `content is mapping and 'blocks' in content` looks up a key of structured content.
    structured = any(isinstance(n, nodes.Test) and n.name == "mapping" and _is_content(n.node)
                     for n in within)  # fmt: skip
    literals: list[str] = []
    for compare in (n for n in within if isinstance(n, nodes.Compare)):
        operands = [compare.expr, *(op.expr for op in compare.ops)]
        membership = any(op.op in ("in", "notin") for op in compare.ops)
        if any(_is_content(o) for o in operands) and not (structured and membership):
            literals += _strings(operands)
    for call in (n for n in within if isinstance(n, nodes.Call)):
        method = call.node
        if (isinstance(method, nodes.Getattr) and method.attr in _TEXT_METHODS
                and _is_content(method.node)):  # fmt: skip
            literals += _strings(call.args)
    return literals


def _strings(operands: list[nodes.Expr]) -> list[str]:
    return [o.value for o in operands if isinstance(o, nodes.Const) and isinstance(o.value, str)
            and o.value]  # fmt: skip


def _emitted_text(body: list[nodes.Node]) -> str:
    parts: list[str] = []
    for stmt in body:
        for sub in stmt.find_all((nodes.TemplateData, nodes.Const)):
            value = (
                getattr(sub, "data", None)
                if isinstance(sub, nodes.TemplateData)
                else getattr(sub, "value", None)
            )
            if isinstance(value, str):
                parts.append(value)
    return " ".join(parts)


def _ast_findings(tree: nodes.Template, where: str) -> Iterator[Finding]:
    for node in tree.find_all(nodes.Getattr):
        if node.attr.startswith("_") or node.attr in _INTERNAL_ATTRS:
            yield Finding(
                where,
                "template.internal-attribute",
                Severity.CRITICAL,
                f"reaches for attribute {node.attr!r} (line {node.lineno})",
            )
    for item in tree.find_all(nodes.Getitem):  # fmt: skip
        key = getattr(getattr(item, "arg", None), "value", None)
        if isinstance(key, str) and key.startswith("__"):
            yield Finding(
                where,
                "template.internal-attribute",
                Severity.CRITICAL,
                f"reaches for item {key!r} (line {item.lineno})",
            )
    for flt in tree.find_all(nodes.Filter):  # fmt: skip
        if flt.name == "attr":
            yield Finding(
                where,
                "template.attr-filter",
                Severity.HIGH,
                f"uses the attr filter to reach attributes by name (line {flt.lineno})",
            )
    for name in tree.find_all(nodes.Name):  # fmt: skip
        if name.ctx == "load" and name.name in _ESCAPE_GLOBALS:
            yield Finding(where, "template.escape-global", Severity.HIGH,
                          f"uses {name.name!r}, a known route out of the sandbox "
                          f"(line {name.lineno})")  # fmt: skip
    for cond in tree.find_all(nodes.If):
        constants = _content_matches(cond.test)
        if not constants:
            continue
        text = _emitted_text(cond.body)
        if constants and _PROSE.search(text):
            yield Finding(where, "template.content-trigger", Severity.HIGH,
                          f"emits text when a message's content matches {constants[0]!r} "
                          f"(line {cond.lineno}): {text.strip()[:120]!r}")  # fmt: skip


def _render(source: str, conn: Any) -> None:
    template = _environment().from_string(source)
    first = ""
    for sample in _SAMPLES:
        try:
            template.render(**sample)
            conn.send(("ok", ""))
            return
        except SecurityError as exc:
            conn.send(("security", str(exc)))
            return
        except Exception as exc:
            first = first or f"{type(exc).__name__}: {exc}"
    conn.send(("error", first))


def _render_findings(source: str, where: str) -> Iterator[Finding]:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_render, args=(source, child), daemon=True)
    proc.start()
    child.close()
    outcome: tuple[str, str] | None = None
    if parent.poll(_RENDER_SECONDS):
        try:
            outcome = parent.recv()
        except EOFError:
            outcome = None
    if proc.is_alive():
        proc.kill()
    proc.join()
    if outcome is None:
        yield Finding(
            where,
            "template.render-timeout",
            Severity.HIGH,
            f"rendering a short chat did not finish in {_RENDER_SECONDS:.0f} s",
        )
    elif outcome[0] == "security":  # fmt: skip
        yield Finding(
            where,
            "template.sandbox-violation",
            Severity.CRITICAL,
            f"the sandbox stopped the template: {outcome[1]}",
        )
    elif outcome[0] == "error":  # fmt: skip
        yield Finding(where, "template.render-error", Severity.INFO,
                      f"rendering a sample chat failed: {outcome[1][:200]}")  # fmt: skip


def _normal(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


def _reference_findings(source: str, architecture: str | None, where: str) -> Iterator[Finding]:
    refs = reference_templates()
    text = _normal(source)
    for ref in refs:
        if _normal(ref.text) == text:
            yield Finding(where, "template.known", Severity.INFO,
                          f"matches the {ref.name} template")  # fmt: skip
            return
    candidates = [r for r in refs if architecture in r.architectures] or list(refs)
    # quick_ratio bounds ratio from above: the exact (quadratic) ratio only for the likeliest.
    bounded = sorted(
        candidates,
        key=lambda r: difflib.SequenceMatcher(None, _normal(r.text), text).quick_ratio(),
        reverse=True,
    )
    scored = [
        (difflib.SequenceMatcher(None, _normal(r.text), text, autojunk=False).ratio(), r)
        for r in bounded[:3]
    ]
    ratio, best = max(scored, key=lambda pair: pair[0])
    if ratio < 0.6:
        arch = f" for architecture {architecture!r}" if architecture else ""
        yield Finding(where, "template.unrecognised", Severity.INFO,
                      f"matches no reference template{arch} (closest: {best.name}, "
                      f"{ratio:.0%} alike)")  # fmt: skip
        return
    added = [
        line[2:]
        for line in difflib.ndiff(_normal(best.text).splitlines(), text.splitlines())
        if line.startswith("+ ")
    ]
    prose = [m.group(0) for line in added for m in _PROSE.finditer(line)]
    if prose:
        yield Finding(where, "template.modified", Severity.MEDIUM,
                      f"{ratio:.0%} like the {best.name} template, with added text: "
                      f"{prose[0][:120]!r}")  # fmt: skip
    else:
        yield Finding(where, "template.variant", Severity.INFO,
                      f"{ratio:.0%} like the {best.name} template")  # fmt: skip


def check_template(source: str, where: str, architecture: str | None = None, *,
                   compare: bool = True) -> list[Finding]:  # fmt: skip
    """Findings on a template's text (with `compare`, also how it differs from the templates
    its architecture ships)."""
    try:
        tree = _environment().parse(source)
    except TemplateSyntaxError as exc:
        return [Finding(where, "template.syntax", Severity.MEDIUM,
                        f"not a valid Jinja template ({exc})")]  # fmt: skip
    found = list(_ast_findings(tree, where))
    if not any(f.severity >= Severity.HIGH for f in found):
        found += _render_findings(source, where)
    if compare:
        found += _reference_findings(source, architecture, where)
    return found


class ChatTemplateScanner:
    name: ClassVar[str] = "gguf"

    def accepts(self, item: Item) -> bool:
        return item.head[:4] == b"GGUF"

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        from modeldepot.errors import FormatError
        from modeldepot.formats.gguf_header import read_header

        if item.path is None:
            return []
        try:
            header = read_header(item.path)
        except FormatError as exc:
            return [Finding(item.location, "gguf.damaged", Severity.HIGH, str(exc))]
        architecture = header.fields.get("general.architecture")
        found: list[Finding] = []
        for key, value in sorted(header.fields.items()):
            if key.startswith("tokenizer.chat_template") and isinstance(value, str):
                found += check_template(value, f"{item.location}:{key}", architecture)
        return found


class JinjaFileScanner:
    """A chat template shipped as its own file (`chat_template.jinja` beside the weights, a
    preset's `preset/template.jinja`), and a preset's system prompt (`preset/system.txt`),
    which is checked as template text too: what reaches the prompt is scanned either way."""

    name: ClassVar[str] = "jinja"

    def accepts(self, item: Item) -> bool:
        named = item.suffix == ".jinja" or item.location.endswith("/preset/system.txt")
        return named and item.size < 1024 * 1024

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        try:
            text = item.read_all().decode("utf-8")
        except UnicodeDecodeError:
            return [Finding(item.location, "template.not-text", Severity.MEDIUM,
                            "a .jinja file that is not UTF-8 text")]  # fmt: skip
        return check_template(text, item.location, compare=item.suffix == ".jinja")
