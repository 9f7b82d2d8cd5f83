"""Ollama's API, served at the root (`OLLAMA_HOST=http://HOST:PORT`): a translation layer in
front of the depot's one serving path, never a second one. `routes.py` answers what clients
read and run (tags, ps, show, chat, generate, embed), `manage.py` what changes the store (pull,
create, copy, delete, blobs); requests are parsed once into `wire.py`'s models, names mapped by
`names.py`, answers shaped by `views.py` and `translate.py`, errors by `errors.py`."""

from __future__ import annotations

from fastapi import APIRouter

from modeldepot.server.ollama import manage, routes

__all__ = ["router"]

router = APIRouter()
router.include_router(routes.router)
router.include_router(manage.router)
