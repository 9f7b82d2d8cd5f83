"""llama.cpp's own tools, built by `make setup` from the same pinned sources as llama-server:
llama-quantize (with the quantisation types it knows), llama-export-lora (merging),
llama-perplexity (measured on a text the project ships), and the Python converters
convert_hf_to_gguf.py and convert_lora_to_gguf.py. A tool that fails is reported with its own
last words."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

from modeldepot.config import Settings, child_environment
from modeldepot.errors import DepotError, UsageError
from modeldepot.runtime.llama import find_llama_program, llama_cpp_script

__all__ = [
    "PERPLEXITY_TEXT",
    "ToolFailed",
    "convert_hf",
    "export_lora",
    "perplexity",
    "quantization_types",
    "quantize",
    "run_tool",
]

PERPLEXITY_CONTEXT = 128


class ToolFailed(DepotError):
    """A llama.cpp tool exited with an error."""


def _text() -> Path:
    return Path(str(files("modeldepot.customise") / "data" / "perplexity.txt"))


PERPLEXITY_TEXT = "modeldepot/customise/data/perplexity.txt"


def run_tool(argv: list[str], what: str) -> str:
    """Run a tool; its standard output and error together, or ToolFailed with its last line."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env=child_environment(PYTHONUNBUFFERED="1"))  # fmt: skip
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower() or "failed" in line.lower()]
        last = (errors or lines or [f"exit status {done.returncode}"])[-1].strip()
        raise ToolFailed(f"{what} failed: {last}")
    return done.stdout + done.stderr


@functools.lru_cache(maxsize=4)
def _types(program: str) -> tuple[str, ...]:
    done = subprocess.run([program, "--help"], capture_output=True, text=True, check=False)
    found = re.findall(r"^\s+\d+\s+or\s+([A-Z0-9_]+)\s+:", done.stdout + done.stderr, re.M)
    return tuple(dict.fromkeys(found))


def quantization_types(settings: Settings) -> tuple[str, ...]:
    """The types the pinned llama-quantize knows (Q8_0, Q4_K_M, ...)."""
    return _types(str(find_llama_program("llama-quantize", settings)))


def quantize(source: Path, out: Path, kind: str, settings: Settings, *,
             requantize: bool = False) -> str:  # fmt: skip
    """`llama-quantize SOURCE OUT KIND THREADS`; returns the type as llama.cpp spells it."""
    known = quantization_types(settings)
    wanted = kind.upper()
    if wanted not in known:
        raise UsageError(f"{kind!r} is not a quantisation type llama.cpp knows; "
                         f"try one of {', '.join(known)}")  # fmt: skip
    program = str(find_llama_program("llama-quantize", settings))
    argv = [program, *(["--allow-requantize"] if requantize else []), str(source), str(out),
            wanted, str(settings.engine_threads)]  # fmt: skip
    run_tool(argv, "llama-quantize")
    return wanted


def export_lora(base: Path, adapter: Path, out: Path, settings: Settings,
                scale: float = 1.0) -> None:  # fmt: skip
    """Base + adapter into one GGUF (the adapted tensors in F16, the others as they were)."""
    program = str(find_llama_program("llama-export-lora", settings))
    run_tool([program, "-m", str(base), "--lora-scaled", f"{adapter}:{scale}", "-o", str(out),
              "-t", str(settings.engine_threads)], "llama-export-lora")  # fmt: skip


def perplexity(model: Path, settings: Settings, text: Path | None = None) -> tuple[float, float]:
    """Perplexity (and its standard error) of `model` on the project's text, in windows of
    128 tokens."""
    program = str(find_llama_program("llama-perplexity", settings))
    output = run_tool([program, "-m", str(model), "-f", str(text or _text()),
                       "-c", str(PERPLEXITY_CONTEXT), "-t", str(settings.engine_threads)],
                      "llama-perplexity")  # fmt: skip
    found = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", output)
    if found is None:
        raise ToolFailed("llama-perplexity printed no estimate")
    return float(found.group(1)), float(found.group(2))


def convert_hf(folder: Path, out: Path, outtype: str, settings: Settings) -> None:
    """A Hugging Face folder (safetensors) to GGUF with llama.cpp's converter."""
    script = llama_cpp_script("convert_hf_to_gguf.py", settings)
    run_tool([sys.executable, str(script), str(folder), "--outfile", str(out),
              "--outtype", outtype], "convert_hf_to_gguf.py")  # fmt: skip


def convert_lora(peft_dir: Path, base_config: Path, out: Path, settings: Settings) -> None:
    """A PEFT adapter to a GGUF LoRA (f16); `base_config` holds the base's config.json."""
    script = llama_cpp_script("convert_lora_to_gguf.py", settings)
    run_tool([sys.executable, str(script), "--base", str(base_config), "--outtype", "f16",
              "--outfile", str(out), str(peft_dir)], "convert_lora_to_gguf.py")  # fmt: skip
