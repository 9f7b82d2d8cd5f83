"""Task files: modeldepot's YAML, lm-evaluation-harness's YAML on local data, the built-in
suite with its licences, and the statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeldepot.errors import UsageError
from modeldepot.evaluation.stats import pass_at_k
from modeldepot.evaluation.tasks import (
    MAX_DATA_BYTES,
    builtin_tasks,
    load_task,
    read_rows,
    resolve,
    suites,
)
from modeldepot.scores import mean_stderr, paired_bootstrap


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_native_task_with_csv_data(tmp_path: Path) -> None:
    (tmp_path / "qa.csv").write_text("question,answer\n2+2,4\n3+3,6\n5+5,10\n")
    (tmp_path / "qa.yaml").write_text(
        "name: sums\nversion: 2\noutput: generate\ndata: qa.csv\n"
        'prompt: "Q: {{ question }}\\nA:"\ntarget: answer\nfewshot: 1\nextract: "(\\\\d+)"\n'
    )
    task = load_task(tmp_path / "qa.yaml")
    assert (task.name, task.version, task.metrics) == ("sums", "2", ("exact_match",))
    items = task.items()
    assert [i["question"] for i in items] == ["3+3", "5+5"]  # the first is the example
    assert task.context(items[0]) == "Q: 2+2\nA: 4\n\nQ: 3+3\nA:"
    assert task.extracted(" It is 6.") == "6"


def test_lm_evaluation_harness_yaml_on_local_files(tmp_path: Path) -> None:
    _jsonl(tmp_path / "test.jsonl", [
        {"sentence": "The sky is", "options": ["blue", "green"], "label": 0},
        {"sentence": "Grass is", "options": ["blue", "green"], "label": 1},
    ])  # fmt: skip
    (tmp_path / "base.yaml").write_text("output_type: multiple_choice\ntarget_delimiter: ' '\n")
    (tmp_path / "colours.yaml").write_text(
        "include: base.yaml\ntask: colours\ndataset_path: json\n"
        "dataset_kwargs:\n  data_files:\n    test: test.jsonl\ntest_split: test\n"
        "doc_to_text: '{{sentence}}'\ndoc_to_choice: '{{options}}'\ndoc_to_target: label\n"
        "metric_list:\n  - metric: acc\n  - metric: acc_norm\nmetadata:\n  version: 1.0\n"
    )
    task = load_task(tmp_path / "colours.yaml")
    assert (task.name, task.output, task.version) == ("colours", "multiple_choice", "1.0")
    doc = task.items()[1]
    assert task.choice_list(doc) == ["blue", "green"] and task.answer_index(doc) == 1
    assert task.question(doc) == "Grass is" and task.metrics == ("acc", "acc_norm")


def test_harness_yaml_without_local_data_or_with_code_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text("task: hub\ndataset_path: cais/mmlu\n")
    with pytest.raises(UsageError, match="local data"):
        load_task(tmp_path / "hub.yaml")
    (tmp_path / "code.yaml").write_text("task: code\ndoc_to_text: !function utils.render\n")
    with pytest.raises(UsageError, match="!function"):
        load_task(tmp_path / "code.yaml")


def test_builtin_suite_ships_offline_with_licences() -> None:
    tasks = builtin_tasks()
    assert len(tasks["humaneval"].items()) == 164 and tasks["humaneval"].licence == "MIT"
    mtbench = tasks["mtbench"].items()
    assert len(mtbench) == 80 and len({q["category"] for q in mtbench}) == 8
    assert sum(1 for q in mtbench if q["reference"]) == 30
    bbh = [t for name, t in tasks.items() if name.startswith("bbh_")]
    assert len(bbh) == 14 and all(t.licence == "Apache-2.0" and "canary GUID" in t.canary
                                  for t in bbh)  # fmt: skip
    navigate = tasks["bbh_navigate"]
    doc = navigate.items()[0]
    assert navigate.choice_list(doc) == ["True", "False"] and navigate.answer(doc) in (
        "True",
        "False",
    )
    core = resolve([], "core")
    assert [t.name for t in core] == [n.split(":")[0] for n in suites()["core"]]
    assert len(core[0].items()) == 100 and len(core[-1].items()) == 20
    with pytest.raises(UsageError):
        resolve(["no_such_task"], None)


def test_statistics() -> None:
    assert mean_stderr([1.0, 0.0, 1.0, 0.0]) == pytest.approx(0.288675, rel=1e-5)
    assert pass_at_k(10, 0, 1) == 0 and pass_at_k(10, 10, 1) == 1
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    a = [1.0] * 80 + [0.0] * 20
    b = [1.0] * 50 + [0.0] * 50
    gap = paired_bootstrap(a, b)
    assert gap.difference == pytest.approx(0.3) and gap.low < 0.3 < gap.high
    assert gap.significant
    same = paired_bootstrap(a, a)
    assert same.difference == 0 and not same.significant


def test_task_data_is_read_within_bounds(tmp_path: Path) -> None:
    """A user's task data is hostile like any input: a line nested 100,000 levels deep, one
    longer than the bound, or a row that is not an object is refused naming the file and
    line, not a RecursionError or an unbounded read."""
    prompt = 'prompt: "{{ q }}"\ntarget: a\noutput: generate\n'
    cases = {
        "deep": (b'{"q": "1", "a": "1"}\n{"q": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
                 ":2: nested deeper than 64 levels"),
        "long": (b'{"q": "' + b"x" * (5 * 1024**2) + b'", "a": "1"}\n', ":1: longer than"),
        "list": (b'[1, 2]\n', "every row must be a JSON object"),
    }  # fmt: skip
    for name, (data, expected) in cases.items():
        (tmp_path / f"{name}.jsonl").write_bytes(data)
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\ndata: {name}.jsonl\n{prompt}")
        with pytest.raises(UsageError, match=expected):
            load_task(tmp_path / f"{name}.yaml").items()
    deep_json = tmp_path / "deep.json"
    deep_json.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (tmp_path / "json.yaml").write_text(f"name: js\ndata: deep.json\n{prompt}")
    with pytest.raises(UsageError, match="nested deeper than 64 levels"):
        load_task(tmp_path / "json.yaml").items()


def test_task_data_is_capped_once_decompressed(tmp_path: Path) -> None:
    """A small .gz that expands past the cap (a gzip bomb, in small) is refused with one clear
    error, whatever its format, before it is read whole; the same data within the cap loads."""
    import gzip

    row = b'{"q": "' + b"0" * 4000 + b'", "a": "1"}\n'
    for name, data in (("rows.jsonl.gz", row * 64), ("rows.json.gz", b"[" + b"1," * 40_000 + b"1]"),
                       ("rows.csv.gz", b"q,a\n" + b"0" * 200_000 + b",1\n")):  # fmt: skip
        path = tmp_path / name
        path.write_bytes(gzip.compress(data))
        assert path.stat().st_size < 2048 < len(data)
        with pytest.raises(UsageError, match="more than 65536 bytes once decompressed"):
            read_rows(path, max_bytes=65536)
    path = tmp_path / "rows.jsonl.gz"
    assert len(read_rows(path, max_bytes=MAX_DATA_BYTES)) == 64
    (tmp_path / "broken.jsonl.gz").write_bytes(gzip.compress(row)[:-12])
    with pytest.raises(UsageError, match="cannot be read"):
        read_rows(tmp_path / "broken.jsonl.gz")
