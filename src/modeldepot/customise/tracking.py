"""Fine-tuning runs logged to an MLflow tracking server through its REST API (the same calls
MLflow's own client makes: experiments/get-by-name and create, runs/create, runs/log-batch,
runs/update), so no MLflow package is needed to log: parameters at the start, the loss at every
step, the held-out loss and the evaluation before and after at the end. A job resumed after a
kill logs into the same run."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from modeldepot.errors import DepotError

__all__ = ["EXPERIMENT", "MLflowRun", "TrackingFailed"]

EXPERIMENT = "modeldepot-finetune"


class TrackingFailed(DepotError):
    """The tracking server refused or could not be reached."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class MLflowRun:
    def __init__(self, uri: str, run_id: str, client: httpx.Client) -> None:
        self.uri = uri.rstrip("/")
        self.run_id = run_id
        self._client = client

    @staticmethod
    def check(uri: str) -> None:
        """TrackingFailed unless `uri` answers as an MLflow tracking server."""
        with httpx.Client(base_url=uri.rstrip("/") + "/api/2.0/mlflow", timeout=10) as client:
            _call(client, "GET", "experiments/get-by-name",
                  params={"experiment_name": EXPERIMENT}, missing_ok=True)  # fmt: skip

    @classmethod
    def start(cls, uri: str, name: str, tags: Mapping[str, str], *,
              run_id: str | None = None) -> MLflowRun:  # fmt: skip
        """A new run in the `modeldepot-finetune` experiment, or the existing `run_id`."""
        client = httpx.Client(base_url=uri.rstrip("/") + "/api/2.0/mlflow", timeout=30)
        if run_id is not None:
            return cls(uri, run_id, client)
        found = _call(client, "GET", "experiments/get-by-name",
                      params={"experiment_name": EXPERIMENT}, missing_ok=True)  # fmt: skip
        if found is None:
            experiment = _call(client, "POST", "experiments/create", json={"name": EXPERIMENT})
            experiment_id = experiment["experiment_id"]
        else:
            experiment_id = found["experiment"]["experiment_id"]
        created = _call(client, "POST", "runs/create", json={
            "experiment_id": experiment_id, "run_name": name, "start_time": _now_ms(),
            "tags": [{"key": k, "value": v} for k, v in tags.items()]})  # fmt: skip
        return cls(uri, created["run"]["info"]["run_id"], client)

    def log(self, *, params: Mapping[str, Any] | None = None,
            metrics: Mapping[str, float] | None = None, step: int = 0) -> None:  # fmt: skip
        now = _now_ms()
        body: dict[str, Any] = {"run_id": self.run_id}
        if params:
            body["params"] = [{"key": k, "value": str(v)[:6000]} for k, v in params.items()]
        if metrics:
            body["metrics"] = [{"key": k, "value": float(v), "timestamp": now, "step": step}
                               for k, v in metrics.items()]  # fmt: skip
        _call(self._client, "POST", "runs/log-batch", json=body)

    def finish(self, status: str = "FINISHED") -> None:
        _call(self._client, "POST", "runs/update",
              json={"run_id": self.run_id, "status": status, "end_time": _now_ms()})  # fmt: skip
        self._client.close()


def _call(client: httpx.Client, method: str, path: str, *, missing_ok: bool = False,
          **kwargs: Any) -> Any:  # fmt: skip
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise TrackingFailed(f"the MLflow server at {client.base_url} cannot be reached "
                             f"({exc})") from None  # fmt: skip
    if missing_ok and response.status_code == 404:
        return None
    if response.status_code >= 400:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise TrackingFailed(f"MLflow {path}: HTTP {response.status_code}: {message[:200]}")
    return response.json()
