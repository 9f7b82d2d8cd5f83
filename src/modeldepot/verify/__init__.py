"""Verify: admission of every new version (scan, then the gate: today's policy, holds and
exceptions) before anything may serve, export or run it; quarantine; signatures; the integrity
of stored bytes. The scanners
themselves are in `modeldepot.scan`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = [
    "HELD",
    "Admission",
    "CheckProblem",
    "Gate",
    "Integrity",
    "Quarantine",
    "Signatures",
    "Verdict",
    "Verification",
    "check",
]

if TYPE_CHECKING:
    from modeldepot.verify.admission import Admission
    from modeldepot.verify.gate import HELD, Gate, Verdict
    from modeldepot.verify.integrity import CheckProblem, Integrity, check
    from modeldepot.verify.quarantine import Quarantine
    from modeldepot.verify.signatures import Signatures, Verification
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {
            "modeldepot.verify.admission": ["Admission"],
            "modeldepot.verify.gate": ["HELD", "Gate", "Verdict"],
            "modeldepot.verify.integrity": ["CheckProblem", "Integrity", "check"],
            "modeldepot.verify.quarantine": ["Quarantine"],
            "modeldepot.verify.signatures": ["Signatures", "Verification"],
        },
    )
