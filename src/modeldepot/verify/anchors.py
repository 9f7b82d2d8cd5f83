"""Anchors of the audit chain: signed checkpoints (how many events, the last one's hash) kept in
`DEPOT_HOME/audit/checkpoints.jsonl`, outside the registry, as transparency logs publish signed
checkpoints. The hash chain alone shows an edited or deleted event in the middle; a checkpoint
also shows events removed from the end and a chain rewritten with fresh hashes, since the
anchored head no longer matches. A checkpoint is added when a depot command or server closes
(and every minute while a server runs) if the chain grew, signed with the depot's own key
(`depot keygen`) when there is one.

The chain itself records each checkpoint as it is written (an `audit.checkpoint` event, which
the checkpoint then anchors), so the file cannot quietly go: a chain that counts N checkpoints
needs a file holding at least N. The file begins with the chain: while the chain is empty, the
depot writes a first checkpoint of no events when it opens (`start`), so a chain with events
and no checkpoint at all was anchored once and lost its file, whatever its own events say.
Such a chain fails the check, and is not anchored afresh (that would launder the loss)."""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from modeldepot.registry.audit import AuditLog, ChainProblem, ChainReport

log = logging.getLogger("modeldepot.verify")

__all__ = ["CHECKPOINT_ACTION", "Anchors", "Checkpoint"]

CHECKPOINT_ACTION = "audit.checkpoint"
"""The event that records, in the chain, that a checkpoint was written."""


@dataclass(frozen=True)
class Checkpoint:
    events: int
    head: str
    at: str
    signer: str | None = None
    """Fingerprint of the key that signed it."""
    signature: str | None = None

    @property
    def statement(self) -> bytes:
        return f"modeldepot-audit-checkpoint:{self.events}:{self.head}:{self.at}".encode()


class Anchors:
    def __init__(self, path: Path, key: Path) -> None:
        self.path = path
        self.key = key
        """The depot's private signing key; its public half is `key.pub`."""

    def checkpoints(self) -> list[Checkpoint]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            try:
                found.append(Checkpoint(**json.loads(line)))
            except (ValueError, TypeError):
                found.append(Checkpoint(-1, "", "unreadable"))
        return found

    def _last(self) -> Checkpoint | None:
        """The newest checkpoint, read from the end of the file (it only grows)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4096))
                tail = f.read().splitlines()
        except FileNotFoundError:
            return None
        try:
            return Checkpoint(**json.loads(tail[-1])) if tail else None
        except (ValueError, TypeError):
            return None

    def start(self, audit: AuditLog) -> None:
        """Begin the anchors of a chain that is still empty: a first checkpoint, of no events."""
        if self.path.exists() or audit.head()[0]:
            return
        self._write(Checkpoint(0, "", datetime.now(UTC).isoformat()))

    def record(self, audit: AuditLog) -> Checkpoint | None:
        """Anchor the chain's head now, unless it is anchored already or its anchors were
        lost (see the module's docstring)."""
        events, head = audit.head()
        last = self._last()
        if not events or (last is not None and (last.events, last.head) == (events, head)):
            return None
        if last is None:
            log.warning("audit checkpoint not written: %s holds no checkpoint but the chain "
                     "holds %d events (depot audit verify)", self.path, events)  # fmt: skip
            return None
        try:
            written = audit.count(CHECKPOINT_ACTION)
            audit.append("depot", CHECKPOINT_ACTION, self.path.name, {"checkpoint": written + 1})
        except SQLAlchemyError as exc:  # a registry busy past its timeout: anchor next time
            log.warning("audit checkpoint not written: %s", exc)
            return None
        events, head = audit.head()  # the checkpoint anchors its own event
        return self._write(Checkpoint(events, head, datetime.now(UTC).isoformat()))

    def _write(self, checkpoint: Checkpoint) -> Checkpoint:
        if self.key.is_file():
            checkpoint = self._signed(checkpoint)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (json.dumps(vars(checkpoint)) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return checkpoint

    def verify(self, audit: AuditLog) -> ChainReport:
        """The chain's own check, and each checkpoint's: it still holds the anchored events
        with the anchored head, and its signature verifies."""
        chain = audit.verify()
        problems = list(chain.problems)
        for cp in self.checkpoints():
            if cp.events < 0:
                problems.append(ChainProblem(0, f"{self.path}: an unreadable checkpoint"))
                continue
            if cp.signature is not None and not self._verifies(cp):
                problems.append(
                    ChainProblem(
                        cp.events,
                        f"the checkpoint of {cp.at} does not "
                        "verify with the depot's key (forged or edited)",
                    )
                )
                continue  # fmt: skip
            if chain.events < cp.events:
                problems.append(
                    ChainProblem(
                        cp.events,
                        f"the chain holds {chain.events} events "
                        f"but {cp.events} were anchored on {cp.at}: events "
                        "were removed from its end",
                    )
                )
            elif audit.hash_at(cp.events) != cp.head:
                message = f"event {cp.events} is not the one anchored on {cp.at}: rewritten"
                problems.append(ChainProblem(cp.events, message))
        problems += self._missing(audit, chain.events)
        return ChainReport(chain.events, chain.head, tuple(problems))

    def _missing(self, audit: AuditLog, events: int) -> list[ChainProblem]:
        """Checkpoints the chain says were written but the file does not hold, and a chain of
        `events` events with no checkpoint at all."""
        written = audit.count(CHECKPOINT_ACTION)
        if events and not written and not self.checkpoints():
            return [ChainProblem(0, f"the chain holds {events} events but the checkpoint file "
                                    f"{self.path} holds no checkpoint: it was deleted, and the "
                                    "chain's own checkpoint events with it")]  # fmt: skip
        if not written:
            return []
        if not self.path.exists():
            return [ChainProblem(0, f"the checkpoint file {self.path} is missing, but the chain "
                                    f"records {written} checkpoints written to it")]  # fmt: skip
        held = len(self.checkpoints())
        if held < written:
            return [ChainProblem(0, f"{self.path} holds {held} checkpoints but the chain records "
                                    f"{written} written: checkpoints were removed")]  # fmt: skip
        return []

    def _signed(self, checkpoint: Checkpoint) -> Checkpoint:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        from modeldepot.verify.signing import fingerprint, public_key_pem

        key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(checkpoint.statement, ec.ECDSA(hashes.SHA256()))
        return Checkpoint(checkpoint.events, checkpoint.head, checkpoint.at,
                          fingerprint(public_key_pem(self.key)),
                          base64.b64encode(signature).decode())  # fmt: skip

    def _verifies(self, checkpoint: Checkpoint) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        public = self.key.with_name(self.key.name + ".pub")
        try:
            key = serialization.load_pem_public_key(public.read_bytes())
            assert isinstance(key, ec.EllipticCurvePublicKey)
            key.verify(base64.b64decode(checkpoint.signature or ""), checkpoint.statement,
                       ec.ECDSA(hashes.SHA256()))  # fmt: skip
        except (OSError, ValueError, InvalidSignature, AssertionError):
            return False
        return True
