#!/usr/bin/env bash
# Build llama.cpp's programs from the llama.cpp sources inside the llama-cpp-python sdist that
# modeldepot pins (the same engine the Python bindings compile), once per machine, and link them
# into DEST. The build is cached under ~/.cache/modeldepot/, keyed by version and target.
#
#   scripts/build-llama-server.sh DEST [TARGET...]     (default target: llama-server)
set -euo pipefail
version=0.3.36
dest=${1:?usage: build-llama-server.sh DEST [TARGET...]}
shift
targets=("${@:-llama-server}")
[ ${#targets[@]} -gt 0 ] || targets=(llama-server)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/modeldepot/llama.cpp-$version
python=${PYTHON:-python3}

missing=()
for t in "${targets[@]}"; do [ -x "$cache/bin/$t" ] || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  mkdir -p "$cache/src"
  if [ ! -f "$cache/src/CMakeLists.txt" ]; then
    work=$(mktemp -d)
    "$python" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$work"
    tar xzf "$work"/llama_cpp_python-$version.tar.gz -C "$work"
    rm -rf "$cache/src" && mv "$work/llama_cpp_python-$version/vendor/llama.cpp" "$cache/src"
    rm -rf "$work"
  fi
  cmake -S "$cache/src" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >/dev/null
  cmake --build "$cache/build" -j "$(nproc)" --target "${missing[@]}"
  mkdir -p "$cache/bin"
  for t in "${missing[@]}"; do cp "$cache/build/bin/$t" "$cache/bin/$t"; done
fi
mkdir -p "$dest"
for t in "${targets[@]}"; do ln -sf "$cache/bin/$t" "$dest/$t"; done
