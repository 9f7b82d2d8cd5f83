"""Governance in the browser: an admin key releases a quarantined version (and the audit log
names it as the actor), creates and revokes keys; a key without the admin scope is refused,
and a state-changing form without the session's token is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.usage import UsageRecord
from servers import start_server
from ui.conftest import new_page, screenshot, sign_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    home = tmp_path_factory.mktemp("governed") / "depot"
    with Depot(Settings(home=home, user="tests")) as depot:
        version = depot.intake.import_path(
            write_gguf(tmp_path_factory.mktemp("g") / "m.gguf"), "suspect"
        )
        depot.quarantine.hold(version, reason="unknown supplier")
        _, boss = depot.keys.create("boss", admin=True)
        _, reader = depot.keys.create("reader")
        for tokens in (120, 80):
            depot.usage.record(UsageRecord("reader", "suspect:latest", "/v1/chat/completions",
                                           200, tokens, 10, 50.0, 20.0))  # fmt: skip
    proc, url = start_server(home, DEPOT_THREADS="2")
    yield url, boss, reader
    proc.terminate()
    proc.wait(30)


def test_admin_releases_and_the_audit_log_names_the_key(governed: tuple[str, str, str],
                                                        browser: Any) -> None:  # fmt: skip
    url, boss, _ = governed
    page = new_page(browser)
    sign_in(page, url, boss, "/governance/quarantine")
    queue = page.locator("#queue tbody")
    assert "suspect:latest" in queue.inner_text() and "unknown supplier" in queue.inner_text()
    screenshot(page, "quarantine")
    page.fill("#release-1", "supplier checked")
    page.click("#queue button")
    page.wait_for_url("**done=**")
    assert "suspect:latest released" in page.locator(".done").inner_text()
    assert "Nothing is quarantined" in page.locator("#queue").inner_text()
    page.goto(url + "/governance/audit?action=quarantine.release")
    row = page.locator("#events tbody tr").first
    assert row.locator(".actor").inner_text() == "boss"
    assert "supplier checked" in row.inner_text()
    assert page.locator("#chain").inner_text().startswith("Chain intact")
    screenshot(page, "audit")
    # keys: create one (its secret shown once), then revoke it
    page.goto(url + "/governance/keys")
    page.fill("#k-name", "ci-bot")
    page.fill("#k-models", "suspect*")
    page.fill("#k-tpd", "5000")
    page.click("form:has(#k-name) button")
    secret = page.locator("#new-secret").inner_text()
    totals = page.locator("#usage-totals").inner_text()
    assert "reader" in totals and "suspect:latest" in totals and "220" in totals
    assert page.locator("#usage-keys canvas").count() == 1
    assert page.locator("#usage-models canvas").count() == 1
    assert secret.startswith("md-")
    assert httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {secret}"}
                     ).status_code == 200  # fmt: skip
    screenshot(page, "keys")
    page.click("button[aria-label='Revoke ci-bot']")
    page.wait_for_url("**done=**")
    assert "key ci-bot revoked" in page.locator(".done").inner_text()
    page.goto(url + "/governance/audit?actor=boss")
    actions = page.locator("#events .action").all_inner_texts()
    assert {"key.create", "key.revoke", "quarantine.release"} <= set(actions)
    page.context.close()


def test_reader_is_refused_governance(governed: tuple[str, str, str], browser: Any) -> None:
    url, _, reader = governed
    page = new_page(browser)
    sign_in(page, url, reader, "/")
    assert page.locator("nav a[href='/governance/keys']").count() == 0
    response = page.goto(url + "/governance/keys")
    assert response.status == 403
    assert "admin scope" in page.locator("main").inner_text()
    # a form posted without the session's token changes nothing
    response = page.request.post(url + "/governance/keys/create",
                                 form={"name": "sneaky", "csrf": "forged"})  # fmt: skip
    assert response.status == 403
    page.context.close()


def test_forged_token_is_refused_for_an_admin(governed: tuple[str, str, str],
                                              browser: Any) -> None:  # fmt: skip
    url, boss, _ = governed
    page = new_page(browser)
    sign_in(page, url, boss, "/")
    response = page.request.post(url + "/governance/keys/create",
                                 form={"name": "sneaky", "csrf": "forged"})  # fmt: skip
    assert response.status == 403
    page.goto(url + "/governance/keys")
    assert "sneaky" not in page.locator("#keys").inner_text()
    # no state change through GET
    assert page.request.get(url + "/governance/keys/revoke?name=boss").status in (404, 405)
    page.context.close()


PAGES = [
    "/",
    "/models/suspect:latest",
    "/leaderboard",
    "/jobs",
    "/playground",
    "/governance/quarantine",
    "/governance/audit",
    "/governance/keys",
    "/governance/policy",
]


def test_every_page_is_labelled_and_keyboard_reachable(governed: tuple[str, str, str],
                                                       browser: Any) -> None:  # fmt: skip
    url, boss, _ = governed
    page = new_page(browser)
    sign_in(page, url, boss, "/")
    for path in PAGES:
        response = page.goto(url + path)
        assert response.status == 200, path
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))"
            ".map(e => e.name || e.id)")  # fmt: skip
        assert unlabelled == [], (path, unlabelled)
        assert page.locator("main > h1").count() == 1, path
        # the first Tab reaches the skip link, which leads to the content
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == "#main", path
        buttons = page.evaluate(
            "[...document.querySelectorAll('button')].filter(b => !b.innerText.trim() "
            "&& !b.getAttribute('aria-label')).length"
        )
        assert buttons == 0, path
    page.context.close()
