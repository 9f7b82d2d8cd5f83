"""The web UI's pages: the catalogue, a model's page, the leaderboard, fine-tuning jobs, and
signing in. Server-rendered from the same read model as `/api` (`describe/view.py`); reading
pages work without JavaScript; htmx and the chart library only enhance them. Every text that
comes from a model (names, cards, file names, findings) is escaped, or sanitised Markdown.

With no API key ever created the UI is open, like the API on loopback; once keys exist it asks
for one (a session the registry keeps), and a key's model scope limits what it shows."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader

from modeldepot._version import __version__
from modeldepot.describe import safety
from modeldepot.describe.view import human_size, version_view
from modeldepot.errors import DepotError
from modeldepot.evaluation.charts import gap_svg, version_bars
from modeldepot.evaluation.client import ModelRef
from modeldepot.evaluation.compare import Board, gap_table, leaderboard
from modeldepot.licences import licence_terms
from modeldepot.registry import ModelVersion
from modeldepot.registry.evaluations import CAPABILITY, SAFETY, EvaluationStore
from modeldepot.registry.keys import ApiKey
from modeldepot.registry.sessions import SessionStore
from modeldepot.runtime import Capability
from modeldepot.scan import Finding
from modeldepot.scores import Score
from modeldepot.server.access import note
from modeldepot.server.auth import LOCAL
from modeldepot.server.errors import error_body
from modeldepot.server.requests import read_form
from modeldepot.server.state import ServerState
from modeldepot.server.ui import catalogue
from modeldepot.server.ui.markdown import card_body, render_markdown
from modeldepot.server.ui.session import COOKIE, CSRF_COOKIE, Sessions

__all__ = [
    "STATIC",
    "SignIn",
    "Viewer",
    "Who",
    "leaderboard_for",
    "render",
    "router",
    "script_json",
    "sessions_of",
    "signin_handler",
    "signin_redirect",
    "viewer",
]

HERE = Path(__file__).parent
STATIC = HERE / "static"
_ENV = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=True, trim_blocks=True,
                   lstrip_blocks=True)  # fmt: skip


def script_json(data: Any) -> str:
    """JSON to put inside <script type="application/json">: no `<` may close it early."""
    return json.dumps(data).replace("<", "\\u003c")


def _pagequery(params: Any, page: int) -> str:
    """The current query string with another page number."""
    from urllib.parse import urlencode

    kept = [(k, v) for k, v in params.multi_items() if k != "page"]
    return urlencode([*kept, ("page", str(page))])


_ENV.filters["pagequery"] = _pagequery
_SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Viewer:
    key: ApiKey
    signed_in: bool
    csrf: str
    """The token this viewer's forms carry."""

    def accepts(self, token: str | None) -> bool:
        """Whether a posted form's (or request's) CSRF token is this viewer's."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf)


class SignIn(Exception):
    """The page needs a signed-in key."""


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.depot
    return state


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions | None = getattr(request.app.state, "ui_sessions", None)
    if sessions is None:
        state = _state(request)
        sessions = Sessions(SessionStore(state.depot.registry.engine), state.settings.home)
        request.app.state.ui_sessions = sessions
    return sessions


async def viewer(request: Request) -> Viewer:
    """Who is looking (a route's parameter `who: Who`): the open local viewer when no key was
    ever created, else the key the session cookie names (SignIn when there is none, or it was
    revoked or expired)."""
    state, sessions = _state(request), sessions_of(request)
    if await state.gate.open_for(request):
        return Viewer(LOCAL, False, sessions.csrf(None))
    session = await sessions.read(request.cookies.get(COOKIE))
    if session is None:
        raise SignIn
    key = await state.gate.key_named(session.key)
    if key is None:
        raise SignIn
    note(request, key=key.name)
    return Viewer(key, True, sessions.csrf(session))


Who = Annotated[Viewer, Depends(viewer)]


async def signin_handler(request: Request, exc: Exception) -> Response:
    """A page asked for without a session: to the sign-in page (the playground's requests: 401)."""
    if request.url.path.startswith("/ui/"):
        return JSONResponse(error_body("sign in first", "invalid_request_error",
                                       "signin_required"), 401)  # fmt: skip
    return signin_redirect(request)


def render(request: Request, template: str, who: Viewer, status: int = 200,
          **context: Any) -> HTMLResponse:  # fmt: skip
    html = _ENV.get_template(template).render(
        request=request, viewer=who, depot_version=__version__, human_size=human_size, **context
    )
    return HTMLResponse(html, status, headers={
        "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
        "style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})  # fmt: skip


def signin_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target)}", 303)


# -- catalogue ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def catalogue_page(request: Request, who: Who) -> Response:
    query = catalogue.Query.from_params(dict(request.query_params))
    found = catalogue.search(await catalogue.rows_for(_state(request), who.key), query)
    return render(request, "catalogue.html", who, query=query, found=found,
                 facets=list(catalogue.FACETS), sorts=list(catalogue.SORTS))  # fmt: skip


# -- a model --------------------------------------------------------------------------------


def _worst(findings: list[Finding]) -> str:
    if not findings:
        return "clean"
    return str(max(findings, key=lambda f: _SEVERITY_ORDER.get(str(f.severity), 0)).severity)


def _about(location: str, path: str) -> bool:
    """Whether a finding's location (`FOLDER/PATH[:where]`, or the path alone) is this file."""
    where = location.split(":", 1)[0]
    return where == path or where.endswith("/" + path) or where.startswith(path + "/")


def _verify_now(state: ServerState, version: ModelVersion) -> list[tuple[str, bool]]:
    """Each signature checked now, for the page alone: a page view is not an audit event."""
    try:
        return [(line, True) for line in state.depot.signatures.verify(version, record=False)]
    except DepotError as exc:
        return [(str(exc), False)]


def _lineage(state: ServerState, version: ModelVersion) -> dict[str, Any]:
    """Where this version came from, and what was made from it (adapters, merges,
    quantisations, each with its data sets)."""
    everything = state.depot.names.versions()
    made = []
    for other in everything:
        links = [link for link in other.lineage if link.target_digest == version.digest]
        if links and other.digest != version.digest:
            made.append({"reference": str(other.reference), "relation": links[0].relation,
                         "status": other.status, "datasets": [
                             link.target for link in other.lineage
                             if link.relation == "dataset"]})  # fmt: skip
    return {"from": [vars(link) for link in version.lineage], "made": made}


def _evaluations(state: ServerState, version: ModelVersion,
                 kind: str = CAPABILITY) -> list[dict[str, Any]]:  # fmt: skip
    """Each task's primary score (its interval and items), for this version and every other
    version of its model, and its chart (SVG); of safety evaluations, each headline measure
    (a probe module's attack success rate, a bias score, the refusal rate)."""
    store = EvaluationStore(state.depot.registry)
    siblings = [v for v in state.depot.names.versions()
                if v.reference.repository == version.reference.repository]  # fmt: skip
    by_digest = {v.digest: str(v.reference) for v in siblings}
    tasks: dict[tuple[str, str], dict[str, Any]] = {}
    for digest, label in by_digest.items():
        for record in store.results(digest, kind=kind):
            metric = record.primary()
            metrics = safety.headlines(record) if kind == SAFETY else [metric] if metric else []
            for metric in metrics:
                task = tasks.setdefault((record.task, metric), {
                    "task": record.task, "metric": metric, "versions": []})  # fmt: skip
                score = Score.of(metric, record.metrics[metric])
                task["versions"].append({"label": label, "value": score.value, "score": score,
                                         "this": digest == version.digest})  # fmt: skip
    for task in tasks.values():
        label = f"{task['task']} {task['metric']}" if kind == SAFETY else task["task"]
        task["chart"] = version_bars(label, task["versions"])
    return [tasks[k] for k in sorted(tasks)]


async def _version_for(request: Request, who: Viewer, name: str) -> ModelVersion | None:
    state = _state(request)
    try:
        version = await asyncio.to_thread(state.depot.names.show, name)
    except DepotError:
        return None
    return version if who.key.allows(str(version.reference)) else None


@router.get("/models/{name:path}/bom.json")
async def model_bom(request: Request, name: str, who: Who) -> Response:
    version = await _version_for(request, who, name)
    if version is None:
        return render(request, "missing.html", who, 404, name=name)
    actor = who.key.name
    bom = await asyncio.to_thread(_state(request).depot.documents.bom, version, actor=actor)
    filename = f"{version.reference.repository.replace('/', '_')}.cdx.json"
    return Response(
        json.dumps(bom, indent=2),
        media_type="application/vnd.cyclonedx+json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/models/{name:path}", response_class=HTMLResponse)
async def model_page(request: Request, name: str, who: Who) -> Response:
    version = await _version_for(request, who, name)
    if version is None:
        return render(request, "missing.html", who, 404, name=name)
    state = _state(request)
    depot = state.depot

    def gather() -> dict[str, Any]:
        scan = depot.signatures.trust.latest_scan(version.digest)
        findings = [Finding.from_dict(f) for f in (scan.findings if scan else [])]
        files = [{"path": f.path, "kind": f.kind, "size": f.size, "digest": f.digest,
                  "verdict": _worst([x for x in findings if _about(x.location, f.path)])}
                 for f in version.files]  # fmt: skip
        _, body = card_body(depot.documents.card(version))
        terms = licence_terms(version.info.license)
        evaluations = _evaluations(state, version)
        measured = _evaluations(state, version, SAFETY)
        return {
            "view": version_view(version), "files": files, "findings": findings,
            "scanned": scan.scanned_at if scan else None, "card_html": render_markdown(body),
            "signatures": depot.signatures.trust.signatures(version.digest),
            "verified": _verify_now(state, version), "terms": terms,
            "obligations": terms.obligations(), "lineage": _lineage(state, version),
            "evaluations": evaluations, "safety": measured,
            "capabilities": state.directory.capabilities(version).to_list(),
        }  # fmt: skip

    facts = await asyncio.to_thread(gather)
    base_url = str(request.base_url).rstrip("/") + "/v1"
    return render(request, "model.html", who, version=version, base_url=base_url,
                 model_name=str(version.reference), **facts)  # fmt: skip


# -- evaluations and jobs -------------------------------------------------------------------


@router.get("/leaderboard", response_class=HTMLResponse)
async def leaderboard_page(request: Request, who: Who) -> Response:
    store = EvaluationStore(_state(request).depot.registry)
    task = request.query_params.get("task") or None
    newest = request.query_params.get("newest") == "1"
    try:
        board = await asyncio.to_thread(leaderboard_for, store, who.key, task, newest)
        error = None
    except DepotError as exc:
        board, error = await asyncio.to_thread(leaderboard_for, store, who.key, None, newest), exc
    subjects = await asyncio.to_thread(_subjects, store, who.key)
    a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
    gap: dict[str, Any] | None = None
    if a in subjects and b in subjects and a != b:
        gap = await asyncio.to_thread(_gap, store, subjects, a, b)
    return render(request, "leaderboard.html", who, board=board, error=error and str(error),
                  newest=newest, subjects=subjects, a=a, b=b, gap=gap)  # fmt: skip


def leaderboard_for(store: EvaluationStore, key: ApiKey, task: str | None = None,
                    newest: bool = False) -> Board:  # fmt: skip
    """The leaderboard of the models `key` may see, ranked among themselves."""
    return leaderboard(store, task=task, newest=newest,
                       include=lambda model: key.allows(model.split(" ")[0]))  # fmt: skip


def _subjects(store: EvaluationStore, key: ApiKey) -> dict[str, str]:
    """Every evaluated model the key may see: identity -> label."""
    return {r.subject: r.model for r in store.results() if key.allows(r.model.split(" ")[0])}


def _gap(store: EvaluationStore, subjects: dict[str, str], a: str, b: str) -> dict[str, Any]:
    """The gap between two evaluated models, per task, per category and overall, with the
    paired bootstrap intervals `depot eval compare` computes."""
    left = ModelRef(subjects[a], a, a.startswith("remote:"), subjects[a])
    right = ModelRef(subjects[b], b, b.startswith("remote:"), subjects[b])
    try:
        rows = gap_table(store, left, right)
    except DepotError as exc:
        return {"error": str(exc), "rows": [], "svg": ""}
    return {"rows": rows, "svg": gap_svg(rows, left.label, right.label), "error": None}


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request, who: Who) -> Response:
    jobs = await asyncio.to_thread(_state(request).depot.jobs.list)
    jobs = [j for j in jobs if who.key.allows(j.target)]
    return render(request, "jobs.html", who, jobs=jobs)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: str, who: Who) -> Response:
    try:
        job = await asyncio.to_thread(_state(request).depot.jobs.get, job_id)
    except DepotError:
        return render(request, "missing.html", who, 404, name=job_id)
    if not who.key.allows(job.target):
        return render(request, "missing.html", who, 404, name=job_id)
    losses = job.progress.get("losses", [])
    curve = script_json({"steps": list(range(1, len(losses) + 1)), "loss": losses})
    return render(request, "job.html", who, job=job, curve=curve)


# -- signing in -----------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never `//host` or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/") -> Response:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    who = Viewer(LOCAL, False, token)
    response = render(request, "signin.html", who, next=_safe_next(next), error=None)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600)
    return response


FORM_LIMIT = 64 * 1024
"""Largest form the web UI takes (sign-in and governance forms are a few fields)."""


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    form = await read_form(request, FORM_LIMIT)
    state = _state(request)
    token = request.cookies.get(CSRF_COOKIE)
    target = _safe_next(str(form.get("next") or "/"))
    if not token or form.get("csrf") != token:
        who = Viewer(LOCAL, False, token or "")
        return render(request, "signin.html", who, 403, next=target,
                     error="the form expired; try again")  # fmt: skip
    secret = str(form.get("key") or "").strip()
    key = await state.gate.key_for(secret) if secret else None
    if key is None:
        who = Viewer(LOCAL, False, token)
        return render(request, "signin.html", who, 401, next=target,
                     error="that API key is not valid")  # fmt: skip
    response = RedirectResponse(target, 303)
    sessions = sessions_of(request)
    response.set_cookie(COOKIE, await sessions.issue(key.name), httponly=True,
                        samesite="strict", max_age=int(sessions.lifetime),
                        secure=request.url.scheme == "https")  # fmt: skip
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.post("/signout")
async def signout(request: Request, who: Who) -> Response:
    form = await read_form(request, FORM_LIMIT)
    if not who.accepts(str(form.get("csrf") or "")):
        return JSONResponse(error_body("bad CSRF token", "permission_error", "bad_csrf_token"),
                            403)  # fmt: skip
    await sessions_of(request).end(request.cookies.get(COOKIE))  # refused from now on
    response = RedirectResponse("/signin", 303)
    response.delete_cookie(COOKIE)
    return response


# -- playground -----------------------------------------------------------------------------


@router.get("/playground", response_class=HTMLResponse)
async def playground_page(request: Request, who: Who) -> Response:
    from modeldepot.server.openai import models_for

    listed = await models_for(request, who.key, Capability.CHAT)  # no embedding models
    chosen = request.query_params.get("model") or ""
    return render(request, "playground.html", who, models=listed, chosen=chosen)


@router.post("/ui/chat")
async def playground_chat(request: Request, who: Who) -> Response:
    """The playground's chat request, answered by the OpenAI API as the signed-in key (the
    session's CSRF token in `X-CSRF-Token`)."""
    if not who.accepts(request.headers.get("x-csrf-token")):
        return JSONResponse(error_body("bad CSRF token", "permission_error", "bad_csrf_token"),
                            403)  # fmt: skip
    from modeldepot.server.openai import forward_as

    return await forward_as(request, "/v1/chat/completions", who.key)
