"""The playground in the browser: a streamed chat with the packaged SmolLM2 (Enter sends,
Shift+Enter starts a new line), then the same prompt to two models side by side (an arena),
each with its time to first token and speed. Only models that chat are offered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from builders import write_hf_folder
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
        # a sentence-transformers folder: served for embeddings, never for chat
        folder = write_hf_folder(tmp_path_factory.mktemp("embedder") / "m", arch="BertModel")
        (folder / "modules.json").write_text("[]")
        depot.intake.import_path(folder, "embedder")
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
    # the conversation goes on, with the earlier turns sent again: Shift+Enter is a new line,
    # Enter sends
    page.fill("#prompt", "And of Italy?")
    page.press("#prompt", "Shift+Enter")
    page.type("#prompt", "Say it briefly.")
    assert page.input_value("#prompt") == "And of Italy?\nSay it briefly."
    assert page.locator("#answer-a .turn.user").count() == 1  # nothing sent yet
    page.press("#prompt", "Enter")
    assert _answer(page, "a").strip()
    assert page.locator("#answer-a .turn.assistant").count() == 2
    assert page.locator("#answer-a .turn.user").last.inner_text() == (
        "And of Italy?\nSay it briefly.")  # fmt: skip
    assert page.input_value("#prompt") == ""
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


def test_only_models_that_chat_are_offered(chat_server: str, browser: Any) -> None:
    listed = {m["id"] for m in httpx.get(chat_server + "/v1/models").json()["data"]}
    assert "embedder:latest" in listed  # the API serves it, for embeddings
    page = new_page(browser)
    page.goto(chat_server + "/playground")
    for select in ("#model-a", "#model-b"):
        offered = page.locator(f"{select} option").evaluate_all("os => os.map(o => o.value)")
        assert "smollm2:latest" in offered and "embedder:latest" not in offered
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
