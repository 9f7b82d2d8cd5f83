#!/usr/bin/env bash
# Build llama.cpp once per machine, from the llama.cpp sources inside the llama-cpp-python sdist
# that modeldepot pins, and give every consumer what it needs from that one build:
#   - its shared libraries (libllama, libggml*, libmtmd) to the Python bindings, which are
#     installed without compiling (CMAKE_ARGS=-DLLAMA_BUILD=OFF): linked into their lib/ folder;
#   - its programs (llama-server and the customise tools: llama-quantize, llama-export-lora,
#     llama-perplexity; llama-bench, llama-batched-bench for `make bench`) to DEST;
#   - its sources (the conversion scripts) to DEST/../share/modeldepot/llama.cpp.
# The build is cached under ~/.cache/modeldepot/, keyed by version.
#
#   scripts/build-llama-cpp.sh DEST [TARGET...]     (default target: llama-server)
set -euo pipefail
# The version is the one pyproject.toml pins (written there only).
version=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' "$(dirname "$0")/../pyproject.toml")
[ -n "$version" ] || { echo "pyproject.toml pins no llama-cpp-python version" >&2; exit 1; }
dest=${1:?usage: build-llama-cpp.sh DEST [TARGET...]}
shift
targets=("${@:-llama-server}")
[ ${#targets[@]} -gt 0 ] || targets=(llama-server)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/modeldepot/llama.cpp-$version
python=${PYTHON:-python3}
libs=(llama ggml ggml-base ggml-cpu mtmd)

# Built for this machine's CPU (-march=native) but without Intel AMX: llama.cpp 0.3.36 runs AMX
# tile instructions on worker threads that never asked Linux for the tile-data permission, so on
# a CPU with AMX every matrix product dies with SIGILL (fixed upstream after this version).
# A cached build made with other flags is built again.
cpu_flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
if [ -d "$cache/shared" ] && [ "$(cat "$cache/shared/.cpu-flags" 2>/dev/null)" != "$cpu_flags" ]; then
  rm -rf "$cache/shared"
fi

missing=()
for t in "${targets[@]}"; do [ -x "$cache/shared/bin/$t" ] || missing+=("$t"); done
for l in "${libs[@]}"; do [ -e "$cache/shared/bin/lib$l.so" ] || missing+=("$l"); done
if [ ${#missing[@]} -gt 0 ]; then
  mkdir -p "$cache/src"
  if [ ! -f "$cache/src/CMakeLists.txt" ]; then
    work=$(mktemp -d)
    "$python" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$work"
    tar xzf "$work"/llama_cpp_python-$version.tar.gz -C "$work"
    rm -rf "$cache/src" && mv "$work/llama_cpp_python-$version/vendor/llama.cpp" "$cache/src"
    rm -rf "$work"
  fi
  # The programs find the libraries beside them ($ORIGIN), wherever the cache is.
  cmake -S "$cache/src" -B "$cache/shared" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$cache/shared/bin" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$cache/shared/bin" \
    -DCMAKE_BUILD_RPATH='$ORIGIN' -DCMAKE_INSTALL_RPATH='$ORIGIN' \
    -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DCMAKE_C_FLAGS="$cpu_flags" -DCMAKE_CXX_FLAGS="$cpu_flags" >/dev/null
  cmake --build "$cache/shared" -j "$(nproc)" --target "${missing[@]}"
  echo "$cpu_flags" > "$cache/shared/.cpu-flags"
fi
mkdir -p "$dest"
for t in "${targets[@]}"; do ln -sf "$cache/shared/bin/$t" "$dest/$t"; done
# The conversion scripts (convert_hf_to_gguf.py, convert_lora_to_gguf.py) run from the sources.
mkdir -p "$dest/../share/modeldepot"
ln -sfn "$cache/src" "$dest/../share/modeldepot/llama.cpp"
# The Python bindings load lib<name>.so from llama_cpp/lib.
bindings=$("$python" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llama_cpp"); print(pathlib.Path(s.origin).parent if s else "")')
if [ -n "$bindings" ]; then
  mkdir -p "$bindings/lib"
  for l in "${libs[@]}"; do ln -sf "$cache/shared/bin/lib$l.so" "$bindings/lib/lib$l.so"; done
fi
