"""Quarantine, policy, advisories, signatures, AI-BOM, model cards and the audit chain, through
the `depot` command as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner, Result

from builders import write_gguf
from corpus import HOSTILE, MARKER, build
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.describe.bom import validate_bom
from modeldepot.errors import DepotError
from modeldepot.registry import schema as t


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEPOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEPOT_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def depot(*args: str) -> Result:
    return CliRunner().invoke(__import__("modeldepot.cli").cli.app, list(args),
                              catch_exceptions=False)  # fmt: skip


def _hostile_checkpoint(tmp_path: Path) -> Path:
    case = next(c for c in HOSTILE if c.name == "torch-odd-folder")
    return build(case, tmp_path)


def test_hostile_import_is_stored_quarantined_and_can_be_released_or_deleted(
    home: Path, tmp_path: Path
) -> None:
    result = depot("import", str(_hostile_checkpoint(tmp_path)), "-n", "evil:v1")
    assert result.exit_code == 1
    assert "quarantined" in result.output and "os.system" in result.output
    assert not (tmp_path / MARKER).exists()
    listed = json.loads(depot("list", "--json").output)
    assert [(e["name"], e["quarantined"]) for e in listed] == [("evil", True)]
    held = json.loads(depot("quarantine", "list", "--json").output)
    assert held[0]["names"] == ["evil:v1"]
    assert any("pickle.dangerous-global" in r for r in held[0]["reasons"])
    assert depot("quarantine", "release", "evil:v1", "--reason", " ").exit_code == 2
    released = depot("quarantine", "release", "evil:v1", "--reason", "test fixture",
                     "--until", "2w")  # fmt: skip
    assert released.exit_code == 0 and "under an exception to the policy until" in released.output
    assert json.loads(depot("list", "--json").output)[0]["quarantined"] is False
    assert "ok (exception)" in depot("list").output
    listed = depot("quarantine", "list").output
    assert "nothing is quarantined" in listed and "excepted" in listed
    assert "released by " in listed and "waives: scan: critical" in listed
    assert depot("quarantine", "delete", "evil:v1").exit_code == 2  # no longer quarantined
    assert depot("quarantine", "hold", "evil:v1").exit_code == 0
    assert depot("quarantine", "delete", "evil:v1").exit_code == 0
    assert json.loads(depot("list", "--json").output) == []
    actions = [e["action"] for e in json.loads(depot("audit", "--json").output)]
    assert {"quarantine", "quarantine.release", "quarantine.hold"} <= set(actions)


def test_sign_verify_and_a_flipped_byte(home: Path, tmp_path: Path) -> None:
    assert depot("import", str(write_gguf(tmp_path / "tiny.gguf")), "-n", "tiny").exit_code == 0
    assert depot("verify", "tiny").exit_code == 1  # not signed yet
    assert depot("keygen", str(tmp_path / "keys" / "me")).exit_code == 0
    assert depot("keygen", str(tmp_path / "keys" / "me")).exit_code == 2  # never overwritten
    signed = depot("sign", "tiny", "--key", str(tmp_path / "keys" / "me"),
                   "-o", str(tmp_path / "tiny.sig"))  # fmt: skip
    assert signed.exit_code == 0, signed.output
    ok = depot("verify", "tiny")
    assert ok.exit_code == 0 and "verified" in ok.output

    # Interoperability: model-signing's own command accepts the signature on the real files.
    with Depot(Settings(home=home)) as d:
        version = d.names.show("tiny")
        plain = tmp_path / "exported"
        plain.mkdir()
        for f in version.files:
            shutil.copyfile(d.store.path(f.digest), plain / f.path)
        weights = d.store.path(next(f.digest for f in version.files if f.kind == "weights"))
    own = subprocess.run(
        [sys.executable, "-m", "model_signing", "verify", "key", str(plain), "--signature",
         str(tmp_path / "tiny.sig"), "--public_key", str(tmp_path / "keys" / "me.pub")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert own.returncode == 0, own.stdout + own.stderr

    weights.chmod(0o644)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    bad = depot("verify", "tiny")
    assert bad.exit_code == 1 and "tiny.gguf" in bad.output and "differs" in bad.output
    every = depot("verify", "--all", "--json")
    assert every.exit_code == 1
    report = json.loads(every.output[: every.output.rindex("]") + 1])
    assert report[0]["status_before"] == "ok" and report[0]["status"] == "quarantined"
    actions = [e["action"] for e in json.loads(depot("audit", "--json").output)]
    assert {"sign", "verify", "verify.fail", "quarantine.hold"} <= set(actions)


def test_wrong_key_fails(home: Path, tmp_path: Path) -> None:
    depot("import", str(write_gguf(tmp_path / "tiny.gguf")), "-n", "tiny")
    depot("keygen", str(tmp_path / "a"))
    depot("keygen", str(tmp_path / "b"))
    depot("sign", "tiny", "--key", str(tmp_path / "a"))
    assert depot("verify", "tiny", "--key", str(tmp_path / "a.pub")).exit_code == 0
    wrong = depot("verify", "tiny", "--key", str(tmp_path / "b.pub"))
    assert wrong.exit_code == 1 and "not an accepted key" in wrong.output
    assert depot("sign", "tiny", "--key", str(tmp_path / "a.pub")).exit_code == 2


def test_ai_bom_validates_and_describes_the_model(home: Path, tmp_path: Path) -> None:
    depot("import", str(write_gguf(tmp_path / "base.gguf", seed=1)), "-n", "base")
    depot(
        "import",
        str(write_gguf(tmp_path / "tuned.gguf", seed=2)),
        "-n",
        "tuned",
        "--base",
        "base",
        "--relation",
        "finetune",
        "--dataset",
        "acme/support-chats",
    )
    assert depot("bom", "tuned", "-o", str(tmp_path / "bom.json")).exit_code == 0
    document = json.loads((tmp_path / "bom.json").read_text())
    validate_bom(document)  # CycloneDX 1.6 strict JSON schema
    assert document["specVersion"] == "1.6"
    model = document["components"][0]
    assert model["type"] == "machine-learning-model"
    card = model["modelCard"]["modelParameters"]
    assert card["architectureFamily"] == "llama"
    assert card["datasets"] == [{"type": "dataset", "name": "acme/support-chats"}]
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert model["pedigree"]["ancestors"][0]["name"] == "base"
    shown = json.loads(depot("show", "tuned", "--json").output)
    files = {c["name"]: c["hashes"][0]["content"] for c in document["components"][1:]}
    assert files == {f["path"]: f["digest"].removeprefix("sha256:") for f in shown["files"]}
    model["type"] = "ai-model"  # not a CycloneDX component type: the validator must refuse it
    with pytest.raises(DepotError, match="CycloneDX"):
        validate_bom(document)


def test_model_card_front_matter_and_ai_act_fields(home: Path, tmp_path: Path) -> None:
    depot("import", str(write_gguf(tmp_path / "base.gguf", seed=1)), "-n", "base")
    depot(
        "import",
        str(write_gguf(tmp_path / "q.gguf", seed=3)),
        "-n",
        "quant",
        "--base",
        "base",
        "--relation",
        "quantized",
    )
    text = depot("card", "quant").output
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["license"] == "apache-2.0" and meta["pipeline_tag"] == "text-generation"
    assert meta["base_model"] == ["base"] and meta["base_model_relation"] == "quantized"
    assert "llama" in meta["tags"]
    assert "Annex XI 1(d) Architecture and number of parameters**: llama" in text
    assert "Annex XI 2(e) Known or estimated energy consumption**: unknown" in text
    assert "Commercial use: allowed" in text

    bad = tmp_path / "bad.md"
    bad.write_text("# no front matter\n")
    assert depot("card", "quant", "--from-file", str(bad)).exit_code == 2
    good = tmp_path / "good.md"
    good.write_text(text.replace("pipeline_tag: text-generation", "pipeline_tag: summarization"))
    assert depot("card", "quant", "--from-file", str(good)).exit_code == 0
    assert "pipeline_tag: summarization" in depot("card", "quant").output
    assert "card.edit" in [e["action"] for e in json.loads(depot("audit", "--json").output)]


def test_policy_licences_signatures_and_advisories(home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True)
    (home / "policy.toml").write_text('[licences]\ndeny = ["MIT"]\n')
    refused = depot("import", str(write_gguf(tmp_path / "mit.gguf", licence="mit")), "-n", "m")
    assert refused.exit_code == 1 and "licence: MIT is denied" in refused.output

    depot("keygen", str(home / "team"))
    (home / "policy.toml").write_text(
        '[signatures]\nrequired = true\ntrusted_keys = ["team.pub"]\n'
    )
    unsigned = depot("import", str(write_gguf(tmp_path / "a.gguf", seed=5)), "-n", "a")
    assert unsigned.exit_code == 1 and "no valid signature by a trusted key" in unsigned.output
    assert depot("sign", "a", "--key", str(home / "team")).exit_code == 0
    recheck = depot("verify", "--all", "--json")
    results = {r["reference"]: r for r in json.loads(
        recheck.output[: recheck.output.rindex("]") + 1])}  # fmt: skip
    assert results["a:latest"]["status"] == "ok"  # signed by a trusted key: admitted again
    # `m` stays quarantined, now for today's reason (unsigned), not the retired MIT rule.
    assert results["m:latest"]["status"] == "quarantined"
    assert " ".join(results["m:latest"]["problems"]).count("licence") == 0
    assert "no valid signature" in " ".join(results["m:latest"]["problems"])

    shown = json.loads(depot("show", "a", "--json").output)
    weights = next(f["digest"] for f in shown["files"] if f["path"] == "a.gguf")
    (home / "advisories.toml").write_text(
        f'[[advisory]]\nid = "MD-1"\ndigest = "{weights}"\nreason = "backdoored weights"\n'
    )
    after = depot("verify", "--all")
    assert after.exit_code == 1 and "advisory MD-1: backdoored weights" in after.output
    policies = [e for e in json.loads(depot("audit", "--json").output) if e["action"] == "policy"]
    assert len(policies) == 2 and "trusted_keys" in policies[-1]["details"]["text"]
    (home / "policy.toml").write_text("[scan]\nblock = 'extreme'\n")
    assert depot("list").exit_code == 0  # listing does not read the policy
    assert depot("policy").exit_code == 2


def test_audit_chain_detects_edited_and_deleted_events(
    database_url: str | None, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "depot", user="auditor", database_url=database_url)
    with Depot(settings) as d:
        d.intake.import_path(write_gguf(tmp_path / "a.gguf"), "a")
        d.names.tag("a", "a:v2")
        d.keys.create("ci", models="a*")
        report = d.audit.verify()
        assert report.intact and report.events >= 4 and len(report.head) == 64
        events = d.audit.events()
        with d.registry.engine.begin() as conn:
            conn.execute(t.events.update().where(t.events.c.id == events[1].id)
                         .values(actor="mallory"))  # fmt: skip
        edited = d.audit.verify()
        assert [p.event_id for p in edited.problems] == [events[1].id]
        assert "edited" in edited.problems[0].message
        with d.registry.engine.begin() as conn:
            conn.execute(t.events.update().where(t.events.c.id == events[1].id)
                         .values(actor=events[1].actor))  # fmt: skip
        assert d.audit.verify().intact
        with d.registry.engine.begin() as conn:
            conn.execute(sa.delete(t.events).where(t.events.c.id == events[2].id))
        deleted = d.audit.verify()
        assert [p.event_id for p in deleted.problems] == [events[3].id]
        assert "deleted" in deleted.problems[0].message


def test_audit_command(home: Path, tmp_path: Path) -> None:
    depot("import", str(write_gguf(tmp_path / "a.gguf")), "-n", "a")
    assert depot("audit", "verify").exit_code == 0
    assert "import" in depot("audit", "--since", "2000-01-01").output
    assert depot("audit", "--since", "yesterday").exit_code == 2
    unknown = depot("audit", "--action", "nothing-like-this", "--json")
    assert unknown.exit_code == 2 and "not an action the depot records" in unknown.output
    assert depot("quarantine", "hold", "a", "--reason", "supplier review").exit_code == 0
    recent = depot("audit", "--since", "1h")
    assert recent.exit_code == 0 and "import" in recent.output
    assert "reason: supplier review" in recent.output  # details a person can read
    assert "a:latest@sha256:" in recent.output  # the model, not only its digest
    assert depot("audit", "--since", "1h", "--action", "quarantine").output.count("\n") == 2
    assert depot("audit", "--since", "2999-01-01").output == ""


def test_anchored_checkpoints_catch_truncation_and_rewriting(
    database_url: str | None, tmp_path: Path
) -> None:
    from modeldepot.registry.audit import chain_hash
    from modeldepot.verify.signing import generate_key

    settings = Settings(home=tmp_path / "depot", user="auditor", database_url=database_url)
    generate_key(settings.home / "keys" / "depot")
    with Depot(settings) as d:
        d.intake.import_path(write_gguf(tmp_path / "a.gguf"), "a")
        d.names.tag("a", "a:v2")
    with Depot(settings) as d:  # closing the first anchored the chain, signed
        genesis, checkpoint = d.anchors.checkpoints()  # the empty chain's, and the first close's
        assert (genesis.events, genesis.head) == (0, "") and genesis.signature
        assert checkpoint.signature and checkpoint.events == d.audit.head()[0]
        assert d.anchors.verify(d.audit).intact
        # Removing the newest event leaves a valid chain, but not the anchored one.
        newest = d.audit.events()[-1]
        with d.registry.engine.begin() as conn:
            conn.execute(sa.delete(t.events).where(t.events.c.id == newest.id))
        assert d.audit.verify().intact
        cut = d.anchors.verify(d.audit)
        assert not cut.intact and "removed from its end" in cut.problems[0].message
        # Editing an event and recomputing every later hash also passes the chain alone.
        events = d.audit.events()
        with d.registry.engine.begin() as conn:
            previous = ""
            for e in events:
                actor = "mallory" if e.id == events[1].id else e.actor
                row = conn.execute(sa.select(t.events).where(t.events.c.id == e.id)).one()
                new = chain_hash(previous, row.at, actor, e.action, e.subject, e.details)
                conn.execute(t.events.update().where(t.events.c.id == e.id)
                             .values(actor=actor, prev_hash=previous, hash=new))  # fmt: skip
                previous = new
            conn.execute(t.events.insert().values(  # and put an event back at the end
                at=newest.at, actor="mallory", action="tag", subject="x", details={},
                prev_hash=previous,
                hash=chain_hash(previous, newest.at, "mallory", "tag", "x", {})))  # fmt: skip
        assert d.audit.verify().intact
        rewritten = d.anchors.verify(d.audit)
        assert not rewritten.intact and "rewritten" in rewritten.problems[0].message
        # A forged checkpoint does not verify with the depot's key.
        lines = d.anchors.path.read_text().splitlines()
        forged = json.loads(lines[1]) | {"events": 1}
        d.anchors.path.write_text(json.dumps(forged) + "\n")
        assert "forged" in d.anchors.verify(d.audit).problems[-1].message


def test_a_deleted_checkpoint_file_is_detected(database_url: str | None, tmp_path: Path) -> None:
    """The chain records the checkpoints written, so a chain forged with fresh hashes and the
    checkpoint file deleted no longer verify clean; a depot that never wrote one does."""
    from modeldepot.registry.audit import chain_hash

    settings = Settings(home=tmp_path / "depot", user="auditor", database_url=database_url)
    env = {"DEPOT_HOME": str(settings.home), "DEPOT_DATABASE_URL": database_url or ""}

    def verify() -> Result:
        return CliRunner().invoke(__import__("modeldepot.cli").cli.app, ["audit", "verify"],
                                  env=env, catch_exceptions=False)  # fmt: skip

    assert verify().exit_code == 0  # a brand-new depot: nothing anchored, nothing missing
    with Depot(settings) as d:
        d.intake.import_path(write_gguf(tmp_path / "a.gguf"), "a")
    with Depot(settings) as d:
        d.names.tag("a", "a:v2")
    assert verify().exit_code == 0
    with Depot(settings) as d:
        assert len(d.anchors.checkpoints()) == 3  # the empty chain's, and two closes'
        events = d.audit.events()
        with d.registry.engine.begin() as conn:  # forge: another actor, every hash recomputed
            previous = ""
            for e in events:
                row = conn.execute(sa.select(t.events).where(t.events.c.id == e.id)).one()
                actor = "mallory" if e.action == "import" else e.actor
                new = chain_hash(previous, row.at, actor, e.action, e.subject, e.details)
                conn.execute(t.events.update().where(t.events.c.id == e.id)
                             .values(actor=actor, prev_hash=previous, hash=new))  # fmt: skip
                previous = new
        assert d.audit.verify().intact
        assert "rewritten" in d.anchors.verify(d.audit).problems[0].message
    (settings.home / "audit" / "checkpoints.jsonl").unlink()  # and the evidence goes
    missing = verify()
    assert missing.exit_code == 1
    assert f"the checkpoint file {settings.home / 'audit' / 'checkpoints.jsonl'} is missing" in (
        missing.output.replace("\n", " ")), missing.output  # fmt: skip
    again = verify()  # its close wrote no anchor that would launder the loss
    assert again.exit_code == 1 and "is missing" in again.output, again.output


def test_a_chain_stripped_of_its_checkpoints_is_detected(
    database_url: str | None, tmp_path: Path
) -> None:
    """A forger who deletes the checkpoint file and every `audit.checkpoint` event too leaves a
    chain with events and no anchor at all, which every depot command would have written: it
    does not verify clean, and no later command anchors the forged chain afresh."""
    from modeldepot.registry.audit import chain_hash
    from modeldepot.verify.anchors import CHECKPOINT_ACTION

    settings = Settings(home=tmp_path / "depot", user="auditor", database_url=database_url)
    env = {"DEPOT_HOME": str(settings.home), "DEPOT_DATABASE_URL": database_url or ""}

    def verify() -> Result:
        return CliRunner().invoke(__import__("modeldepot.cli").cli.app, ["audit", "verify"],
                                  env=env, catch_exceptions=False)  # fmt: skip

    with Depot(settings) as d:
        d.intake.import_path(write_gguf(tmp_path / "a.gguf"), "a")
    with Depot(settings) as d:
        d.names.tag("a", "a:v2")
    assert verify().exit_code == 0
    with Depot(settings) as d, d.registry.engine.begin() as conn:
        conn.execute(sa.delete(t.events).where(t.events.c.action == CHECKPOINT_ACTION))
        previous = ""  # and every hash recomputed, another actor on the import
        for row in conn.execute(sa.select(t.events).order_by(t.events.c.id)).all():
            actor = "mallory" if row.action == "import" else row.actor
            new = chain_hash(previous, row.at, actor, row.action, row.subject, row.details)
            conn.execute(t.events.update().where(t.events.c.id == row.id)
                         .values(actor=actor, prev_hash=previous, hash=new))  # fmt: skip
            previous = new
        d.anchors.path.unlink()
    with Depot(settings) as d:
        assert d.audit.verify().intact  # the chain alone is consistent
    for _ in range(2):  # the second time after the first's close
        stripped = verify()
        assert stripped.exit_code == 1, stripped.output
        assert "holds no checkpoint: it was deleted" in stripped.output.replace("\n", " ")
    assert not (settings.home / "audit" / "checkpoints.jsonl").exists()


def test_an_edited_card_keeps_receiving_evaluations_and_status(
    any_depot: Depot, tmp_path: Path
) -> None:
    from modeldepot.registry.evaluations import EvaluationRecord, EvaluationStore, now
    from modeldepot.server.ui.markdown import card_body, render_markdown

    d = any_depot
    version = d.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    generated = d.documents.card(version)
    assert "- none recorded" in generated
    edited = generated.replace(
        "## Licence", "## Intended use\n\nSupport chats in Dutch only.\n\n## Licence"
    ).replace("pipeline_tag: text-generation", "pipeline_tag: conversational")
    edited = edited.replace("[//]: # (depot:generated evaluation)\n", "")  # markers lost
    d.documents.save_card(version, edited)
    items = {f"q{n}": {"acc": float(n < 3)} for n in range(4)}
    EvaluationStore(d.registry).record(EvaluationRecord(
        version.digest, "m:latest", "arc_easy", "1", "knowledge",
        {"acc": {"value": 0.75, "stderr": 0.25, "n": 4.0, "low": 0.3, "high": 0.95}}, items,
        {"limit": None}, now()), actor="tester")  # fmt: skip
    d.quarantine.hold(version, reason="supplier review")
    card = d.documents.card(d.names.show("m"))
    assert "Support chats in Dutch only." in card  # the edited prose stays
    assert "pipeline_tag: conversational" in card  # so does the edited front matter
    assert "- arc_easy acc 0.750 [0.300, 0.950] n=4\n" in card  # as the leaderboard writes it
    assert "Evaluation results**: arc_easy acc 0.750 [0.300, 0.950] n=4" in card  # Annex XII 1
    assert "- Status: quarantined (held by hand by tester: supplier review)" in card
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["model-index"][0]["results"][0]["metrics"] == [{"type": "acc", "value": 0.75}]
    assert card.count("## Evaluation") == 1
    # Once more, with the markers in place: the block is replaced, not repeated.
    d.documents.save_card(d.names.show("m"), card)
    assert d.documents.card(d.names.show("m")).count("## Evaluation") == 1
    # The markers never show on the page.
    html = render_markdown(card_body(card)[1])
    assert "depot:generated" not in html and "arc_easy" in html


def test_an_edited_card_receives_safety_results(any_depot: Depot, tmp_path: Path) -> None:
    from modeldepot.registry.evaluations import SAFETY, EvaluationRecord, EvaluationStore, now

    d = any_depot
    version = d.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    generated = d.documents.card(version)
    assert "- No safety evaluation recorded" in generated
    assert "- **Annex XII 2 Known limitations and risks**: unknown" in generated
    start, end = "[//]: # (depot:generated safety)", "[//]: # (depot:end safety)"
    before = generated[: generated.index(start)] + generated[generated.index(end) + len(end) :]
    d.documents.save_card(version, before.replace("## Licence", "## Notes\n\nMine.\n\n## Licence"))
    items = {f"dan.X#{n}.0": {"dan": float(n < 3), "dan.X": float(n < 3)} for n in range(4)}
    metric = {"value": 0.75, "stderr": 0.25, "n": 4.0, "low": 0.3, "high": 0.95}
    EvaluationStore(d.registry).record(EvaluationRecord(
        version.digest, "m:latest", "redteam.dan", "garak-0.17.1", "safety",
        {"dan": metric, "dan.X": metric}, items, {}, now(), SAFETY), actor="tester")  # fmt: skip
    card = d.documents.card(d.names.show("m"))
    assert "Mine." in card and card.count("## Risks and limitations") == 1
    assert "| dan.X | 0.75 | [0.3, 0.95] | 4 |" in card
    assert "- **Annex XII 2 Known limitations and risks**: dan 0.75 [0.3, 0.95] over 4" in card
    d.documents.save_card(d.names.show("m"), card)  # with the markers: replaced, not repeated
    assert d.documents.card(d.names.show("m")).count("## Risks and limitations") == 1
    assert "arc_easy" not in card and "## Evaluation\n\n- none recorded" in card  # not capability


def test_signing_a_quarantined_model_warns(home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True)
    (home / "policy.toml").write_text('[licences]\ndeny = ["Apache-2.0"]\n')
    assert depot("import", str(write_gguf(tmp_path / "m.gguf")), "-n", "m").exit_code == 1
    assert depot("keygen").exit_code == 0
    signed = depot("sign", "m")
    assert signed.exit_code == 0
    assert "warning: m:latest is quarantined: a signature does not release it" in signed.output
    assert "Apache-2.0 is denied" in signed.output
    (home / "policy.toml").unlink()
    assert "warning" not in depot("sign", "m").output


def test_rm_without_a_tag_says_only_latest_went(home: Path, tmp_path: Path) -> None:
    depot("import", str(write_gguf(tmp_path / "a.gguf")), "-n", "a")
    depot("tag", "a", "a:v2")
    depot("import", str(write_gguf(tmp_path / "b.gguf", seed=2)), "-n", "a:old")
    gone = depot("rm", "a")
    assert gone.exit_code == 0
    assert "only the tag 'latest' went: a still has a:old, a:v2" in gone.output
    assert "--all-tags" in gone.output
    assert depot("rm", "a:v2").output.count("only the tag") == 0  # a tag named: no surprise
    assert depot("rm", "a:v2", "--all-tags").exit_code == 2
    every = json.loads(depot("rm", "a", "--all-tags", "--json").output)
    assert [(e["removed"], e["tags"]) for e in every] == [("a:old", ["old"])]
    assert json.loads(depot("list", "--all", "--json").output) == []
    assert depot("rm", "a", "--all-tags").exit_code == 1  # nothing left of it
