"""Verify: admission of every new version (scan, then the policy) before anything may serve,
export or run it; quarantine; signatures; the integrity of stored bytes. The scanners
themselves are in `modeldepot.scan`."""

from modeldepot.verify.admission import Admission
from modeldepot.verify.integrity import CheckProblem, Integrity, check
from modeldepot.verify.quarantine import HELD, Quarantine
from modeldepot.verify.signatures import Signatures, Verification

__all__ = [
    "HELD",
    "Admission",
    "CheckProblem",
    "Integrity",
    "Quarantine",
    "Signatures",
    "Verification",
    "check",
]
