#!/usr/bin/env bash
# Install garak, the red-teaming tool behind `depot redteam`, in an environment of its own
# (its pins fight the depot's: openai<3 against llm's openai>3, transformers<5.20 against the
# train extra), cached under ~/.cache/modeldepot/ keyed by its version, and write
# DEST/garak-python, the program the depot runs garak with.
#
#   scripts/install-garak.sh DEST
#
# torch comes first, pinned like the depot's own (TORCH_INDEX: where pip finds the CPU build).
set -euo pipefail
GARAK_VERSION=0.17.1
TORCH_VERSION=2.13.0
dest=${1:?usage: install-garak.sh DEST}
python=${PYTHON:-python3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/modeldepot/garak-$GARAK_VERSION
recipe="garak==$GARAK_VERSION torch==$TORCH_VERSION torch-index=${TORCH_INDEX:-} $("$python" -c 'import sys; print(sys.version.split()[0])')"

if [ "$(cat "$cache/.installed" 2>/dev/null)" != "$recipe" ]; then
  rm -rf "$cache"
  "$python" -m venv "$cache"
  "$cache/bin/python" -m pip install -q --upgrade pip
  "$cache/bin/python" -m pip install -q "torch==$TORCH_VERSION" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
  "$cache/bin/python" -m pip install -q "garak==$GARAK_VERSION"
  "$cache/bin/python" -c 'import garak; print("garak", garak.__version__)'
  echo "$recipe" > "$cache/.installed"
fi
mkdir -p "$dest"
# A script, not a link: a link to a virtual environment's python would find the depot's
# environment (pyvenv.cfg) beside the link.
printf '#!/bin/sh\nexec "%s/bin/python" "$@"\n' "$cache" > "$dest/garak-python"
chmod +x "$dest/garak-python"
