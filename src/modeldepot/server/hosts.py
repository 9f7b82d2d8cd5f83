"""Which names the server answers to. A depot without keys lets every request in, so a web page
whose own name resolves to loopback (DNS rebinding) could otherwise read weights or release a
quarantined model: such a request must name the server in its `Host` header, and, when it
changes something (any method but GET, HEAD, OPTIONS), in its `Origin` header when it has one.
The names are the address the server listens on (with `localhost`, `127.0.0.1` and `[::1]`
when that is loopback; the machine's names and addresses when it is every interface), plus
`DEPOT_ALLOWED_HOSTS`. A request that names another host is 421, one from another origin 403.

An app reached in-process (`depot eval`, `depot batch run`, tests) is not on any network: its
transport marks each request (`in_process_transport`), which no network client can do."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import Request

from modeldepot.server.errors import APIError

__all__ = ["IN_PROCESS", "Hosts", "in_process_transport"]

IN_PROCESS = "modeldepot.in_process"
"""Set in the ASGI scope of a request that came through `in_process_transport`."""
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::", "[::]")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _name(host: str) -> str:
    """A host name as compared: lower case, no trailing dot, IPv6 addresses in brackets."""
    host = host.strip().lower().rstrip(".")
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def split_host(value: str, default_port: int | None) -> tuple[str, int | None] | None:
    """`NAME[:PORT]` (an IPv6 address in brackets) as (name, port); None when malformed."""
    value = value.strip()
    if not value or any(c.isspace() or c in "/\\@?#" for c in value):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    else:
        name, colon, port_text = value.partition(":")
        if colon and not port_text:
            return None
    if not name or name == "[]":
        return None
    if not port_text:
        return _name(name), default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return _name(name), int(port_text)


def _machine_names() -> set[str]:
    """This machine's names and the addresses they resolve to."""
    names = {socket.gethostname(), socket.getfqdn()}
    found = set(names)
    for name in names:
        with contextlib.suppress(OSError):
            found.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
    return {_name(n) for n in found if n}


@dataclass(frozen=True)
class Hosts:
    """The (name, port) pairs a request may name this server by; a port of None: any port."""

    allowed: frozenset[tuple[str, int | None]]
    any_host: bool = False

    @classmethod
    def for_server(cls, bound: tuple[str, int] | None, extra: str | None) -> Hosts:
        """For a server listening on `bound` (host, port), or, when None, reached only
        in-process and by loopback names; `extra`: DEPOT_ALLOWED_HOSTS."""
        pairs: set[tuple[str, int | None]] = set()
        if bound is None:
            pairs.update((n, None) for n in LOOPBACK)
        else:
            host, port = bound
            host = _name(host)
            if host in WILDCARDS:
                names = {*LOOPBACK, *_machine_names()}
            elif host in LOOPBACK or host.startswith("127."):
                names = {*LOOPBACK, host}
            else:
                names = {host}
            pairs.update((n, port) for n in names)
        entries = [e.strip() for e in (extra or "").split(",") if e.strip()]
        for entry in entries:
            if entry == "*":
                return cls(frozenset(pairs), any_host=True)
            parsed = split_host(entry, None)
            if parsed is not None:
                pairs.add(parsed)
        return cls(frozenset(pairs))

    def names(self, name: str, port: int | None) -> bool:
        return self.any_host or (name, port) in self.allowed or (name, None) in self.allowed

    def check(self, request: Request) -> None:
        """Refuse a request that does not name this server (421), or that changes something
        from a page of another origin (403)."""
        if self.any_host or request.scope.get(IN_PROCESS):
            return
        default = _DEFAULT_PORTS.get(request.url.scheme, 80)
        host = split_host(request.headers.get("host", ""), default)
        if host is None or not self.names(*host):
            shown = request.headers.get("host", "")[:100]
            raise APIError(421, f"this server does not answer to the host {shown!r}; "
                           "DEPOT_ALLOWED_HOSTS lists names it may be called by",
                           "invalid_request_error", "host_not_allowed")  # fmt: skip
        origin = request.headers.get("origin")
        if origin is None or request.method in SAFE_METHODS:
            return
        if not self._origin_allowed(origin):
            raise APIError(403, f"requests from the origin {origin[:100]!r} may not change "
                           "anything here", "permission_error", "origin_not_allowed")  # fmt: skip

    def _origin_allowed(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin.strip())
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False  # "null" (a sandboxed page, a file) included
        return self.names(_name(parts.hostname), port or _DEFAULT_PORTS[parts.scheme])


class _InProcessApp:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await self.app({**scope, IN_PROCESS: True}, receive, send)


def in_process_transport(app: Any) -> httpx.ASGITransport:
    """A transport to `app` in this process whose requests are trusted to name it."""
    return httpx.ASGITransport(app=_InProcessApp(app))
