"""The web UI's governance pages: the quarantine queue (release or hold, with a reason), the
policy in force, the audit log (filtered; the chain verified), and API keys (create, revoke,
scopes, quotas; usage per key and per model). Reading them and acting need a key with the
admin scope (or a depot without keys, used on loopback); every action is a POST with the
session's CSRF token, recorded in the audit log with the signed-in key's name as the actor."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from modeldepot.errors import DepotError, UsageError
from modeldepot.registry.audit import ChainReport, parse_since, readable
from modeldepot.server.requests import read_form
from modeldepot.server.ui.pages import FORM_LIMIT, Viewer, Who, render, script_json
from modeldepot.verify.policy import load_policy
from modeldepot.verify.quarantine import Entry, parse_until

__all__ = ["Forbidden", "forbidden_handler", "router"]

router = APIRouter(prefix="/governance", include_in_schema=False)
AUDIT_PAGE = 200


class Forbidden(Exception):
    """The viewer may not do this (403, on the "Not allowed" page)."""

    def __init__(self, who: Viewer, reason: str | None = None) -> None:
        super().__init__(reason or "needs the admin scope")
        self.who = who
        self.reason = reason


async def forbidden_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return render(request, "forbidden.html", exc.who, 403, reason=exc.reason)


async def _admin(who: Who) -> Viewer:
    if not who.key.admin:
        raise Forbidden(who)
    return who


Admin = Annotated[Viewer, Depends(_admin)]
"""A route's parameter `who: Admin`: a viewer with the admin scope."""


async def _admin_form(request: Request, who: Admin) -> tuple[Viewer, dict[str, str]]:
    """An admin's posted form, read once the scope is checked, then its CSRF token."""
    form = {k: str(v) for k, v in (await read_form(request, FORM_LIMIT)).items()}
    if not who.accepts(form.get("csrf")):
        raise Forbidden(who, "the form's token is not valid")
    return who, form


AdminForm = Annotated[tuple[Viewer, dict[str, str]], Depends(_admin_form)]


def _back(path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={quote(message)}", 303)


# -- quarantine ------------------------------------------------------------------------------


@router.get("/quarantine")
async def quarantine_page(request: Request, who: Admin) -> Response:
    depot = request.app.state.depot.depot

    def gather() -> tuple[list[Entry], list[Entry], list[Entry]]:
        entries = [e for e in depot.quarantine.entries()
                   if any(who.key.allows(n) for n in e.names)]  # fmt: skip
        queue = [e for e in entries if not e.verdict.admitted]
        excepted = [e for e in entries if e.verdict.admitted and e.verdict.exception]
        admitted = [e for e in entries if e.verdict.admitted]
        return queue, excepted, admitted

    queue, excepted, admitted = await asyncio.to_thread(gather)
    return render(request, "quarantine.html", who, queue=queue, excepted=excepted,
                  admitted=admitted, done=request.query_params.get("done"))  # fmt: skip


async def _act(request: Request, checked: tuple[Viewer, dict[str, str]], action: str
               ) -> Response:  # fmt: skip
    who, form = checked
    depot = request.app.state.depot.depot
    reason = form.get("reason", "").strip()
    if not reason:
        return _back("/governance/quarantine", f"{action} needs a reason")
    try:
        version = await asyncio.to_thread(depot.names.show, form.get("name", ""))
        if action == "release":
            until = parse_until(form.get("until"), depot.gate.clock())
            verdict = await asyncio.to_thread(depot.quarantine.release, version, reason,
                                              until=until, actor=who.key.name)  # fmt: skip
        else:
            verdict = await asyncio.to_thread(depot.quarantine.hold, version, reason=reason,
                                              actor=who.key.name)  # fmt: skip
    except DepotError as exc:
        return _back("/governance/quarantine", str(exc))
    if action == "hold":
        return _back("/governance/quarantine", f"{version.reference} held")
    x = verdict.exception
    note = f" under an exception until {x.until:%Y-%m-%d %H:%M} UTC" if x else ""
    return _back("/governance/quarantine", f"{version.reference} released{note}")


@router.post("/quarantine/release")
async def release(request: Request, checked: AdminForm) -> Response:
    return await _act(request, checked, "release")


@router.post("/quarantine/hold")
async def hold(request: Request, checked: AdminForm) -> Response:
    return await _act(request, checked, "hold")


# -- policy and audit --------------------------------------------------------------------------


@router.get("/policy")
async def policy_page(request: Request, who: Admin) -> Response:
    depot = request.app.state.depot.depot
    try:  # read, not recorded: a page view is not an audit event
        policy, error = await asyncio.to_thread(load_policy, depot.settings.home), None
    except UsageError as exc:
        policy, error = None, str(exc)
    return render(request, "policy.html", who, policy=policy, error=error)


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_since(text)
    except ValueError:
        return None


@router.get("/audit")
async def audit_page(request: Request, who: Admin) -> Response:
    depot = request.app.state.depot.depot
    q = request.query_params
    action, actor, model = q.get("action") or None, q.get("actor") or "", q.get("model") or ""
    since, until = _since(q.get("since")), _since(q.get("until"))
    problems = [f"{name} {q.get(name)!r} is neither a span (30m, 1h, 2d) nor a date"
                for name, value in (("since", since), ("until", until))
                if q.get(name) and value is None]  # fmt: skip

    state = request.app.state.depot
    again = q.get("verify") == "1"

    def chain() -> tuple[ChainReport, datetime]:
        """The chain's check, made again only when the chain has grown or is asked for: a
        view does not rehash every event."""
        head = depot.audit.head()
        if again or state.chain_checked is None or state.chain_checked[0] != head:
            state.chain_checked = (head, depot.audit.verify(), datetime.now(UTC))
        return state.chain_checked[1], state.chain_checked[2]

    def gather() -> tuple[list[Any], tuple[ChainReport, datetime], list[str]]:
        actions = depot.audit.actions()
        if action:
            try:
                depot.audit.check_action(action)
            except UsageError as exc:
                problems.append(str(exc))
                return [], chain(), actions
        events = depot.audit.events(since=since, action=action)
        events = [e for e in events if (not actor or e.actor == actor)
                  and (not model or model in e.subject)
                  and (until is None or e.at <= until)]  # fmt: skip
        return events[-AUDIT_PAGE:][::-1], chain(), actions

    events, (report, checked), actions = await asyncio.to_thread(gather)
    return render(
        request,
        "audit.html",
        who,
        400 if problems else 200,
        events=[(e, readable(e.details)) for e in events],
        chain=report,
        checked=checked,
        actions=actions,
        problems=problems,
        filters={
            "action": action or "",
            "actor": actor,
            "model": model,
            "since": q.get("since") or "",
            "until": q.get("until") or "",
        },
    )


# -- keys and usage ----------------------------------------------------------------------------


def _usage(depot: Any, days: int = 14) -> dict[str, Any]:
    """Tokens per day, per key and per model, over the last `days` days (chart data)."""
    since = datetime.now(UTC) - timedelta(days=days)
    records = depot.usage.records(since=since)
    labels = [(since + timedelta(days=i + 1)).date().isoformat() for i in range(days)]
    index = {d: i for i, d in enumerate(labels)}
    by_key: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    by_model: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        day = index.get(r.at.date().isoformat()) if r.at else None
        if day is None:
            continue
        by_key[r.key][day] += r.tokens
        by_model[r.model][day] += r.tokens
        totals[r.key][r.model] += r.tokens
    return {"days": labels, "keys": dict(by_key), "models": dict(by_model),
            "totals": {k: dict(v) for k, v in totals.items()}}  # fmt: skip


@router.get("/keys")
async def keys_page(request: Request, who: Admin) -> Response:
    return await _keys_page(request, who, done=request.query_params.get("done"))


async def _keys_page(request: Request, who: Viewer, **extra: Any) -> Response:
    depot = request.app.state.depot.depot
    keys = await asyncio.to_thread(depot.keys.all)
    usage = await asyncio.to_thread(_usage, depot)
    return render(
        request, "keys.html", who, keys=keys, usage=usage, chart=script_json(usage), **extra
    )


@router.post("/keys/create")
async def key_create(request: Request, checked: AdminForm) -> Response:
    who, form = checked
    depot = request.app.state.depot.depot

    def number(field: str) -> int | None:
        text = form.get(field, "").strip()
        return int(text) if text.isdigit() else None

    try:
        created, secret = await asyncio.to_thread(
            depot.keys.create, form.get("name", "").strip(),
            models=form.get("models", "").strip() or "*", rpm=number("rpm"), tpd=number("tpd"),
            private=form.get("private") == "on", admin=form.get("admin") == "on",
            actor=who.key.name)  # fmt: skip
    except DepotError as exc:
        return _back("/governance/keys", str(exc))
    # The secret is shown once, on this response only (never in an address or a log).
    return await _keys_page(request, who, done=None, secret=secret, created=created.name)


@router.post("/keys/revoke")
async def key_revoke(request: Request, checked: AdminForm) -> Response:
    who, form = checked
    depot = request.app.state.depot.depot
    name = form.get("name", "")
    try:
        await asyncio.to_thread(depot.keys.revoke, name, actor=who.key.name)
    except DepotError as exc:
        return _back("/governance/keys", str(exc))
    return _back("/governance/keys", f"key {name} revoked")
