"""Extract the reasoning subset shipped in src/modeldepot/evaluation/data/bigbench/ from the
`bigbench` sdist on PyPI (BIG-bench 1.0.0, Apache-2.0).

    pip download --no-deps --no-binary :all: bigbench==1.0.0
    python scripts/vendor-bigbench.py bigbench-1.0.0.tar.gz

For each task: the first 250 examples (the BIG-Bench Hard size), as JSONL with `id`, `input`,
and either `choices` + `target` (index of the right choice) or `target` + `aliases` (free
answers). The canary string travels in SOURCE.md and in every task file.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).parents[1] / "src" / "modeldepot" / "evaluation" / "data" / "bigbench"
TASKS = {
    "causal_judgment": "causal_judgment",
    "date_understanding": "date_understanding",
    "disambiguation_qa": "disambiguation_qa",
    "formal_fallacies": "formal_fallacies_syllogisms_negation",
    "hyperbaton": "hyperbaton",
    "logical_deduction_three": "logical_deduction/three_objects",
    "navigate": "navigate",
    "penguins_in_a_table": "penguins_in_a_table",
    "snarks": "snarks",
    "sports_understanding": "sports_understanding",
    "temporal_sequences": "temporal_sequences",
    "tracking_shuffled_objects_three": "tracking_shuffled_objects/three_objects",
    "object_counting": "object_counting",
    "word_sorting": "word_sorting",
}
LIMIT = 250


def main(sdist: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    canaries = set()
    prefixes = {}
    with tarfile.open(sdist) as tar:
        for name, folder in TASKS.items():
            member = f"bigbench-1.0.0/bigbench/benchmark_tasks/{folder}/task.json"
            task = json.load(tar.extractfile(member))  # type: ignore[arg-type]
            canaries.add(task.get("canary", ""))
            prefixes[name] = task.get("task_prefix", "")
            rows = []
            for i, example in enumerate(task["examples"][:LIMIT]):
                row = {"id": f"{name}-{i}", "input": example["input"]}
                if "target_scores" in example:
                    choices = list(example["target_scores"])
                    row["choices"] = choices
                    row["target"] = max(range(len(choices)),
                                        key=lambda c: example["target_scores"][choices[c]])
                else:
                    targets = example["target"]
                    targets = targets if isinstance(targets, list) else [targets]
                    digits = [t for t in targets if str(t).isdigit()]
                    row["target"] = str(digits[0] if digits else targets[0])
                    row["aliases"] = [str(t) for t in targets]
                rows.append(row)
            with open(OUT / f"{name}.jsonl", "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(name, len(rows), file=sys.stderr)
    (OUT / "prefixes.json").write_text(json.dumps(prefixes, indent=1, ensure_ascii=False) + "\n")
    (OUT / "CANARY").write_text("\n".join(sorted(c for c in canaries if c)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
