"""The playground in the browser: a streamed chat with the packaged SmolLM2, then the same
prompt to two models side by side (an arena), each with its time to first token and speed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from servers import start_server
from ui.conftest import new_page, screenshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("playground") / "depot"
    with Depot(Settings(home=home, user="tests")) as depot:
        depot.intake.pull("smollm2")
    proc, url = start_server(home, DEPOT_THREADS="2", DEPOT_CONTEXT="1024")
    yield url
    proc.terminate()
    proc.wait(30)


def _answer(page: Any, side: str) -> str:
    """The answer being streamed on `side`, once it has ended (its pane marked, then reset
    for the next question)."""
    page.wait_for_selector(f"#answer-{side}[data-done='true']", timeout=120_000)
    page.evaluate(f"document.getElementById('answer-{side}').dataset.done = ''")
    return str(page.locator(f"#answer-{side} .turn.assistant").last.inner_text())


def test_streamed_chat_and_arena(chat_server: str, browser: Any) -> None:
    page = new_page(browser)
    page.goto(chat_server + "/playground")
    page.select_option("#model-a", "smollm2:latest")
    page.fill("#system", "Answer in one short sentence.")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "24")
    page.fill("#prompt", "What is the capital of France?")
    page.click("#send")
    first = _answer(page, "a")
    assert first.strip()
    timing = page.locator("#answer-a .timing").inner_text()
    assert "first token" in timing and "tokens/s" in timing
    assert float(page.locator("#answer-a .turn.assistant").last.get_attribute(
        "data-first-token-ms") or "nan") >= 0  # fmt: skip
    # the conversation goes on, with the earlier turns sent again
    page.fill("#prompt", "And of Italy?")
    page.click("#send")
    assert _answer(page, "a").strip()
    assert page.locator("#answer-a .turn.assistant").count() == 2
    # the arena: the same prompt to two models, side by side
    page.click("#clear")
    page.check("#arena")
    page.select_option("#model-b", "smollm2:135m-instruct-q4_1")
    page.fill("#prompt", "Name a colour.")
    page.click("#send")
    left, right = _answer(page, "a"), _answer(page, "b")
    assert left.strip() and right.strip()
    assert page.locator("#answer-b .model-name").inner_text() == "smollm2:135m-instruct-q4_1"
    screenshot(page, "playground")
    page.context.close()


def test_unknown_model_is_reported(chat_server: str, browser: Any) -> None:
    page = new_page(browser)
    page.goto(chat_server + "/playground")
    page.evaluate("""() => { const o = document.createElement('option');
        o.value = 'nosuch'; o.textContent = 'nosuch';
        document.getElementById('model-a').append(o); }""")
    page.select_option("#model-a", "nosuch")
    page.fill("#prompt", "Hi")
    page.click("#send")
    page.wait_for_selector("#answer-a .turn.error")
    assert "nosuch" in page.locator("#answer-a .turn.error").inner_text()
    page.context.close()
