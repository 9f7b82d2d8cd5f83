"""`depot redteam`: garak's probes against a model through the depot's own API, the results
recorded as safety evaluations of the version that answered, garak's report and hit log kept
beside them.

Each probe module run is one evaluation (task `redteam.<module>`, kind `safety`): its metrics
are the attack success rate of the module (every output of its classes pooled) and of each
class, with the 95% interval and the item count; its items are the outputs, 1 for a hit, so
that two versions run with the same seed compare output by output (the adapter's card, the
policy's before and after). An output is a hit when any of its probe's detectors scores it at
or over 0.5 (garak's threshold): the worst of garak's own per-detector rates, or more.

garak's detectors are crude string matches: a model that answers anything looks vulnerable to
every jailbreak, and a refusal can count as a hit for some (lmrc.Anthropomorphisation).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modeldepot.config import child_environment
from modeldepot.depot import Depot
from modeldepot.errors import ConflictError, UsageError
from modeldepot.evaluation import garak
from modeldepot.evaluation.client import ModelRef, resolve_model
from modeldepot.registry.evaluations import (
    REDTEAM,
    SAFETY,
    EvaluationRecord,
    EvaluationStore,
    now,
)
from modeldepot.scores import interval, mean_stderr

__all__ = ["RedteamOptions", "RedteamResult", "records", "redteam"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedteamOptions:
    probes: tuple[str, ...] = ()
    """Modules or classes (none: garak.DEFAULT_PROBES)."""
    generations: int = 1
    seed: int = 1234
    max_prompts: int = 32
    max_tokens: int = 150
    parallel: int = 4
    timeout: float = 3600.0


@dataclass
class RedteamResult:
    model: ModelRef
    probes: list[garak.ProbeResult]
    unavailable: dict[str, str]
    folder: str
    seconds: float
    """The whole run: checks, garak, its report read back."""
    garak_version: str
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    garak_seconds: float = 0.0
    """garak's process alone, start to exit."""

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.label, "subject": self.model.identity,
                "probes": [p.to_dict() for p in self.probes],
                "unavailable": [{"probe": k, "reason": v} for k, v in self.unavailable.items()],
                "garak": self.garak_version, "artifacts": self.artifacts,
                "seconds": round(self.seconds, 2),
                "garak_seconds": round(self.garak_seconds, 2)}  # fmt: skip


def redteam(depot: Depot, name: str, options: RedteamOptions, *, base_url: str, api_key: str,
            on_start: Callable[[list[garak.Probe], dict[str, str]], None] | None = None,
            ) -> RedteamResult:  # fmt: skip
    """Run garak on the model `name` through the depot server at `base_url` (its /v1 root)
    and record the results against the version that answers to it."""
    model = resolve_model(depot, name)
    if model.alias:
        raise UsageError(f"{name} is an alias: red-teaming tests one model, so name it")
    if not model.remote:  # refused for other reasons than safety: garak would get 403s
        refused = [r for r in depot.names.show(name).reasons if not r.startswith("safety:")]
        if refused:
            raise ConflictError(f"{model.label} may not be served: {'; '.join(refused)}")
    started = time.perf_counter()
    python = depot.settings.garak_program
    chosen, unavailable = garak.select(garak.catalogue(python), options.probes)
    if on_start is not None:
        on_start(chosen, unavailable)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
    folder = depot.settings.layout.redteam_run(run_id)
    run = garak.GarakRun(
        base_url=base_url, model=model.name, probes=tuple(p.name for p in chosen),
        generations=options.generations, seed=options.seed, max_prompts=options.max_prompts,
        max_tokens=options.max_tokens, parallel=options.parallel,
    )  # fmt: skip
    launched = time.perf_counter()
    output = garak.run_garak(python, run, folder, api_key=api_key, timeout=options.timeout,
                             environ=child_environment())  # fmt: skip
    garak_seconds = time.perf_counter() - launched
    report = garak.parse_report(folder / f"{run.prefix}.report.jsonl", chosen, output)
    artifacts = {
        kind: {"path": str(path.relative_to(depot.settings.home)),
               "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
               "bytes": path.stat().st_size}
        for kind, path in (("report", folder / f"{run.prefix}.report.jsonl"),
                           ("hitlog", folder / f"{run.prefix}.hitlog.jsonl"),
                           ("html", folder / f"{run.prefix}.report.html"))
        if path.is_file()
    }  # fmt: skip
    result = RedteamResult(model, list(report.probes.values()), unavailable, str(folder),
                           time.perf_counter() - started, report.garak_version, artifacts,
                           garak_seconds)  # fmt: skip
    store = EvaluationStore(depot.registry)
    for record in records(result, options):
        store.record(record, actor=depot.settings.actor)
    return result


def _metric(hits: int, attempts: int) -> dict[str, float]:
    values = [1.0] * hits + [0.0] * (attempts - hits)
    low, high = interval(values)
    return {"value": hits / attempts if attempts else math.nan, "stderr": mean_stderr(values),
            "n": float(attempts), "low": low, "high": high, "hits": float(hits)}  # fmt: skip


def records(result: RedteamResult, options: RedteamOptions) -> list[EvaluationRecord]:
    """One safety evaluation per probe module run."""
    modules: dict[str, list[garak.ProbeResult]] = {}
    for p in result.probes:
        modules.setdefault(p.probe.split(".", 1)[0], []).append(p)
    out = []
    for module, members in modules.items():
        hits = sum(p.hits for p in members)
        attempts = sum(p.attempts for p in members)
        metrics = {module: _metric(hits, attempts)}
        items: dict[str, dict[str, float]] = {}
        for p in members:
            metrics[p.probe] = _metric(p.hits, p.attempts)
            for item, hit in p.items.items():
                items[item] = {module: hit, p.probe: hit}
        out.append(EvaluationRecord(
            subject=result.model.identity, model=result.model.label,
            task=f"{REDTEAM}{module}", task_version=f"garak-{result.garak_version}",
            category="safety", metrics=metrics, items=items,
            settings={"seed": options.seed, "generations": options.generations,
                      "max_prompts": options.max_prompts, "max_tokens": options.max_tokens,
                      "probes": [p.probe for p in members],
                      "unavailable": {k: v for k, v in result.unavailable.items()
                                      if k.startswith(f"{module}.")},
                      "missing_detectors": {p.probe: list(p.missing) for p in members
                                            if p.missing},
                      "detectors": {p.probe: p.detectors for p in members},
                      "artifacts": result.artifacts, "folder": result.folder},
            at=now(), kind=SAFETY,
        ))  # fmt: skip
    return out
