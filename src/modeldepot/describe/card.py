"""Model cards: Hugging Face's format (YAML front matter + Markdown), generated from a version's
own metadata and what the depot knows about it (files, lineage, licence terms, scans,
signatures, evaluations), with the documentation fields of the EU AI Act for general-purpose
models (Annex XI for authorities, Annex XII for downstream providers) present and marked
unknown where not known.

An edited card is kept as written, after its front matter is checked, and what the depot keeps
learning about the version still reaches it (`refresh_card`): the `model-index` of its front
matter, the block between the `depot:generated evaluation` and `depot:end evaluation` markers
(Markdown comments, invisible when rendered), and the lines for its status and the AI Act's
evaluation and integrity fields are regenerated; everything else stays as edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from modeldepot.describe import safety
from modeldepot.errors import UsageError
from modeldepot.formats.base import format_params
from modeldepot.licences import licence_terms
from modeldepot.registry.records import ModelVersion

__all__ = ["CardFacts", "parse_card", "refresh_card", "render_card"]

UNKNOWN = "unknown"
_PIPELINES = {"embed": "feature-extraction", "generate": "text-generation"}
_RELATIONS = {"finetune", "adapter", "quantized", "merge"}


@dataclass(frozen=True)
class CardFacts:
    """What the depot knows beyond the model's own files."""

    scan_summary: str = "not scanned"
    signatures: tuple[str, ...] = ()
    status: str = "ok"
    status_detail: str = ""
    """Why it is quarantined, or the exception it is served under."""
    evaluations: tuple[dict[str, Any], ...] = ()
    """model-index results: {"dataset", "metric", "value", "low", "high", "items", "limit"}."""
    derivation: dict[str, Any] | None = None
    """How the depot made this version (fine-tuned, merged, quantised, converted)."""
    comparisons: tuple[dict[str, Any], ...] = ()
    """Against the version it was made from: {"task", "metric", "before", "after",
    "difference", "low", "high", "items", "against"}."""
    safety: tuple[dict[str, Any], ...] = ()
    """Safety results (`describe.safety.rows`): red-teaming, bias, over-refusal."""
    safety_comparisons: tuple[dict[str, Any], ...] = ()
    """The safety results against the version it was made from, as `comparisons`."""


def _pipeline(version: ModelVersion) -> str:
    details = version.info.details or {}
    if details.get("pooling") or "embedding" in (version.info.architecture or "").lower():
        return _PIPELINES["embed"]
    return _PIPELINES["generate"]


def front_matter(version: ModelVersion, facts: CardFacts) -> dict[str, Any]:
    info = version.info
    bases = [link for link in version.lineage if link.relation != "dataset"]
    meta: dict[str, Any] = {
        "license": (info.license or UNKNOWN).lower() if info.license in (None, "other")
        else info.license.lower(),
        "pipeline_tag": _pipeline(version),
        "library_name": {"gguf": "gguf", "onnx": "onnx"}.get(info.format, "transformers"),
        "tags": sorted({t for t in (info.format, info.architecture, info.quantization) if t}),
        "language": info.details.get("languages") or [UNKNOWN],
    }  # fmt: skip
    if bases:
        meta["base_model"] = [link.target for link in bases]
        relation = next((link.relation for link in bases if link.relation in _RELATIONS), None)
        if relation:
            meta["base_model_relation"] = relation
    datasets = [link.target for link in version.lineage if link.relation == "dataset"]
    if datasets:
        meta["datasets"] = datasets
    if facts.evaluations:
        meta["model-index"] = [{
            "name": version.reference.repository,
            "results": [{
                "task": {"type": e.get("task", "text-generation")},
                "dataset": {"name": e["dataset"], "type": e["dataset"]},
                "metrics": [{"type": e["metric"], "value": e["value"]}],
            } for e in facts.evaluations],
        }]  # fmt: skip
    return meta


def _process(record: dict[str, Any] | None) -> str:
    if not record:
        return UNKNOWN
    origin = (record.get("base") or record.get("source") or {}).get("reference", UNKNOWN)
    if record.get("kind") == "finetune":
        p = record.get("parameters") or {}
        return (
            f"LoRA fine-tune of {origin} (rank {p.get('rank')}, alpha {p.get('alpha')}, "
            f"lr {p.get('lr')}, {p.get('epochs')} epochs); see provenance.intoto.json"
        )
    return f"{record.get('kind')} of {origin}; see provenance.intoto.json"


def _ai_act(version: ModelVersion, facts: CardFacts) -> list[tuple[str, str]]:
    info = version.info
    terms = licence_terms(info.license)
    arch = info.architecture or UNKNOWN
    params = format_params(info.parameters) if info.parameters else UNKNOWN
    return [
        ("Annex XI 1(a) Tasks the model is intended to perform", _pipeline(version)),
        ("Annex XI 1(a) Type and nature of AI systems it can be integrated in", UNKNOWN),
        ("Annex XI 1(b) Acceptable use policies",
         "; ".join(terms.obligations()) or UNKNOWN),
        ("Annex XI 1(c) Date of release and methods of distribution",
         f"stored {version.created_at.date().isoformat()} from {version.source or UNKNOWN}; "
         "release date " + UNKNOWN),
        ("Annex XI 1(d) Architecture and number of parameters", f"{arch}, {params}"),
        ("Annex XI 1(e) Modality and format of inputs and outputs",
         f"text in, {'vectors' if _pipeline(version) == 'feature-extraction' else 'text'} out; "
         f"context length {info.context_length or UNKNOWN}"),
        ("Annex XI 1(f) Licence", info.license or UNKNOWN),
        ("Annex XI 2(a) Technical means for integration (instructions, infrastructure, tools)",
         f"{info.format} file served by modeldepot (OpenAI-compatible API)"),
        ("Annex XI 2(b) Design specifications and training process",
         _process(facts.derivation)),
        ("Annex XI 2(c) Training, testing and validation data (type, provenance, curation)",
         ", ".join(link.target for link in version.lineage if link.relation == "dataset")
         or UNKNOWN),
        ("Annex XI 2(d) Computational resources used to train", UNKNOWN),
        ("Annex XI 2(e) Known or estimated energy consumption", UNKNOWN),
        ("Annex XII 1 Evaluation results",
         "; ".join(_result(e) for e in facts.evaluations)
         or UNKNOWN),
        ("Annex XII 2 Known limitations and risks",
         safety.limitations(facts.safety) or UNKNOWN),
        ("Annex XII 3 Integrity: scan, signatures",
         f"{facts.scan_summary}; "
         + (f"signed by {', '.join(facts.signatures)}" if facts.signatures else "not signed")),
    ]  # fmt: skip


def _loss(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else UNKNOWN


def _derivation(record: dict[str, Any] | None) -> list[str]:
    """ "How it was made", from the version's derivation record."""
    if not record:
        return []
    kind = record.get("kind", UNKNOWN)
    origin = record.get("base") or record.get("source") or {}
    lines = ["## How this version was made", "",
             f"- Made by: depot {kind}, job `{record.get('job', UNKNOWN)}`, "
             f"{record.get('started', UNKNOWN)} to {record.get('finished', UNKNOWN)}"]  # fmt: skip
    if origin:
        lines.append(f"- From: {origin.get('reference')} (`{origin.get('digest')}`)")
    if record.get("adapter"):
        lines.append(f"- Adapter: {record['adapter']['reference']} "
                     f"(`{record['adapter']['digest']}`)")  # fmt: skip
    dataset = record.get("dataset")
    if dataset:
        lines.append(
            f"- Data: {dataset['name']} (`{dataset['digest']}`), {dataset['examples']} "
            f"{dataset['format']} examples, licence {dataset.get('licence') or UNKNOWN}"
        )
    parameters = record.get("parameters") or {}
    if parameters:
        lines.append("- Parameters: " + ", ".join(f"{k}={v}" for k, v in parameters.items()))
    training = record.get("training")
    if training:
        lines.append(
            f"- Training: {training.get('steps')} steps on {training.get('train_examples')} "
            f"examples ({training.get('trained_tokens')} trained tokens); final training loss "
            f"{_loss(training.get('train_loss'))}, held-out loss "
            f"{_loss(training.get('first_val_loss'))} before and "
            f"{_loss(training.get('val_loss'))} after ({training.get('val_examples')} examples)"
        )
    perplexity = record.get("perplexity")
    if perplexity:
        lines.append(
            f"- Perplexity on {perplexity['text']} ({perplexity['context']}-token windows): "
            f"source {perplexity['source']['value']:.3f} ± {perplexity['source']['stderr']:.3f}, "
            f"this version {perplexity['result']['value']:.3f} ± "
            f"{perplexity['result']['stderr']:.3f}"
        )
    libraries = record.get("libraries") or {}
    if libraries:
        lines.append("- Libraries: " + ", ".join(f"{k} {v}" for k, v in libraries.items()))
    lines += ["- Provenance: `provenance.intoto.json` (in-toto statement, SLSA provenance v1)",
              ""]  # fmt: skip
    return lines


def _result(e: dict[str, Any]) -> str:
    """`arc_easy acc 0.620 [0.521, 0.713] n=100` (the score as `Score.text` writes it
    everywhere), and whether the run left items out."""
    partial = f" (a partial run: the first {e['limit']} items)" if e.get("limit") else ""
    return f"{e['dataset']} {e['metric']} {e['text']}{partial}"


def _evaluation(facts: CardFacts) -> list[str]:
    """The generated evaluation block (between its markers)."""
    return [
        _START.format("evaluation"),
        "",
        "## Evaluation",
        "",
        *([f"- {_result(e)}" for e in facts.evaluations] or ["- none recorded"]),
        "",
        *_comparisons(facts.comparisons),
        _END.format("evaluation"),
        "",
    ]  # fmt: skip


def _comparisons(rows: tuple[dict[str, Any], ...]) -> list[str]:
    if not rows:
        return []
    return [
        f"## Before and after (against {rows[0]['against']})",
        "",
        "| task | metric | before | after | difference | 95% interval | items |",
        "|---|---|---|---|---|---|---|",
        *(f"| {r['task']} | {r['metric']} | {r['before']} | {r['after']} | "
          f"{r['difference']:+} | [{r['low']:+}, {r['high']:+}] | {r['items']} |" for r in rows),
        "",
    ]  # fmt: skip


def render_card(version: ModelVersion, facts: CardFacts) -> str:
    info = version.info
    terms = licence_terms(info.license)
    meta = front_matter(version, facts)
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {version.reference.repository}",
        "",
        f"{info.name or version.reference.repository}: a {info.architecture or 'model'} "
        f"{info.format} model"
        + (f" with {format_params(info.parameters)} parameters" if info.parameters else "")
        + (f", quantised {info.quantization}" if info.quantization else "") + ".",
        "",
        "## Model details",
        "",
        f"- Digest: `{version.digest}`",
        f"- Source: {version.source or UNKNOWN}",
        f"- Status: {facts.status}" + (f" ({facts.status_detail})" if facts.status_detail
                                        else ""),
        f"- Context length: {info.context_length or UNKNOWN}",
        f"- Layers: {info.layers or UNKNOWN}; vocabulary: {info.vocab_size or UNKNOWN}",
        "",
        "## Licence",
        "",
        f"- Licence: {info.license or UNKNOWN}"
        + (f" (read from {info.license_source})" if info.license_source else ""),
        f"- Family: {terms.family or UNKNOWN}",
        "- Commercial use: "
        + {True: "allowed", False: "not allowed", None: UNKNOWN}[terms.commercial_use],
        *(f"- Obligation: {o}" for o in terms.obligations()),
        *([f"- Note: {terms.notes}"] if terms.notes else []),
        "",
        "## Lineage",
        "",
        *([f"- {link.relation}: {link.target}" for link in version.lineage] or ["- none recorded"]),
        "",
        "## Files",
        "",
        "| path | kind | size | sha256 |",
        "|---|---|---|---|",
        *(f"| {f.path} | {f.kind} | {f.size} | `{f.digest.removeprefix('sha256:')}` |"
          for f in version.files),
        "",
        *_derivation(facts.derivation),
        *_evaluation(facts),
        *safety.card_block(facts.safety, facts.safety_comparisons),
        "## EU AI Act documentation (general-purpose AI models)",
        "",
        *(f"- **{field}**: {value}" for field, value in _ai_act(version, facts)),
        "",
    ]  # fmt: skip
    return "\n".join(lines)


_START = "[//]: # (depot:generated {})"
_END = "[//]: # (depot:end {})"
_BLOCKS = ("evaluation", "safety")
_LINES = ("- Status:", "- **Annex XII 1 Evaluation results**:",
          "- **Annex XII 2 Known limitations and risks**:",
          "- **Annex XII 3 Integrity: scan, signatures**:")  # fmt: skip
_AI_ACT = "## EU AI Act"


def _block(text: str, name: str) -> tuple[int, int] | None:
    """Where the generated block `name` starts and ends (past its end marker) in `text`."""
    start = text.find(_START.format(name))
    if start < 0:
        return None
    end = text.find(_END.format(name), start)
    if end < 0:
        return None
    return start, end + len(_END.format(name))


def _unmarked(text: str) -> tuple[int, int] | None:
    """The evaluation sections of a card edited without the markers (before they existed, or
    removed): from `## Evaluation` to the next heading of its level that is not `## Before
    and after`, a stray end marker included."""
    start = text.find("\n## Evaluation\n")
    if start < 0:
        return None
    end = start + 1
    while True:
        end = text.find("\n## ", end + 1)
        if end < 0:
            end = len(text)
            break
        if not text.startswith("\n## Before and after", end):
            break
    marker = text.rfind(_END.format("evaluation"), start, end)
    if marker >= 0:
        end = max(end, marker + len(_END.format("evaluation")))
    return start + 1, end


def refresh_card(edited: str, generated: str) -> str:
    """`edited` with the parts the depot generates taken from `generated` (the card it would
    write now): the front matter's `model-index`, the marked blocks, the generated lines.
    Everything else is left as edited."""
    text = _refresh_front_matter(edited, generated)
    for name in _BLOCKS:
        fresh = _block(generated, name)
        if fresh is None:
            continue
        block = generated[fresh[0] : fresh[1]]
        found = _block(text, name) or (_unmarked(text) if name == "evaluation" else None)
        if found is not None:
            rest = text[found[1] :]
            text = text[: found[0]] + block + ("\n" if rest.startswith("\n#") else "") + rest
        elif (at := text.find(f"\n{_AI_ACT}")) >= 0:
            text = text[: at + 1] + "\n" + block + "\n\n" + text[at + 1 :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    wanted = {p: line for line in generated.splitlines() for p in _LINES if line.startswith(p)}
    lines = [next((wanted[p] for p in _LINES if line.startswith(p) and p in wanted), line)
             for line in text.split("\n")]  # fmt: skip
    return "\n".join(lines)


def _refresh_front_matter(edited: str, generated: str) -> str:
    try:
        meta = parse_card(edited)
        fresh = parse_card(generated)
    except UsageError:
        return edited
    if meta.get("model-index") == fresh.get("model-index"):
        return edited
    if "model-index" in fresh:
        meta["model-index"] = fresh["model-index"]
    else:
        meta.pop("model-index", None)
    end = edited.find("\n---", 4)
    dumped = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip()
    return f"---\n{dumped}" + edited[end:]


def parse_card(text: str) -> dict[str, Any]:
    """The front matter of a card; raises `UsageError` when it is missing or malformed."""
    if not text.startswith("---\n"):
        raise UsageError("a model card starts with YAML front matter between `---` lines")
    end = text.find("\n---", 4)
    if end < 0:
        raise UsageError("the card's front matter is not closed by a `---` line")
    try:
        meta = yaml.safe_load(text[4:end])
    except yaml.YAMLError as exc:
        raise UsageError(f"the card's front matter is not valid YAML ({exc})") from None
    if not isinstance(meta, dict):
        raise UsageError("the card's front matter must be a mapping")
    if "license" not in meta:
        raise UsageError("the card's front matter needs a `license`")
    return meta
