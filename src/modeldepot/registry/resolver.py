"""The one answer to "which model does this name reach": an alias (its targets in order), a
remote model, or a local version by name, tag or digest; with the rule that a private request
never leaves the machine and the policy's word on each local version. The server routes by it
and evaluation records results by it, so both agree on which model answered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modeldepot.errors import InvalidReference, ModelNotFound
from modeldepot.registry.gateway import Alias, Remote
from modeldepot.registry.records import PENDING, ModelVersion

__all__ = ["Resolution", "Resolver", "Target", "refusal"]


def refusal(version: ModelVersion, reasons: list[str]) -> str:
    """How a refused version is named everywhere it is refused: `REF is quarantined: reason`,
    or `REF is pending: ...` while its checks have not finished."""
    what = reasons[0] if version.status == PENDING else f"quarantined: {reasons[0]}"
    return f"{version.reference} is {what}"


@dataclass(frozen=True)
class Target:
    """One model that can answer: a local version or a remote model."""

    name: str
    version: ModelVersion | None = None
    remote: Remote | None = None

    @property
    def identity(self) -> str:
        """What results and cached responses are keyed by: a version's manifest digest, or
        `remote:NAME`."""
        if self.version is not None:
            return self.version.digest
        assert self.remote is not None
        return f"remote:{self.remote.name}"

    @property
    def label(self) -> str:
        if self.remote is not None:
            return f"{self.remote.name} ({self.remote.upstream_model})"
        return self.name


@dataclass(frozen=True)
class Resolution:
    requested: str
    alias: Alias | None
    targets: tuple[Target, ...]
    """Those that may answer, in the order to try them."""
    withheld: tuple[str, ...] = ()
    """Remote targets left out because the request is private."""
    refused: tuple[str, ...] = ()
    """`reference is quarantined: reason` (or `is pending: ...`) of local versions that may
    not be served."""

    @property
    def found(self) -> bool:
        return bool(self.targets)


GatewaySnapshot = tuple[dict[str, Alias], dict[str, Remote]]


class Resolver:
    def __init__(
        self,
        version: Callable[[str], ModelVersion],
        gateway: Callable[[], GatewaySnapshot],
        refusals: Callable[[ModelVersion], list[str]],
    ) -> None:
        self._version = version
        self._gateway = gateway
        self._refusals = refusals

    def resolve(self, name: str, *, private: bool = False) -> Resolution:
        """Every model `name` reaches. Raises ModelNotFound when `name` is neither an alias,
        a remote nor a stored version; an alias target that no longer exists is skipped."""
        aliases, remotes = self._gateway()
        alias = aliases.get(name)
        names = list(alias.targets) if alias else [name]
        found: list[Target] = []
        withheld: list[str] = []
        refused: list[str] = []
        for one in names:
            remote = remotes.get(one)
            if remote is not None:
                if private:
                    withheld.append(one)
                else:
                    found.append(Target(one, remote=remote))
                continue
            try:
                version = self._version(one)
            except (ModelNotFound, InvalidReference):
                if alias is None:
                    raise ModelNotFound(f"no model, alias or remote named {name!r}") from None
                continue
            reasons = self._refusals(version)
            if reasons:
                refused.append(refusal(version, reasons))
                continue
            found.append(Target(str(version.reference), version=version))
        return Resolution(name, alias, tuple(found), tuple(withheld), tuple(refused))

    def target(self, name: str) -> Target:
        """The single model `name` names when it is not an alias (ModelNotFound otherwise)."""
        aliases, remotes = self._gateway()
        if name in remotes:
            return Target(name, remote=remotes[name])
        if name in aliases:
            raise ModelNotFound(f"{name!r} is an alias, not one model")
        try:
            version = self._version(name)
        except (ModelNotFound, InvalidReference):
            raise ModelNotFound(f"no model or remote named {name!r}") from None
        return Target(str(version.reference), version=version)
