"""The gate: one answer to "may this version be served", computed now from what is stored
(findings, signatures, holds, exceptions) under today's policy and advisories, on SQLite and
PostgreSQL; what a compliance officer expects of holds and exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from builders import write_gguf
from modeldepot.depot import Depot
from modeldepot.errors import ConflictError, UsageError
from modeldepot.registry.audit import parse_since
from modeldepot.scan import Finding, ScanReport, Severity
from modeldepot.verify.quarantine import parse_until


def _refused(depot: Depot, tmp_path: Path, name: str = "denied", seed: int = 1):
    """A version today's policy refuses (its licence is denied)."""
    depot.settings.home.mkdir(parents=True, exist_ok=True)
    (depot.settings.home / "policy.toml").write_text('[licences]\ndeny = ["Apache-2.0"]\n')
    return depot.intake.import_path(write_gguf(tmp_path / f"{name}.gguf", seed=seed), name)


def test_release_records_an_exception_every_view_honours(any_depot: Depot,
                                                         tmp_path: Path) -> None:  # fmt: skip
    d = any_depot
    version = _refused(d, tmp_path)
    assert version.status == "quarantined"
    assert d.admission.refusals(version) == ["licence: Apache-2.0 is denied by policy"]
    verdict = d.quarantine.release(version, "legal approved it for the pilot", actor="officer")
    # Served, listed and exported as admitted: the server's gate, the list, the show.
    assert verdict.admitted and d.admission.refusals(version) == []
    shown = d.names.show("denied")
    assert shown.status == "ok" and shown.exception is not None
    assert shown.exception["actor"] == "officer"
    assert shown.exception["covers"] == ["licence: Apache-2.0 is denied by policy"]
    assert [v.status for v in d.names.versions()] == ["ok"]
    # `depot verify --all` rescans (same findings) and keeps the exception.
    (result,) = d.signatures.verify_all(d.names.versions(include_untagged=True))
    assert (result.status_before, result.status_after, result.ok) == ("ok", "ok", True)
    (entry,) = d.quarantine.excepted()
    assert entry.verdict.waived == ("licence: Apache-2.0 is denied by policy",)
    until = entry.verdict.exception.until if entry.verdict.exception else None
    assert until is not None and timedelta(days=29) < until - datetime.now(UTC) <= timedelta(
        days=30)  # fmt: skip
    release = [e for e in d.audit.events() if e.action == "quarantine.release"][-1]
    assert release.actor == "officer" and release.subject.startswith("denied:latest@sha256:")
    assert release.details["exception"]["covers"] == ["licence: Apache-2.0 is denied by policy"]
    assert release.details["reason"] == "legal approved it for the pilot"


def test_an_exception_expires_and_a_rescan_with_new_findings_voids_it(
    any_depot: Depot, tmp_path: Path
) -> None:
    d = any_depot
    version = _refused(d, tmp_path)
    d.quarantine.release(version, "pilot", until=datetime.now(UTC) + timedelta(days=2))
    assert d.names.show("denied").status == "ok"
    # Two days later it is refused again, saying why, with no one having to do anything.
    d.gate.clock = lambda: datetime.now(UTC) + timedelta(days=3)
    later = d.names.show("denied")
    assert later.status == "quarantined" and later.exception is None
    assert later.reasons[0] == "licence: Apache-2.0 is denied by policy"
    assert "no longer holds: expired" in later.reasons[-1]
    d.gate.clock = lambda: datetime.now(UTC)
    # A rescan that finds something new voids it: the release was for what was known then.
    extra = Finding("denied/denied.gguf", "gguf.odd-metadata", Severity.LOW, "a new finding")
    rescanned = d.admission.admit(version, ScanReport("denied", [extra]))
    assert rescanned.status == "quarantined"
    assert "the findings changed" in rescanned.reasons[-1]
    assert d.audit.events(action="quarantine")[-1].details["exception_lapsed"].startswith(
        "the findings changed")  # fmt: skip


def test_an_exception_waives_only_what_it_names(any_depot: Depot, tmp_path: Path) -> None:
    d = any_depot
    version = _refused(d, tmp_path)
    d.quarantine.release(version, "pilot")
    weights = next(f.digest for f in version.files if f.kind == "weights")
    (d.settings.home / "advisories.toml").write_text(
        f'[[advisory]]\nid = "MD-9"\ndigest = "{weights}"\nreason = "backdoored"\n'
    )
    now = d.names.show("denied")
    assert now.status == "quarantined"
    assert now.reasons == (f"advisory MD-9: backdoored ({weights})",)  # the licence is waived
    assert now.exception is not None


def test_hold_keeps_the_policys_reasons_and_ends_an_exception(any_depot: Depot,
                                                              tmp_path: Path) -> None:  # fmt: skip
    d = any_depot
    version = _refused(d, tmp_path)
    d.quarantine.release(version, "pilot")
    verdict = d.quarantine.hold(version, reason="supplier under review", actor="officer")
    assert verdict.reasons == ("held by hand by officer: supplier under review",
                               "licence: Apache-2.0 is denied by policy")  # fmt: skip
    assert verdict.exception is None  # the hold ended it
    # Releasing again needs a reason, and records a new exception for what the policy says.
    with pytest.raises(UsageError):
        d.quarantine.release(version, "  ")
    assert d.quarantine.release(version, "reviewed").admitted
    with pytest.raises(ConflictError, match="not quarantined"):
        d.quarantine.release(version, "again")


def test_a_policy_change_shows_everywhere_at_once(any_depot: Depot, tmp_path: Path) -> None:
    d = any_depot
    d.intake.import_path(write_gguf(tmp_path / "fine.gguf"), "fine")
    assert d.names.show("fine").status == "ok"
    (d.settings.home / "policy.toml").write_text('[licences]\ndeny = ["Apache-2.0"]\n')
    assert d.names.show("fine").status == "quarantined"  # no rescan, no `verify --all`
    assert [e.names for e in d.quarantine.refused()] == [("fine:latest",)]
    assert d.admission.refusals(d.names.show("fine"))
    (d.settings.home / "policy.toml").write_text("[scan]\nblock = 'extreme'\n")
    broken = d.names.show("fine")  # an unreadable policy refuses everything, saying why
    assert broken.status == "quarantined" and broken.reasons[0].startswith("policy: ")
    with pytest.raises(UsageError, match="fix it before"):
        d.quarantine.release(broken, "anyway")
    (d.settings.home / "policy.toml").unlink()
    assert d.names.show("fine").status == "ok"


def test_the_depots_own_key_counts_as_trusted(any_depot: Depot, tmp_path: Path) -> None:
    from modeldepot.verify.signing import Signer, generate_key

    d = any_depot
    home = d.settings.home
    generate_key(tmp_path / "team")
    key = d.signatures.default_key
    generate_key(key)
    (home / "policy.toml").write_text(
        f'[signatures]\nrequired = true\ntrusted_keys = ["{tmp_path / "team.pub"}"]\n'
    )
    version = d.intake.import_path(write_gguf(tmp_path / "made.gguf"), "made")
    assert version.status == "quarantined"
    d.signatures.sign(version, Signer("key", key))
    assert d.names.show("made").status == "ok"
    assert d.signatures.verify(d.names.show("made")) == [
        f"key signature by {d.signatures.trust.signatures(version.digest)[0].identity[:16]} "
        "verified with the depot's own key"
    ]


def test_until_takes_spans_dates_and_refuses_the_past() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert parse_until("12h", now) == now + timedelta(hours=12)
    assert parse_until("2w", now) == now + timedelta(weeks=2)
    assert parse_until("2026-12-31", now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_until(None, now) == now + timedelta(days=30)
    # One reading of a span, whether it reaches forward (--until) or back (--since).
    for span, delta in (("30min", timedelta(minutes=30)), ("90s", timedelta(seconds=90)),
                        ("2d", timedelta(days=2)), (" 1w ", timedelta(weeks=1))):  # fmt: skip
        assert parse_until(span, now) - now == now - parse_since(span, now) == delta
    for bad in ("2026-11-01", "soon"):
        with pytest.raises(UsageError):
            parse_until(bad, now)


def test_a_version_the_depot_makes_is_signed_and_admitted(any_depot: Depot,
                                                          tmp_path: Path) -> None:  # fmt: skip
    from modeldepot.customise.results import Output, store_result
    from modeldepot.store import LayerKind
    from modeldepot.verify.signing import generate_key

    d = any_depot
    generate_key(tmp_path / "team")
    generate_key(d.signatures.default_key)
    (d.settings.home / "policy.toml").write_text(
        f'[signatures]\nrequired = true\ntrusted_keys = ["{tmp_path / "team.pub"}"]\n'
    )
    weights = write_gguf(tmp_path / "made.gguf", seed=4)
    made = store_result(
        d, kind="quantize", name="made", info=d.formats.read(weights).info,
        outputs=[Output("made.gguf", LayerKind.WEIGHTS, weights)], lineage=[], materials=[],
        record={}, invocation="depot quantize", started=datetime.now(UTC),
    )  # fmt: skip
    assert made.status == "ok", made.reasons
    assert len(d.signatures.trust.signatures(made.digest)) == 1
