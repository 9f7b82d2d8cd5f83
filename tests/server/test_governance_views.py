"""What the server's governance views say: a model page does not write audit events, events
name their model, the audit page takes spans and refuses an unknown action, and the
leaderboard's JSON carries every score's interval and item count."""

from __future__ import annotations

from pathlib import Path

import httpx

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry import schema as t
from modeldepot.registry.evaluations import EvaluationRecord, EvaluationStore, now
from modeldepot.verify.signing import Signer, generate_key
from server.conftest import start_server


def test_governance_views(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    with Depot(Settings(home=home, user="operator")) as d:
        version = d.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
        generate_key(tmp_path / "me")
        d.signatures.sign(version, Signer("key", tmp_path / "me"))
        d.quarantine.hold(version, reason="review")
        d.quarantine.release(d.names.show("m"), "reviewed")
        items = {f"q{n}": {"acc": float(n % 2)} for n in range(10)}
        EvaluationStore(d.registry).record(EvaluationRecord(
            version.digest, "m:latest", "arc_easy", "1", "knowledge",
            {"acc": {"value": 0.5, "stderr": 0.17, "n": 10.0, "low": 0.24, "high": 0.76}},
            items, {"limit": None}, now()), actor="operator")  # fmt: skip
    with Depot(Settings(home=home)) as d:  # after the checkpoint written on closing
        before = len(d.audit.events())
    proc, url = start_server(home)
    try:
        page = httpx.get(f"{url}/models/m")
        assert page.status_code == 200 and "verified" in page.text
        with Depot(Settings(home=home)) as d:
            events = d.audit.events()
        assert len(events) == before, [e.action for e in events[before:]]  # a view writes nothing
        for e in events:  # every event about the model names it, not only its digest
            if e.action in ("scan", "sign", "quarantine.hold", "quarantine.release", "eval"):
                assert e.subject.startswith("m:latest@sha256:"), (e.action, e.subject)

        audit = httpx.get(f"{url}/governance/audit", params={"since": "1h"})
        assert audit.status_code == 200
        assert "reason: reviewed" in audit.text and "quarantine.release" in audit.text
        assert "m:latest@sha256:" in audit.text
        family = httpx.get(f"{url}/governance/audit", params={"action": "quarantine"})
        assert "quarantine.hold" in family.text and "quarantine.release" in family.text
        unknown = httpx.get(f"{url}/governance/audit", params={"action": "bogus"})
        assert unknown.status_code == 400 and "not an action the depot records" in unknown.text
        # The chain is checked again when it grows or when asked, not rehashed on every view.
        assert "Chain intact" in httpx.get(f"{url}/governance/audit").text
        with Depot(Settings(home=home)) as d, d.registry.engine.begin() as conn:
            conn.execute(t.events.update().where(t.events.c.id == events[1].id)
                         .values(actor="mallory"))  # fmt: skip
        assert "Chain intact" in httpx.get(f"{url}/governance/audit").text
        checked = httpx.get(f"{url}/governance/audit", params={"verify": "1"}).text
        assert "Chain broken" in checked and "was edited" in checked
        with Depot(Settings(home=home)) as d, d.registry.engine.begin() as conn:
            conn.execute(t.events.update().where(t.events.c.id == events[1].id)
                         .values(actor=events[1].actor))  # fmt: skip

        board = httpx.get(f"{url}/depot/api/leaderboard").json()
        (entry,) = board["models"]
        assert entry["model"] == "m:latest" and entry["rank"] == 1
        assert entry["tasks"]["arc_easy"] | {"at": None} == {
            "metric": "acc", "value": 0.5, "low": 0.24, "high": 0.76, "stderr": 0.17,
            "items": 10, "at": None, "version": "1", "limit": None}  # fmt: skip
        html = httpx.get(f"{url}/leaderboard").text
        assert "0.500 [0.240, 0.760] n=10" in html
        assert httpx.get(f"{url}/depot/api/leaderboard", params={"task": "nope"}).status_code == 404

        (home / "policy.toml").write_text('[licences]\ndeny = ["MIT"]\n')
        policy = httpx.get(f"{url}/governance/policy")
        assert policy.status_code == 200 and "deny" in policy.text
        (home / "policy.toml").write_text("[surprise]\n")
        assert "cannot be read, so no model is served" in httpx.get(
            f"{url}/governance/policy").text  # fmt: skip
        with Depot(Settings(home=home)) as d:
            assert [e.action for e in d.audit.events()[before:]] == []  # views record nothing
    finally:
        proc.terminate()
        proc.wait(30)
