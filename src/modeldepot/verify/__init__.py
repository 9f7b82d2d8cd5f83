"""Verify: admission of every new version (scan, then the gate: today's policy, holds and
exceptions) before anything may serve, export or run it; quarantine; signatures; the integrity
of stored bytes. The scanners
themselves are in `modeldepot.scan`."""

from modeldepot.verify.admission import Admission
from modeldepot.verify.gate import HELD, Gate, Verdict
from modeldepot.verify.integrity import CheckProblem, Integrity, check
from modeldepot.verify.quarantine import Quarantine
from modeldepot.verify.signatures import Signatures, Verification

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
