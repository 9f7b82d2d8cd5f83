"""Open WebUI, from PyPI, pointed at the depot as its Ollama backend: it lists the depot's
models and chats with one, checked in Chromium; a screenshot goes to docs/screenshots.

    python bench/openwebui_check.py [--depot URL] [--model smollm2] [--port 8090]

Open WebUI is not a test dependency: it brings 261 packages (torch among them) whose pins
conflict with the depot's. This installs it once into a venv of its own,
`~/.cache/modeldepot/open-webui-0.12.4` (`pip install open-webui==0.12.4 torch==2.13.0+cpu`:
the CPU build, found by `--find-links` or `--extra-index-url
https://download.pytorch.org/whl/cpu`, instead of CUDA's), starts it offline (no embedding or
speech model fetched, no telemetry, no update check, no sign-in), with `OLLAMA_BASE_URL` the
depot (one started here on a fresh home with `--model` pulled, unless `--depot` names one),
and drives Debian's chromium through Playwright (never `playwright install`): the model
selector must offer the depot's model, and a message sent must get an answer.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

VERSION = "0.12.4"
VENV = Path.home() / ".cache" / "modeldepot" / f"open-webui-{VERSION}"
ROOT = Path(__file__).parent.parent
SCREENSHOT = ROOT / "docs" / "screenshots" / "openwebui.png"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str, seconds: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer in {seconds:.0f} s: {log.read_text()[-3000:]}")


def install() -> Path:
    program = VENV / "bin" / "open-webui"
    if program.exists():
        return program
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", f"open-webui=={VERSION}",
                    "torch==2.13.0+cpu"], check=True)  # fmt: skip
    return program


def start_depot(model: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    from modeldepot.config import Settings
    from modeldepot.depot import Depot

    home = work / "depot"
    with Depot(Settings(home=home, user="bench")) as depot:
        depot.intake.pull(model)
    port = free_port()
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2"}
    env.pop("DEPOT_DATABASE_URL", None)
    log = work / "depot.log"
    proc = subprocess.Popen([sys.executable, "-c", "from modeldepot.cli import main; main()",
                             "serve", "--port", str(port)], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait(f"{url}/health", 60, proc, log)
    return proc, url


def start_webui(program: Path, depot: str, port: int, work: Path) -> subprocess.Popen[bytes]:
    data = work / "webui"
    data.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        "DATA_DIR": str(data),
        "OLLAMA_BASE_URL": depot,
        "ENABLE_OLLAMA_API": "True",
        "ENABLE_OPENAI_API": "False",
        "WEBUI_AUTH": "False",
        "WEBUI_SECRET_KEY": secrets.token_hex(16),
        "OFFLINE_MODE": "True",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "False",
        "RAG_RERANKING_MODEL_AUTO_UPDATE": "False",
        "WHISPER_MODEL_AUTO_UPDATE": "False",
        "ENABLE_VERSION_UPDATE_CHECK": "False",
        "ENABLE_WEB_SEARCH": "False",
        "ENABLE_IMAGE_GENERATION": "False",
        "ENABLE_TITLE_GENERATION": "False",
        "ENABLE_TAGS_GENERATION": "False",
        "ENABLE_FOLLOW_UP_GENERATION": "False",
        "ENABLE_AUTOCOMPLETE_GENERATION": "False",
        # Open WebUI 0.12 sends its built-in tools (search, memory, notes...) with every chat
        # from the UI ("native" function calling): some 8,000 tokens of tool descriptions,
        # more than the depot's default context holds for a 135M model. The legacy mode
        # sends none unless tools are chosen.
        "DEFAULT_MODEL_PARAMS": '{"function_calling": "legacy"}',
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
    }
    log = work / "webui.log"
    proc = subprocess.Popen([str(program), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=data, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    wait(f"http://127.0.0.1:{port}/health", 900, proc, log)
    return proc


def drive(url: str, model: str, message: str) -> str:
    """List the models in the selector, pick `model`, send `message`; returns the answer."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url, wait_until="domcontentloaded", timeout=180_000)  # it keeps a socket open
        page.get_by_role("button", name="Okay, Let's Go!").click(timeout=120_000)  # what's new
        page.locator("button[aria-label^='Selected model']").first.click(timeout=60_000)
        offered = page.get_by_text(f"{model}:latest", exact=True)
        offered.first.wait_for(timeout=60_000)  # the selector lists the depot's /api/tags
        offered.first.click()
        chosen = page.locator("button[aria-label^='Selected model']").first
        assert chosen.get_attribute("aria-label") == f"Selected model: {model}:latest"
        page.locator("#chat-input").click()
        page.keyboard.type(message)
        page.keyboard.press("Enter")
        answer = page.locator("#response-content-container").last
        answer.wait_for(timeout=300_000)
        # done once the message's actions (copy, regenerate...) are shown under it
        page.get_by_role("button", name="Regenerate").last.wait_for(timeout=300_000)
        text = answer.inner_text(timeout=60_000)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        browser.close()
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depot", help="a running depot serve (default: start one)")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    program = install()
    work = Path(tempfile.mkdtemp(prefix="openwebui-check-"))
    started: list[subprocess.Popen[bytes]] = []
    try:
        depot = args.depot
        if depot is None:
            proc, depot = start_depot(args.model, work)
            started.append(proc)
        port = args.port or free_port()
        started.append(start_webui(program, depot, port, work))
        answer = drive(f"http://127.0.0.1:{port}", args.model, "Say hello in five words.")
        if not answer.strip() or "exceeds" in answer or "error" in answer.lower():
            raise SystemExit(f"Open WebUI showed no answer from the depot: {answer!r}")
        print(f"Open WebUI {VERSION} listed {args.model} from {depot} and answered: {answer!r}")
        print(f"screenshot: {SCREENSHOT}")
    finally:
        for proc in reversed(started):
            proc.terminate()
            proc.wait(60)
        print(f"logs: {work}")


if __name__ == "__main__":
    main()
