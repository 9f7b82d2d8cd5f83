#!/usr/bin/env bash
# Install MLflow (from PyPI, into its own cached environment: it is a service the tests talk to,
# not a dependency of the depot) and start its tracking server on loopback for the fine-tuning
# tests. Prints the URL to use as DEPOT_TEST_MLFLOW_URL on its last line.
set -euo pipefail
version=3.17.2
venv=${XDG_CACHE_HOME:-$HOME/.cache}/modeldepot/mlflow-$version
port=55500
if [ ! -x "$venv/bin/mlflow" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q "mlflow==$version" 2>&1 | grep -v '^WARNING: Location' >&2 || true
fi
url="http://127.0.0.1:$port"
if ! curl -sf "$url/health" >/dev/null 2>&1; then
  data=/var/tmp/modeldepot-mlflow
  mkdir -p "$data"
  nohup "$venv/bin/mlflow" server --host 127.0.0.1 --port "$port" \
    --backend-store-uri "sqlite:///$data/mlflow.db" --default-artifact-root "$data/artifacts" \
    --workers 1 > "$data/server.log" 2>&1 &
  for _ in $(seq 1 120); do
    curl -sf "$url/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -sf "$url/health" >/dev/null || { tail -n 20 "$data/server.log" >&2; exit 1; }
fi
echo "$url"
