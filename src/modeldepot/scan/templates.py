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
import multiprocessing
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
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
_SAMPLE = {
    "messages": [
        {"role": "system", "content": "You are a test."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "add_generation_prompt": True,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "tools": None,
}


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


def _mentions_content(node: nodes.Node) -> bool:
    for sub in node.find_all((nodes.Getitem, nodes.Getattr)):
        key = (
            sub.attr
            if isinstance(sub, nodes.Getattr)
            else getattr(getattr(sub, "arg", None), "value", None)
        )
        if key == "content":
            return True
    return False


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
        if not _mentions_content(cond.test):
            continue
        constants = [
            v
            for c in cond.test.find_all(nodes.Const)
            if isinstance(v := getattr(c, "value", None), str)
        ]
        text = _emitted_text(cond.body)
        if constants and _PROSE.search(text):
            yield Finding(where, "template.content-trigger", Severity.HIGH,
                          f"emits text when a message's content matches {constants[0]!r} "
                          f"(line {cond.lineno}): {text.strip()[:120]!r}")  # fmt: skip


def _render(source: str, conn: Any) -> None:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env.globals["raise_exception"] = raise_exception
    try:
        env.from_string(source).render(**_SAMPLE)
        conn.send(("ok", ""))
    except SecurityError as exc:
        conn.send(("security", str(exc)))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


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
            f"rendering a four-message chat did not finish in {_RENDER_SECONDS:.0f} s",
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
    scored = [
        (difflib.SequenceMatcher(None, _normal(r.text), text, autojunk=False).ratio(), r)
        for r in candidates
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


def check_template(source: str, where: str, architecture: str | None = None) -> list[Finding]:
    try:
        tree = ImmutableSandboxedEnvironment().parse(source)
    except TemplateSyntaxError as exc:
        return [Finding(where, "template.syntax", Severity.MEDIUM,
                        f"not a valid Jinja template ({exc})")]  # fmt: skip
    found = list(_ast_findings(tree, where))
    if not any(f.severity >= Severity.HIGH for f in found):
        found += _render_findings(source, where)
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
    """A chat template shipped as its own file (`chat_template.jinja` beside the weights)."""

    name: ClassVar[str] = "jinja"

    def accepts(self, item: Item) -> bool:
        return item.suffix == ".jinja" and item.size < 1024 * 1024

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        try:
            text = item.read_all().decode("utf-8")
        except UnicodeDecodeError:
            return [Finding(item.location, "template.not-text", Severity.MEDIUM,
                            "a .jinja file that is not UTF-8 text")]  # fmt: skip
        return check_template(text, item.location)
