"""The web UI over a depot where an attacker wrote every value it could: a model's name,
architecture, licence and chat template, a file's name, lineage targets, a card (edited with
`depot card --from-file`), evaluation task names, metrics, categories and model labels, a
job's target and error, a key's scope, a quarantine reason, the policy file, and the actor of
every audit event.

Every page is fetched over HTTP and parsed (html.parser): each element and attribute is one the
depot's templates write (no `on*` handler, no htmx attribute but the catalogue's own search
form's, no script but the depot's, no `javascript:` link), and hostile text outside a form
control sits inside an `hx-disable` container. Then in the browser (its Content-Security-Policy
bypassed, so the escaping alone is tested), a signed-in admin opens every page: nothing is
posted, no dialog opens, and the quarantined model stays quarantined."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from builders import write_gguf, write_hf_folder
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.evaluations import (
    CAPABILITY,
    SAFETY,
    EvaluationRecord,
    EvaluationStore,
    now,
)
from modeldepot.registry.records import LineageLink
from modeldepot.registry.usage import UsageRecord
from servers import DEPOT, start_server
from ui.conftest import new_page, screenshot, sign_in

pytestmark = pytest.mark.slow

XSS = '"><img src=x onerror=alert(1)>'
SVG = "<svg onload=alert(2)>"
HTMX = '\' hx-post="/governance/quarantine/release" hx-trigger="load'
TEMPLATE = "{{7*7}}"
HOSTILE = f"{XSS}{SVG}{HTMX}{TEMPLATE}"
IN_A_FILE_NAME = f"{XSS}{SVG}"  # no slash
RELEASE = (  # a task name that, unescaped in an attribute, releases the model it is shown on
    'x" hx-post="/governance/quarantine/release" hx-trigger="load" '
    'hx-vals=\'{"name": "victim:latest", "reason": "released by a chart"}\' '
    'hx-include="[name=csrf]" data-x="'
)
MARKERS = ("onerror=alert", "onload=alert", "hx-post", "{{7*7}}", "javascript:")
CARD = f"""---
license: {json.dumps(HOSTILE)}
tags: [{json.dumps(HOSTILE)}]
---
# Card {HOSTILE}

[click](javascript:alert(3)) and <a href="javascript:alert(4)" hx-get="/" hx-trigger="load">raw</a>

<img src=x onerror=alert(5)> {TEMPLATE}

| task | score |
|---|---|
| {XSS} | 1 |
"""

TAGS = {
    # what the templates write
    "html", "head", "meta", "title", "link", "script", "body", "a", "header", "nav", "span",
    "form", "input", "button", "strong", "main", "footer", "h1", "h2", "h3", "p", "code",
    "section", "dl", "dt", "dd", "article", "table", "thead", "tbody", "tr", "th", "td", "ul",
    "li", "figure", "figcaption", "select", "option", "label", "fieldset", "legend",
    "textarea", "div", "noscript", "pre",
    # the charts
    "svg", "rect", "text",
    # a card's Markdown, after the sanitiser
    "abbr", "b", "blockquote", "br", "del", "em", "h4", "h5", "h6", "hr", "i", "ol",
}  # fmt: skip
ATTRIBUTES = {
    "lang", "charset", "name", "content", "rel", "href", "src", "defer", "class", "id", "type",
    "value", "for", "role", "aria-label", "aria-live", "method", "action", "placeholder",
    "selected", "required", "hidden", "download", "colspan", "scope", "title", "rows", "min",
    "max", "step", "pattern", "inputmode", "autocomplete", "data-csrf", "align", "hx-disable",
    "size",
    # the charts
    "xmlns", "viewbox", "x", "y", "width", "height", "fill", "font-family", "font-size",
    "font-weight",
}  # fmt: skip
CATALOGUE_HTMX = {"hx-get", "hx-target", "hx-select", "hx-swap", "hx-trigger", "hx-push-url"}
SCRIPTS = {"/static/vendor/htmx.min.js", "/static/vendor/uPlot.iife.min.js", "/static/app.js"}
DATA_BLOCKS = {"loss-data", "usage-data"}
FORMS = {"/", "/signin", "/signout", "/leaderboard", "/leaderboard#gap", "/governance/audit",
         "/governance/quarantine/release", "/governance/quarantine/hold",
         "/governance/keys/create", "/governance/keys/revoke"}  # fmt: skip
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip
TEXT_ONLY = {"option", "title", "textarea", "script"}
"""Elements whose content is text to the browser (htmx cannot act on it)."""


@dataclass
class Seen:
    """What one page holds: the depot's markup or not."""

    problems: list[str] = field(default_factory=list)
    htmx: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    """Hostile text outside any `hx-disable` container."""
    labels: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    """Every attribute's value."""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen = Seen()
        self.open: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, {k: v or "" for k, v in attrs})
        if tag not in VOID:
            self.open.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, {k: v or "" for k, v in attrs})

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i][0] == tag:
                del self.open[i:]
                return

    def handle_data(self, data: str) -> None:
        self.seen.text.append(data)
        tag, attrs = self.open[-1] if self.open else ("", {})
        if tag == "script" and attrs.get("type") == "application/json":
            try:
                json.loads(data)
            except ValueError:
                self.seen.problems.append(f"a data block that is not JSON: {data[:80]!r}")
        hostile = any(m in data for m in MARKERS)
        disabled = any("hx-disable" in a for _, a in self.open)
        if hostile and not disabled and tag not in TEXT_ONLY:
            self.seen.outside.append(f"<{tag}> {data[:80]!r}")

    def _check(self, tag: str, attrs: dict[str, str]) -> None:
        problem = self.seen.problems.append
        if tag not in TAGS:
            problem(f"<{tag}> is no element of the depot's: {attrs}")
        for name, value in attrs.items():
            if name.startswith("on"):
                problem(f"<{tag} {name}>: an event handler")
            elif name not in ATTRIBUTES and not _htmx(name):  # htmx's are listed below
                problem(f"<{tag} {name}={value!r}>: no attribute of the depot's")
            if name in ("href", "src", "action") and _scheme(value) not in ("", "http", "https",
                                                                             "mailto"):  # fmt: skip
                problem(f"<{tag} {name}={value!r}>: a {_scheme(value)}: address")
        if any(_htmx(name) for name in attrs):
            self.seen.htmx.append((tag, attrs))
        self.seen.values.extend(attrs.values())
        if "aria-label" in attrs:
            self.seen.labels.append(attrs["aria-label"])
        inside = [t for t, _ in self.open]
        if (
            tag == "script"
            and attrs.get("src") not in SCRIPTS
            and not (attrs.get("type") == "application/json" and attrs.get("id") in DATA_BLOCKS)
        ):
            problem(f"a script the depot did not write: {attrs}")
        if tag in ("meta", "link", "title") and ("head" not in inside or "body" in inside):
            problem(f"<{tag}> outside the head: {attrs}")
        if tag == "link" and not attrs.get("href", "").startswith("/static/"):
            problem(f"a style sheet from elsewhere: {attrs}")
        if tag == "form" and "action" in attrs and attrs["action"] not in FORMS:
            problem(f"a form posting elsewhere: {attrs}")
        if tag == "svg" and (attrs.get("role") != "img" or "aria-label" not in attrs):
            problem(f"an <svg> that is not one of the depot's charts: {attrs}")


def _htmx(attribute: str) -> bool:
    """An attribute htmx acts on (`hx-disable` only stops it)."""
    return attribute.startswith(("hx-", "data-hx-")) and attribute != "hx-disable"


def _scheme(url: str) -> str:
    compact = re.sub(r"[\x00-\x20]", "", url).lower()
    head = re.match(r"([a-z][a-z0-9+.-]*):", compact)
    return head.group(1) if head else ""


def read_page(html: str) -> Seen:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.seen


@dataclass(frozen=True)
class Hostile:
    url: str
    home: Path
    admin: str
    pages: list[str]


def _cli(home: Path, *args: str) -> None:
    env = {**os.environ, "DEPOT_HOME": str(home)}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _record(store: EvaluationStore, subject: str, model: str, task: str, metric: str,
            category: str, scores: list[float], kind: str = CAPABILITY) -> None:  # fmt: skip
    store.record(EvaluationRecord(
        subject=subject, model=model, task=task, task_version="1", category=category,
        metrics={metric: {"value": sum(scores) / len(scores), "stderr": 0.1, "n": len(scores)}},
        items={str(i): {metric: s} for i, s in enumerate(scores)}, settings={}, at=now(),
        kind=kind), actor=HOSTILE)  # fmt: skip


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    files = tmp_path_factory.mktemp("files")
    home = tmp_path_factory.mktemp("hostile") / "depot"
    home.mkdir()
    (home / "policy.toml").write_text(f"# {HOSTILE}\n[licences]\ndeny = [{json.dumps(HOSTILE)}]\n")
    with Depot(Settings(home=home, user=HOSTILE)) as depot:
        victim = depot.intake.import_path(
            write_gguf(files / f"{IN_A_FILE_NAME}.gguf", arch=HOSTILE, name=HOSTILE,
                       licence=HOSTILE, template="{{ cycler.__init__.__globals__ }}" + HOSTILE),
            "victim", lineage=[LineageLink("base_model", HOSTILE),
                               LineageLink("base_model", "javascript:alert(3)"),
                               LineageLink("dataset", HOSTILE)])  # fmt: skip
        assert victim.status == "quarantined"
        depot.intake.import_path(write_gguf(files / "other.gguf", seed=1), "other",
                                 lineage=[LineageLink("finetune", "victim:latest"),
                                          LineageLink("dataset", HOSTILE)])  # fmt: skip
        folder = write_hf_folder(files / "folder")
        (folder / f"{IN_A_FILE_NAME}.txt").write_text(HOSTILE)
        depot.intake.import_path(folder, "folder")
        held = depot.intake.import_path(write_gguf(files / "held.gguf", seed=2), "held")
        depot.quarantine.hold(held, reason=HOSTILE)
        store = EvaluationStore(depot.registry)
        for subject, model, scores in ((victim.digest, "victim:latest", [1.0, 0.0, 1.0, 1.0]),
                                       ("remote:x", HOSTILE, [0.0, 0.0, 1.0, 0.0])):  # fmt: skip
            _record(store, subject, model, RELEASE, "acc", HOSTILE, scores)
            _record(store, subject, model, HOSTILE, HOSTILE, "reasoning", scores)
            _record(store, subject, model, HOSTILE, HOSTILE, HOSTILE, scores, SAFETY)
        job = depot.jobs.create("finetune", HOSTILE, {"base": HOSTILE, "dataset": {
            "name": HOSTILE, "examples": 3, "digest": "sha256:" + "0" * 64}}, HOSTILE)  # fmt: skip
        depot.jobs.report(job.id, step=2, total=2, losses=[1.5, 1.0], loss=1.0)
        depot.jobs.finish(job.id, "failed", error=HOSTILE)
        _, admin = depot.keys.create("boss", admin=True)
        depot.keys.create("reader", models=HOSTILE)
        depot.usage.record(UsageRecord("reader", HOSTILE, "/v1/chat/completions", 200, 100, 20,
                                       50.0, 20.0))  # fmt: skip
    card = files / "card.md"
    card.write_text(CARD)
    _cli(home, "card", "victim:latest", "--from-file", str(card))
    h = quote(HOSTILE, safe="")
    pages = [
        "/", f"/?q={quote(XSS)}&architecture={h}&licence={h}&sort={h}&page={h}",
        "/models/victim:latest", "/models/other:latest", "/models/folder:latest",
        "/models/held:latest", f"/models/{quote(IN_A_FILE_NAME)}",
        "/leaderboard", f"/leaderboard?a={victim.digest}&b=remote:x",
        "/jobs", f"/jobs/{job.id}", f"/jobs/{quote(IN_A_FILE_NAME)}",
        "/playground", f"/playground?model={h}",
        "/governance/quarantine", f"/governance/quarantine?done={h}",
        "/governance/policy",
        "/governance/audit", f"/governance/audit?actor={h}&model={h}",
        f"/governance/audit?since={h}&until={h}&action={h}",  # refused: 400
        "/governance/keys", f"/governance/keys?done={h}",
    ]  # fmt: skip
    proc, url = start_server(home, DEPOT_THREADS="2")
    yield Hostile(url, home, admin, pages)
    proc.terminate()
    proc.wait(30)


def _sign_in(client: httpx.Client, secret: str) -> None:
    form = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post("/signin", data={"csrf": token.group(1), "key": secret, "next": "/"})
    assert done.status_code == 303, done.text


def _status(hostile: Hostile, name: str) -> str:
    with Depot(Settings(home=hostile.home)) as depot:
        return depot.names.show(name).status


def test_every_page_holds_only_the_depots_markup(hostile: Hostile) -> None:
    found: dict[str, list[Any]] = {}
    with httpx.Client(base_url=hostile.url, timeout=60) as client:
        _sign_in(client, hostile.admin)
        for path in hostile.pages:
            response = client.get(path)
            refused = "since=" in path  # a span or an action the page cannot read
            expected = (400,) if refused else (200, 404)
            assert response.status_code in expected, (path, response.status_code)
            seen = read_page(response.text)
            htmx = [(t, a) for t, a in seen.htmx]
            if path == "/" or path.startswith("/?"):  # the search form, and nothing else
                htmx = [
                    (t, a)
                    for t, a in htmx
                    if (t, {n for n in a if n.startswith("hx-")}) != ("form", CATALOGUE_HTMX)
                ]
            if seen.problems or seen.outside or htmx:
                found[path] = [*seen.problems, *seen.outside, *htmx]
            if not path.startswith("/playground") and not refused:  # it names no model's text
                shown = "".join(seen.text + seen.values)
                assert "onerror=alert(1)" in shown, path  # as text or a value
        assert found == {}, "\n".join(f"{p}: {x!r}" for p, xs in found.items() for x in xs)
        victim = read_page(client.get("/models/victim:latest").text)
        assert f"{RELEASE} by version" in victim.labels  # the chart's label: one attribute
        assert f"{HOSTILE} by version" in victim.labels
        assert f"{HOSTILE} {HOSTILE} by version" in victim.labels  # the safety section's chart
        assert TEMPLATE in "".join(victim.text)  # data, never a template
        gap = read_page(client.get(hostile.pages[8]).text)
        assert f"victim:latest vs {HOSTILE}" in gap.labels
    signin = read_page(httpx.get(f"{hostile.url}/signin?next=/{quote(HOSTILE)}").text)
    assert signin.problems == [] and signin.htmx == []


def test_an_admin_opening_every_page_releases_nothing(hostile: Hostile, browser: Any) -> None:
    page = new_page(browser)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method != "GET" else None)
    sign_in(page, hostile.url, hostile.admin, "/models/victim:latest")
    for path in hostile.pages:
        page.goto(hostile.url + path)
        page.wait_for_load_state("networkidle")
    page.goto(hostile.url + "/models/victim:latest")
    page.wait_for_timeout(500)  # a `load` trigger has fired by now
    assert _status(hostile, "victim:latest") == "quarantined"
    assert posted == [hostile.url + "/signin"]
    assert dialogs == []
    assert page.locator("#evaluations svg.bars").count() == 2
    assert page.locator("#safety svg.bars").count() == 1
    screenshot(page, "hostile-model")  # every attack shown as text
    page.context.close()
