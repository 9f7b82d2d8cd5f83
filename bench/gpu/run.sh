#!/usr/bin/env bash
# vLLM behind the depot on an NVIDIA GPU: the depot's API against a client straight to the same
# vLLM server at 1, 8 and 64 concurrent streams, written to bench/gpu/RESULTS.md (and copied to
# $OUT when that is set). See bench/gpu/README.md.
#
#   bash bench/gpu/run.sh [extra options of bench/vllm_speed.py, e.g. --folder PATH]
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench/gpu/run.sh: no NVIDIA GPU here (nvidia-smi -L failed)" >&2
  exit 2
fi
nvidia-smi -L
make setup
# The official vllm wheel (CUDA) in its own cached environment, unless one is given.
if [ -z "${DEPOT_VLLM_PYTHON:-}" ]; then
  make vllm VLLM_DEVICE=cuda
fi
.venv/bin/python bench/vllm_speed.py --device cuda --sizes 1,8,64 --threads 8 --tokens 128 \
  --rounds 3 --type bf16 --results bench/gpu/RESULTS.md "$@"
if [ -n "${OUT:-}" ]; then
  cp bench/gpu/RESULTS.md "$OUT/"
fi
