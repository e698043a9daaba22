"""Web sessions end when they should: sign-out, a new sign-in link, "sign out everywhere else", removal.

A session cookie only names a server-side session record (in the result store, so every replica
agrees), and every request checks that record. Each test keeps a copy of a cookie, ends the
session the way a user or operator would, and shows that the copy no longer signs anyone in, on
SQLite and on Redis.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.web.commands import issue_link
from adapters.web.security import SESSION_COOKIE
from bot.cli import main
from tests.integration.web_harness import WebHarness, running_web


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides selecting the result store: SQLite in the data folder, or a real Redis."""
    if request.param == "sqlite":
        return {}
    return {"redis_url": request.getfixturevalue("redis_server").url}


def cookie_of(web: WebHarness) -> str:
    return web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))[SESSION_COOKIE].value


async def status_with(web: WebHarness, cookie: str) -> int:
    """GET / with exactly this cookie and no other (as a copy of it on another device would)."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as other_device,
        other_device.get(
            web.client.make_url("/"), headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, allow_redirects=False
        ) as answer,
    ):
        return answer.status


async def sign_in_elsewhere(web: WebHarness, name: str, *, keep: bool = True) -> str:
    """Sign `name` in on "another device": a fresh link followed without the jar; returns that cookie."""
    url = (await issue_link(web.adapter.store, web.settings, name, time.time(), keep_sessions=keep)).url
    async with web.client.session.get(
        web.client.make_url(url[url.index("/signin/") :]), allow_redirects=False
    ) as answer:
        assert answer.status == 303
        found = re.search(rf"{SESSION_COOKIE}=([^;]+)", answer.headers["Set-Cookie"])
    web.client.session.cookie_jar.clear()
    assert found
    return found.group(1)


async def test_a_copy_of_the_cookie_stops_working_after_sign_out(
    tmp_path: Path, backend: dict[str, Any]
) -> None:
    async with running_web(tmp_path, worker=False, **backend) as web:
        await web.sign_in("alice")
        copy = cookie_of(web)
        before = await status_with(web, copy)
        token = await web.csrf()
        signed_out = await web.post("/signout", data={"csrf_token": token}, headers={"Origin": web.origin})
        after = await status_with(web, copy)
    assert before == 200
    assert signed_out.status == 303
    assert signed_out.headers["Location"] == "/signedout"
    assert after == 401


async def test_a_new_sign_in_link_signs_the_lost_phone_out(tmp_path: Path, backend: dict[str, Any]) -> None:
    async with running_web(tmp_path, worker=False, **backend) as web:
        lost_phone = await sign_in_elsewhere(web, "alice")
        laptop = await sign_in_elsewhere(web, "alice", keep=True)
        both = [await status_with(web, lost_phone), await status_with(web, laptop)]
        new_phone = await sign_in_elsewhere(web, "alice", keep=False)
        after = [await status_with(web, c) for c in (lost_phone, laptop, new_phone)]
    assert both == [200, 200]
    assert after == [401, 401, 200]


async def test_sign_out_everywhere_else_keeps_only_this_browser(
    tmp_path: Path, backend: dict[str, Any]
) -> None:
    async with running_web(tmp_path, worker=False, **backend) as web:
        other = await sign_in_elsewhere(web, "alice")
        bob = await sign_in_elsewhere(web, "bob")
        web.client.session.cookie_jar.update_cookies({SESSION_COOKIE: await sign_in_elsewhere(web, "alice")})
        page = (await web.get("/results")).text
        token = await web.csrf()
        answer = await web.post("/signout/others", data={"csrf_token": token}, headers={"Origin": web.origin})
        here = (await web.get("/")).status
        others = [await status_with(web, c) for c in (other, bob)]
    assert 'action="/signout/others"' in page
    assert answer.status == 303
    assert here == 200
    assert others == [401, 200]


async def test_removing_then_adding_an_account_does_not_revive_old_cookies(
    tmp_path: Path, backend: dict[str, Any]
) -> None:
    async with running_web(tmp_path, worker=False, **backend) as web:
        await web.sign_in("alice")
        copy = cookie_of(web)
        assert await web.adapter.store.remove_account("alice")
        assert await web.adapter.store.add_account("alice", time.time())
        after = await status_with(web, copy)
    assert after == 401


async def test_the_cli_says_how_many_sessions_a_new_link_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_DATA_DIR", str(tmp_path))
    async with running_web(tmp_path, worker=False) as web:
        await web.sign_in("alice")
        copy = cookie_of(web)
        out = io.StringIO()
        code = await asyncio.to_thread(main, ["web", "user", "add", "alice"], out)
        after = await status_with(web, copy)
    assert code == 0
    assert "ended 1 session" in out.getvalue()
    assert after == 401


@pytest.mark.redis
async def test_signing_out_on_one_replica_ends_the_session_on_another(
    tmp_path: Path, redis_server: Any
) -> None:
    async with (
        running_web(tmp_path / "one", worker=False, redis_url=redis_server.url) as one,
        running_web(tmp_path / "two", worker=False, redis_url=redis_server.url) as two,
    ):
        await one.sign_in("alice")
        copy = cookie_of(one)
        before = await status_with(two, copy)
        token = await one.csrf()
        await one.post("/signout", data={"csrf_token": token}, headers={"Origin": one.origin})
        after = await status_with(two, copy)
    assert before == 200
    assert after == 401
