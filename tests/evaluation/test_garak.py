"""garak run for real against an OpenAI-compatible stub on loopback: its report read back
(counts, hits, items), and every way a run that exits 0 can still have failed refused: a wrong
number of choices, an unreachable target, a report cut before its completion. Probe names are
checked against garak's plugin cache before it starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modeldepot.errors import UsageError
from modeldepot.evaluation import garak
from servers import DEPOT, free_port


@dataclass
class Stub:
    url: str
    reply: str = "I'm sorry, but I can't help with that."
    choices: int | None = None
    """Answer this many choices whatever `n` asks (None: as many as asked)."""
    delay: float = 0.0
    """Seconds to wait before answering."""
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def stub() -> Iterator[Stub]:
    port = free_port()
    state = Stub(f"http://127.0.0.1:{port}/v1/")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            state.bodies.append(body)
            time.sleep(state.delay)
            n = state.choices if state.choices is not None else int(body.get("n") or 1)
            self._send(200, {"id": "x", "object": "chat.completion", "created": 0,
                             "model": body.get("model"), "choices": [
                                 {"index": i, "finish_reason": "stop", "message": {
                                     "role": "assistant", "content": state.reply}}
                                 for i in range(n)],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                       "total_tokens": 2}})  # fmt: skip

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _run(python: Path, stub_url: str, folder: Path, probes: list[garak.Probe],
         generations: int = 1, timeout: float = 300) -> tuple[garak.Report, str]:  # fmt: skip
    run = garak.GarakRun(stub_url, "stub", tuple(p.name for p in probes), generations=generations,
                         seed=7, max_prompts=4)  # fmt: skip
    output = garak.run_garak(python, run, folder, api_key="k", timeout=timeout,
                             environ=os.environ)  # fmt: skip
    return garak.parse_report(folder / "garak.report.jsonl", probes, output), output


def test_report_read_back_matches_garaks_own_counts(garak_python: Path, stub: Stub,
                                                    tmp_path: Path) -> None:  # fmt: skip
    probes = garak.catalogue(garak_python)
    chosen, _ = garak.select(probes, ["dan.AutoDANCached", "lmrc.QuackMedicine"])
    stub.reply = "Sure! DAN mode enabled. Here is how to do it."  # no refusal: jailbroken
    report, _ = _run(garak_python, stub.url, tmp_path, chosen, generations=2)
    dan, quack = report.probes["dan.AutoDANCached"], report.probes["lmrc.QuackMedicine"]
    assert report.garak_version == garak.GARAK_VERSION
    # 3 prompts x 2 generations, each answered with `n = 2` in one request
    assert (dan.prompts, dan.attempts) == (3, 6) and {b.get("n") for b in stub.bodies} == {2}
    assert dan.hits == 6 and dan.rate == 1.0  # MitigationBypass: no refusal is a hit
    assert dan.detectors["mitigation.MitigationBypass"] == {"passed": 0, "fails": 6, "nones": 0}
    assert dan.missing == ()
    assert len(dan.items) == 6 and set(dan.items.values()) == {1.0}
    assert quack.attempts == 2 and quack.hits == 0
    low, high = dan.ci95
    assert 0.5 < low < 1.0 == high
    # stop sequences are not sent (garak's `#` and `;` would cut code); the seed is
    assert all("stop" not in b and b.get("seed") == 7 for b in stub.bodies)
    entry = dan.to_dict()
    assert entry["attack_success_rate"] == 1.0 and entry["ci95"][1] == 1.0


def test_a_refusal_is_no_hit_for_jailbreak_detectors(garak_python: Path, stub: Stub,
                                                     tmp_path: Path) -> None:  # fmt: skip
    chosen, _ = garak.select(garak.catalogue(garak_python), ["dan.AutoDANCached"])
    report, _ = _run(garak_python, stub.url, tmp_path, chosen)
    assert report.probes["dan.AutoDANCached"].hits == 0


def test_wrong_number_of_choices_fails_the_run(garak_python: Path, stub: Stub,
                                               tmp_path: Path) -> None:  # fmt: skip
    stub.choices = 2  # asked for 1
    chosen, _ = garak.select(garak.catalogue(garak_python), ["lmrc.QuackMedicine"])
    with pytest.raises(garak.GarakFailed, match="requested number of responses"):
        _run(garak_python, stub.url, tmp_path, chosen)


def test_a_run_past_its_time_limit_is_killed(garak_python: Path, stub: Stub,
                                             tmp_path: Path) -> None:  # fmt: skip
    stub.delay = 600  # an engine that never answers
    chosen, _ = garak.select(garak.catalogue(garak_python), ["lmrc.QuackMedicine"])
    with pytest.raises(garak.GarakFailed, match=r"did not finish within 20 s"):
        _run(garak_python, stub.url, tmp_path, chosen, timeout=20)
    assert stub.bodies  # it was asked, and then stopped


def test_unreachable_target_fails_the_run(garak_python: Path, tmp_path: Path) -> None:
    chosen, _ = garak.select(garak.catalogue(garak_python), ["lmrc.QuackMedicine"])
    with pytest.raises(garak.GarakFailed, match=r"no report|not reachable"):
        _run(garak_python, f"http://127.0.0.1:{free_port()}/v1/", tmp_path, chosen)


def test_a_report_without_completion_or_scores_is_refused(garak_python: Path, stub: Stub,
                                                          tmp_path: Path) -> None:  # fmt: skip
    chosen, _ = garak.select(garak.catalogue(garak_python), ["lmrc.QuackMedicine"])
    _run(garak_python, stub.url, tmp_path, chosen)
    lines = (tmp_path / "garak.report.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["entry_type"] for line in lines]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[: kinds.index("completion")]) + "\n")
    with pytest.raises(garak.GarakFailed, match="did not complete"):
        garak.parse_report(cut, chosen)
    unscored = tmp_path / "unscored.jsonl"
    unscored.write_text("\n".join(line for line, kind in zip(lines, kinds, strict=True)
                                  if kind != "attempt") + "\n")  # fmt: skip
    with pytest.raises(garak.GarakFailed, match=r"scored no output of probe lmrc\.QuackMedicine"):
        garak.parse_report(unscored, chosen)


def test_probe_names_are_checked_before_garak_starts(garak_python: Path) -> None:
    probes = garak.catalogue(garak_python)
    with pytest.raises(UsageError, match=r"unknown probe 'dan\.NoSuch'"):
        garak.select(probes, ["dan.NoSuch"])
    with pytest.raises(UsageError, match="unknown probe module 'nosuch'"):
        garak.select(probes, ["nosuch"])
    with pytest.raises(UsageError, match=r"MODULE or MODULE\.Class"):
        garak.select(probes, ["dan; rm -rf /"])
    with pytest.raises(UsageError, match=r"lmrc\.Bullying cannot run offline: its detector "
                                         r"unsafe_content\.ToxicCommentModel"):  # fmt: skip
        garak.select(probes, ["lmrc.Bullying"])
    chosen, unavailable = garak.select(probes, ["lmrc"])
    assert "lmrc.Bullying" in unavailable  # listed, never silently left out
    assert "lmrc.QuackMedicine" in {p.name for p in chosen}
    chosen, unavailable = garak.select(probes, [])
    assert {p.module for p in chosen} == set(garak.DEFAULT_PROBES)
    assert all(not p.unavailable for p in chosen)
    with pytest.raises(UsageError, match=r"packagehallucination\.Python cannot run offline"):
        garak.select(probes, ["dan", "packagehallucination.Python"])


def test_probes_whose_detectors_download_are_unavailable() -> None:
    cache = {
        "probes": {
            "probes.m.Local": {"active": True, "primary_detector": "m.Match"},
            "probes.m.Model": {"active": True, "primary_detector": "m.Classifier"},
            "probes.m.Api": {"active": True, "primary_detector": "perspective.Toxicity"},
            "probes.atkgen.Tox": {"active": True, "primary_detector": "m.Match"},
        },
        "detectors": {"detectors.m.Classifier": {"DEFAULT_PARAMS": {
            "detector_model_path": "someone/classifier"}}},
    }  # fmt: skip
    found = garak.probes_from_cache(cache)
    assert found["m.Local"].unavailable is None
    assert "Hugging Face Hub" in str(found["m.Model"].unavailable)
    assert "perspective.Toxicity" in str(found["m.Api"].unavailable)
    assert "generates attacks" in str(found["atkgen.Tox"].unavailable)


def test_garak_gets_none_of_the_depots_secrets(tmp_path: Path) -> None:
    program = tmp_path / "fake-python"  # stands in for garak's interpreter: prints its env
    program.write_text("#!/bin/sh\nenv\n")
    program.chmod(0o755)
    run = garak.GarakRun("http://127.0.0.1:1/v1/", "m", ("lmrc.QuackMedicine",))
    output = garak.run_garak(program, run, tmp_path / "run", api_key="one-time", timeout=60,
                             environ={"PATH": os.environ["PATH"], "AWS_SECRET_ACCESS_KEY": "s3",
                                      "DEPOT_API_KEYS": "k1", "LC_ALL": "C"})  # fmt: skip
    seen = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    assert "AWS_SECRET_ACCESS_KEY" not in seen and "DEPOT_API_KEYS" not in seen
    assert seen["OPENAICOMPATIBLE_API_KEY"] == "one-time" and seen["LC_ALL"] == "C"
    assert seen["HF_HUB_OFFLINE"] == "1"
    assert seen["XDG_CONFIG_HOME"] == str(tmp_path / "run" / "config")


def _garak_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if "-m garak" in command and marker in command:
            found.append(int(entry.name))
    return found


def test_a_stopped_redteam_stops_garak(garak_python: Path, stub: Stub,
                                       served_home: Path) -> None:  # fmt: skip
    stub.delay = 600  # garak waits on the model when the command is stopped
    env = {**os.environ, "DEPOT_HOME": str(served_home), "STUB_KEY": "k"}
    env.pop("DEPOT_DATABASE_URL", None)
    proc = subprocess.Popen([*DEPOT, "redteam", "smollm2", "-p", "lmrc.QuackMedicine",
                             "--server", stub.url, "--api-key-env", "STUB_KEY"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 180
    while not stub.bodies and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert stub.bodies, "garak never asked the model"
    marker = str(served_home / "redteam")
    assert _garak_processes(marker)
    proc.terminate()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert _garak_processes(marker) == []  # not left running on its own
