"""Web UI sessions live in the registry: signing out ends a session on the server (a copy of
its cookie is refused afterwards), and every replica on one registry knows the same sessions.
Driven over HTTP in this process; the browser's part is in test_pages.py."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from servers import asgi_depot

COOKIE = "depot_session"


async def _sign_in(client: httpx.AsyncClient, secret: str) -> str:
    """Sign in as a browser does; the session cookie's value."""
    page = await client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    reply = await client.post("/signin", data={"key": secret, "csrf": token.group(1),
                                               "next": "/"})  # fmt: skip
    assert reply.status_code == 303, reply.text
    return str(reply.cookies[COOKIE])


async def _page(client: httpx.AsyncClient, cookie: str, path: str = "/") -> httpx.Response:
    return await client.get(path, headers={"Cookie": f"{COOKIE}={cookie}"})


async def _csrf(client: httpx.AsyncClient, cookie: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', (await _page(client, cookie)).text)
    assert token is not None
    return token.group(1)


def _signed_out(reply: httpx.Response) -> bool:
    return reply.status_code == 303 and reply.headers["location"].startswith("/signin")


def test_signing_out_ends_the_session_on_the_server(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "depot", user="admin")
    with Depot(settings) as depot:
        _, secret = depot.keys.create("reader")

    async def scenario() -> None:
        async with asgi_depot(settings) as (_, client):
            cookie = await _sign_in(client, secret)
            assert (await _page(client, cookie)).status_code == 200
            csrf = await _csrf(client, cookie)
            out = await client.post("/signout", data={"csrf": csrf},
                                    headers={"Cookie": f"{COOKIE}={cookie}"})  # fmt: skip
            assert _signed_out(out)
            # the cookie, kept or stolen, no longer signs anyone in
            assert _signed_out(await _page(client, cookie))
            chat = await client.post("/ui/chat", json={"model": "x", "messages": []},
                                     headers={"Cookie": f"{COOKIE}={cookie}",
                                              "X-CSRF-Token": csrf})  # fmt: skip
            assert chat.status_code == 401
            # forged and oversized cookies sign nobody in
            for forged in ("x", cookie[:-1] + "A", "." * 5000):
                assert _signed_out(await _page(client, forged))

    asyncio.run(scenario())


def test_every_replica_knows_the_same_sessions(tmp_path: Path, database_url: str | None) -> None:
    registry = database_url or f"sqlite:///{tmp_path / 'registry.db'}"
    one = Settings(home=tmp_path / "one", database_url=registry, user="admin")
    two = Settings(home=tmp_path / "two", database_url=registry, user="admin")
    with Depot(one) as depot:
        _, secret = depot.keys.create("reader")

    async def scenario() -> None:
        async with asgi_depot(one) as (_, first), asgi_depot(two) as (_, second):
            cookie = await _sign_in(first, secret)
            assert (await _page(second, cookie)).status_code == 200  # signed in on both
            csrf = await _csrf(second, cookie)
            assert csrf == await _csrf(first, cookie)  # its forms are good on either
            await second.post("/signout", data={"csrf": csrf},
                              headers={"Cookie": f"{COOKIE}={cookie}"})  # fmt: skip
            assert _signed_out(await _page(first, cookie))  # and signed out of both

    asyncio.run(scenario())
