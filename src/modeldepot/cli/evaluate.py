"""`depot eval MODEL... --task T --suite S`, `depot eval tasks`, `depot eval compare A B`,
`depot leaderboard`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from modeldepot.cli.app import app, pass_depot
from modeldepot.cli.render import print_json, stderr, stdout
from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from modeldepot.scores import Score

__all__: list[str] = []


class _DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.1f} items/s")


@contextmanager
def _progress() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   _Rate(), TimeElapsedColumn(), console=stderr,
                   disable=not stderr.is_terminal)  # fmt: skip

    def start(label: str, total: int) -> Callable[[int], None]:
        task = bar.add_task(label, total=total)
        return lambda n: bar.advance(task, n)

    with bar:
        yield start


@app.group(cls=_DefaultGroup)
def eval() -> None:
    """Evaluate models on tasks: `depot eval MODEL... --suite core`."""


@eval.command("run")
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--task",
    "-t",
    "tasks",
    multiple=True,
    help="A built-in task name or a task YAML file (repeatable).",
)
@click.option("--suite", "-s", help="A named set of built-in tasks (core, reasoning, ...).")
@click.option("--limit", type=int, help="Score only the first N items of each task.")
@click.option("--max-tokens", type=int, help="Cap every generated answer at N tokens.")
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option(
    "--mc",
    "mc_mode",
    type=click.Choice(["auto", "loglikelihood", "letter"]),
    default="auto",
    show_default=True,
    help="Multiple choice by log-likelihood (local) or by the letter written (chat).",
)
@click.option("--judge", help="Model that scores open answers (MT-Bench).")
@click.option("--concurrency", type=int, default=4, show_default=True)
@click.option(
    "--server",
    help="Ask the models through this running depot server (base URL) instead of one run "
    "inside this command.",
)
@click.option("--api-key-env", help="Variable holding the --server's API key.")
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help="Spread (model, task, shard) work over this Ray cluster (with --server).",
)
@click.option(
    "--ray-workers",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Shards per model and task on Ray.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def run(depot: Depot, models: tuple[str, ...], tasks: tuple[str, ...], suite: str | None,
        limit: int | None, max_tokens: int | None, seed: int, mc_mode: str, judge: str | None,
        concurrency: int, server: str | None, api_key_env: str | None,
        ray_address: str | None, ray_workers: int, as_json: bool) -> None:  # fmt: skip
    """Score MODELS (local or remote) on tasks; results are stored against each version (for
    an alias, against the model that answered)."""
    from modeldepot.config import secret_from_env
    from modeldepot.connection import over_http
    from modeldepot.evaluation.runs import RayCluster, RunOptions, evaluate
    from modeldepot.evaluation.tasks import resolve
    from modeldepot.server.inprocess import in_process

    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    if max_tokens is not None and max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")
    chosen = resolve(list(tasks), suite)
    options = RunOptions(seed=seed, mc_mode=mc_mode, judge=judge,
                         concurrency=max(1, concurrency), limit=limit,
                         max_tokens=max_tokens)  # fmt: skip
    key = secret_from_env(api_key_env)
    if ray_address and not server:
        raise UsageError("--ray needs --server URL: the Ray workers ask that depot server")
    cluster = (RayCluster(ray_address, server, key, ray_workers)
               if ray_address and server else None)  # fmt: skip
    # Measuring is how a version meets the policy's [safety] section: it does not refuse here.
    measuring = dataclasses.replace(depot.settings, measuring=True)
    with _progress() as progress:
        results = evaluate(
            depot, list(models), chosen, options, progress=progress,
            connect=(lambda: over_http(server, key)) if server else
            (lambda: in_process(measuring)), ray=cluster,
        )  # fmt: skip
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("MODEL", "TASK", "METRIC", "SCORE", "95% INTERVAL", "ITEMS", "CACHED",
                   "SECONDS"):  # fmt: skip
        table.add_column(column, no_wrap=True)
    for r in results:
        for name, m in r.metrics.items():
            score = Score.of(name, m)
            span = f"[{score.low:.3f}, {score.high:.3f}]" if score.known else "-"
            table.add_row(r.model.label, f"{r.task.name} v{r.task.version}", name,
                          _number(score.value), span, str(score.items), str(r.cached),
                          f"{r.seconds:.1f}")  # fmt: skip
    stdout.print(table)
    if limit is not None:
        stderr.print(
            f"a partial run (--limit {limit}): recorded, but a run of a task over more "
            "items stays what the card and the leaderboard show",
            markup=False,
        )
    for r in results:
        for failure in r.failed[:3]:
            stderr.print(f"failed: {r.model.name} {r.task.name} {failure}", markup=False)


@eval.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_(as_json: bool) -> None:
    """The built-in tasks and suites, with their data's source and licence."""
    from modeldepot.evaluation.tasks import builtin_tasks, suites

    found = builtin_tasks()
    if as_json:
        print_json({"tasks": [{"name": t.name, "version": t.version, "output": t.output,
                               "items": len(t.items()), "metrics": list(t.metrics),
                               "category": t.category, "source": t.source,
                               "licence": t.licence} for t in found.values()],
                    "suites": {k: list(v) for k, v in suites().items()}})  # fmt: skip
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("TASK", "OUTPUT", "ITEMS", "METRICS", "CATEGORY", "LICENCE", "SOURCE"):
        table.add_column(column)
    for t in found.values():
        table.add_row(t.name, t.output, str(len(t.items())), ", ".join(t.metrics), t.category,
                      t.licence, t.source)  # fmt: skip
    stdout.print(table)
    for name, members in suites().items():
        stdout.print(f"suite {name}: {', '.join(members)}", markup=False)


@eval.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--suite", "-s", help="Only the tasks of this suite.")
@click.option(
    "--chart",
    type=click.Path(path_type=Path),
    default=Path("eval-gap.svg"),
    show_default=True,
    help="Where to write the chart: SVG, or PNG when the name ends in .png.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def compare(depot: Depot, a: str, b: str, suite: str | None, chart: Path, as_json: bool) -> None:
    """The gap between A and B on the items both were scored on (paired bootstrap 95%)."""
    from modeldepot.evaluation.client import resolve_model
    from modeldepot.evaluation.compare import gap_table, write_chart
    from modeldepot.evaluation.tasks import suites
    from modeldepot.registry.evaluations import EvaluationStore

    left, right = resolve_model(depot, a), resolve_model(depot, b)
    only = set(suites()[suite]) if suite and suite in suites() else None
    if suite and only is None:
        raise UsageError(f"unknown suite {suite!r}")
    rows = gap_table(EvaluationStore(depot.registry), left, right, only)
    write_chart(rows, chart, left.label, right.label)
    if as_json:
        print_json([{"kind": r.kind, "label": r.label, "metric": r.metric, "a": r.gap.a,
                     "b": r.gap.b, "difference": r.gap.difference, "low": r.gap.low,
                     "high": r.gap.high, "items": r.gap.items} for r in rows])  # fmt: skip
    else:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("", "METRIC", left.label, right.label, "A - B", "95% CI", "ITEMS"):
            table.add_column(column, no_wrap=True)
        for r in rows:
            name = r.label if r.kind == "task" else f"[{r.kind}] {r.label}"
            table.add_row(name, r.metric, _number(r.gap.a), _number(r.gap.b),
                          f"{r.gap.difference:+.3f}" + (" *" if r.gap.significant else ""),
                          f"[{r.gap.low:+.3f}, {r.gap.high:+.3f}]", str(r.gap.items))  # fmt: skip
        stdout.print(table)
    stderr.print(f"chart: {chart}")


@app.command("leaderboard")
@click.option("--task", "-t", help="Rank on this task alone (every model that ran it).")
@click.option(
    "--newest",
    is_flag=True,
    help="Show each model's newest run of a task, even a partial one (--limit), instead of "
    "its run over the most items.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def leaderboard_(depot: Depot, task: str | None, newest: bool, as_json: bool) -> None:
    """Every evaluated model, ranked by its mean score over the tasks every listed model ran
    (or by one task), each score with its 95% interval and item count."""
    from modeldepot.evaluation.compare import leaderboard
    from modeldepot.registry.evaluations import EvaluationStore

    board = leaderboard(EvaluationStore(depot.registry), task=task, newest=newest)
    if as_json:
        print_json(board.to_dict())
        return
    if not board.standings:
        stderr.print("nothing evaluated yet; try: depot eval smollm2 --suite core")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    ranking = "MEAN" if len(board.ranked_on) > 1 else "SCORE"
    for column in ("#", "MODEL", ranking, *board.tasks):
        table.add_column(column, no_wrap=True)
    for s in board.standings:
        cells: list[Any] = [s.scores[t].text() if t in s.scores else "-" for t in board.tasks]
        if s.mean is not None:
            head = s.mean.text()
        elif s.rank is not None:
            head = s.scores[board.ranked_on[0]].text()
        else:
            head = "-"
        table.add_row(str(s.rank or "-"), s.model, head, *cells)
    stdout.print(table)
    if board.ranked_on:
        stderr.print(f"ranked on {', '.join(board.ranked_on)}"
                     + ("" if board.by_task else " (the tasks every listed model ran)")
                     + "; scores are the 95% interval and the number of items",
                     markup=False)  # fmt: skip
    else:
        stderr.print("no task was run by every listed model: rank on one with --task",
                     markup=False)  # fmt: skip
