"""The web UI in a real browser (Debian's chromium through Playwright): the catalogue searched
and narrowed as a user would, a model's page, its AI-BOM downloaded and validated, a hostile
card that never runs a script, signing in with a key whose scope limits what is shown, a
revoked key's session ending, reading pages with JavaScript off, and the loss curve of a job.
Each page is saved as a screenshot (to DEPOT_TEST_SCREENSHOTS when set: `make screenshots`)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.describe.bom import validate_bom
from modeldepot.registry.evaluations import EvaluationRecord, EvaluationStore, now
from servers import DEPOT, start_server
from ui.conftest import new_page as _page
from ui.conftest import screenshot as _shot

pytestmark = pytest.mark.slow
HOSTILE_CARD = """---
license: mit
---
# Hostile card <script>window.pwned = 1</script>

[click me](javascript:window.pwned=2)

<img src="x" onerror="window.pwned=3">

<a href="#" onclick="window.pwned=4">also</a>
"""


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPOT_HOME": str(home)}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def ui_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("ui") / "depot"
    with Depot(Settings(home=home, user="tests")) as depot:
        smollm2 = depot.intake.pull("smollm2")
        # a hostile name, and a chat template that reaches for the OS: a finding to read
        hostile = write_gguf(
            tmp_path_factory.mktemp("gguf") / "x.gguf",
            name='<img src=x onerror="window.pwned=5">',
            template="{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        )
        version = depot.intake.import_path(hostile, "hostile")
        depot.documents.save_card(version, HOSTILE_CARD)
        store = EvaluationStore(depot.registry)
        for evaluated, scores in ((smollm2, [1, 1, 0, 1, 1, 1, 0, 1]),
                                  (version, [0, 1, 0, 0, 1, 0, 0, 0])):  # fmt: skip
            store.record(EvaluationRecord(
                subject=evaluated.digest, model=str(evaluated.reference), task="bbh_navigate",
                task_version="1", category="reasoning",
                metrics={"acc": {"value": sum(scores) / 8, "stderr": 0.15, "n": 8}},
                items={str(i): {"acc": float(x)} for i, x in enumerate(scores)}, settings={},
                at=now()), actor="tests")  # fmt: skip
        job = depot.jobs.create("finetune", "kestrel:latest", {
            "base": "smollm2:latest", "dataset": {"name": "kestrel.jsonl", "examples": 72,
            "digest": "sha256:" + "0" * 64}}, "tests")  # fmt: skip
        depot.jobs.report(job.id, step=5, total=5, losses=[2.3, 1.7, 1.2, 0.8, 0.5], loss=0.5)
        depot.jobs.finish(job.id, "succeeded", result="kestrel:latest")
    return home


@pytest.fixture(scope="module")
def server(ui_home: Path) -> Iterator[str]:
    proc, url = start_server(ui_home, DEPOT_THREADS="2")
    yield url
    proc.terminate()
    proc.wait(30)


def test_catalogue_search_and_facets(server: str, browser: Any) -> None:
    page = _page(browser)
    page.goto(server + "/")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 3  # smollm2's two tags and the hostile model
    _shot(page, "catalogue")
    page.fill("#q", "smollm2")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 2")
    assert "q=smollm2" in page.url  # the search is in the address, so it can be shared
    page.select_option("#facet-quantisation", "Q4_1")
    page.wait_for_url("**quantisation=Q4_1**")
    assert page.locator("#results .count").inner_text() == "2 versions"
    page.select_option("#sort", "size")
    page.wait_for_url("**sort=size**")
    # every form control has a label, and the search box is reached by keyboard
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length"
    )
    assert unlabelled == 0
    page.goto(server + "/")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    page.context.close()


def test_reading_pages_work_without_javascript(server: str, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    response = page.goto(server + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    page.goto(server + "/")
    page.fill("#q", "hostile")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**q=hostile**")
    assert page.locator("#results tbody tr").count() == 1
    page.click("#results a")
    assert page.locator("main > h1").inner_text().startswith("hostile:latest")
    assert page.locator("#files tbody tr").count() >= 1
    context.close()


def test_model_page_and_bom_download(server: str, browser: Any) -> None:
    page = _page(browser, accept_downloads=True)
    page.goto(server + "/")
    page.click("text=smollm2:latest")
    page.wait_for_url("**/models/smollm2**")
    assert page.locator("#licence .commercial").inner_text() == "allowed"
    assert "Apache-2.0" in page.locator("#licence").inner_text()
    files = page.locator("#files tbody tr")
    verdict = files.first.locator(".verdict").inner_text()
    assert files.count() >= 1 and verdict in ("clean", "info")  # nothing that blocks
    snippet = page.locator("#use").inner_text()
    assert f'base_url="{server}/v1"' in snippet and 'model="smollm2:latest"' in snippet
    _shot(page, "model")
    with page.expect_download() as download:
        page.click("text=AI-BOM (CycloneDX)")
    bom = json.loads(Path(download.value.path()).read_text())
    validate_bom(bom)
    assert bom["components"][0]["name"] == "smollm2"
    page.context.close()


def test_hostile_card_and_names_run_no_script(server: str, browser: Any) -> None:
    page = _page(browser)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server + "/models/hostile:latest")
    page.wait_for_load_state("networkidle")
    card = page.locator("#card article")
    assert "Hostile card" in card.inner_text()
    assert card.locator("script").count() == 0
    assert card.locator("[onerror], [onclick]").count() == 0
    hrefs = card.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not any(h and h.strip().lower().startswith("javascript:") for h in hrefs)
    for link in card.locator("a").all():
        link.click()
    page.goto(server + "/?q=hostile")  # the model's own name shown as text, never markup
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert dialogs == []
    _shot(page, "hostile-card")
    page.context.close()


def test_finding_and_leaderboard_gap(server: str, browser: Any) -> None:
    page = _page(browser)
    page.goto(server + "/models/hostile:latest")
    assert "quarantined" in page.locator("main > h1").inner_text()
    findings = page.locator("#findings .finding")
    assert findings.count() >= 1 and "critical" in findings.first.inner_text()
    assert "__globals__" in page.locator("#findings").inner_text()
    assert "critical" in page.locator("#files tbody").inner_text()  # the file's own verdict
    page.goto(server + "/models/smollm2:latest")
    assert "bbh_navigate" in page.locator("#evaluations").inner_text()
    assert page.locator("#evaluations svg.bars rect").count() == 1
    page.goto(server + "/leaderboard")
    assert page.locator("main table tbody tr").count() == 2
    page.select_option("#gap-a", index=0)  # smollm2, evaluated first
    page.select_option("#gap-b", index=1)
    page.click("form:has(#gap-a) button")
    row = page.locator("#gap-table tbody tr").first
    assert "bbh_navigate" in row.inner_text() and "+0.500" in row.inner_text()
    assert page.locator("figure.gap svg").count() == 1
    _shot(page, "leaderboard")
    page.goto(server + "/governance/policy")
    _shot(page, "policy")
    page.context.close()


def test_job_page_draws_the_loss_curve(server: str, browser: Any) -> None:
    page = _page(browser)
    page.goto(server + "/jobs")
    _shot(page, "jobs")
    page.click("#main table a")
    page.wait_for_selector("#loss-chart canvas")
    assert "step 5 of 5" in page.locator(".facts").inner_text()
    _shot(page, "job")
    page.context.close()


def test_signing_in_scope_and_revocation(ui_home: Path, browser: Any) -> None:
    # a server of its own: once a key exists the UI asks for one
    created = _cli(ui_home, "key", "create", "viewer", "--models", "smollm2*", "--json")
    secret = json.loads(created.stdout)["secret"]
    proc, url = start_server(ui_home, DEPOT_THREADS="2")
    try:
        page = _page(browser)
        page.goto(url + "/models/smollm2:latest")
        page.wait_for_url("**/signin**")
        _shot(page, "signin")
        page.fill("#key", "md-wrong-key")
        page.click("form.signin button")
        assert "not valid" in page.locator(".error").inner_text()
        page.fill("#key", secret)
        page.click("form.signin button")
        page.wait_for_url("**/models/smollm2**")  # back where it was going
        cookie = next(c for c in page.context.cookies() if c["name"] == "depot_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        page.goto(url + "/")
        names = page.locator("#results tbody a").all_inner_texts()
        assert names and all(n.startswith("smollm2") for n in names)  # the key's scope
        page.goto(url + "/models/hostile:latest")
        assert page.locator("main > h1").inner_text() == "Not found"
        _cli(ui_home, "key", "revoke", "viewer")
        page.wait_for_timeout(2500)  # the server's key cache
        page.goto(url + "/")
        page.wait_for_url("**/signin**")  # the revoked key's session has ended
        page.context.close()
    finally:
        proc.terminate()
        proc.wait(30)
