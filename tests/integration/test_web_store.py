"""The web result store, SQLite and Redis, against one set of tests (and the accounts command)."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.web.store import SessionRecord, WebResult, WebStore
from adapters.web.store_redis import RedisWebStore
from adapters.web.store_sqlite import SQLiteWebStore
from bot.cli import main


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WebStore]:
    made: WebStore
    if request.param == "sqlite":
        made = SQLiteWebStore(tmp_path)
    else:
        server: Any = request.getfixturevalue("redis_server")
        made = RedisWebStore(server.url)
    yield made
    await made.close()


async def test_results_and_their_blobs_are_deleted_together(store: WebStore) -> None:
    await store.add_result(WebResult("r1-0000000000000000", "alice", 100.0, "a.jpg"))
    await store.add_result(WebResult("r2-0000000000000000", "alice", 200.0, "b.jpg"))
    await store.add_result(WebResult("r3-0000000000000000", "bob", 300.0, "c.jpg"))
    for kind in ("upload", "annotated", "prepared"):
        await store.put_blob("r1-0000000000000000", kind, b"x")
    assert [r.id for r in await store.results_of("alice")] == ["r2-0000000000000000", "r1-0000000000000000"]
    assert await store.sweep(older_than=150.0) == 1
    assert await store.result("r1-0000000000000000") is None
    assert await store.blob("r1-0000000000000000", "annotated") is None
    assert [r.id for r in await store.results_of("alice")] == ["r2-0000000000000000"]
    await store.delete_result("r3-0000000000000000")
    assert await store.results_of("bob") == []


async def test_a_sign_in_link_is_used_once_and_expires(store: WebStore) -> None:
    assert await store.add_account("alice", 0.0)
    assert not await store.add_account("alice", 0.0)
    await store.add_signin("token-1", "alice", expires_at=9e9)
    await store.add_signin("token-2", "alice", expires_at=10.0)
    assert await store.take_signin("token-1", now=100.0) == "alice"
    assert await store.take_signin("token-1", now=100.0) is None
    assert await store.take_signin("token-2", now=100.0) is None  # expired
    assert await store.take_signin("never-issued", now=100.0) is None


async def test_removing_an_account_removes_its_results_and_links(store: WebStore) -> None:
    await store.add_account("alice", 0.0)
    await store.add_result(WebResult("r1-0000000000000000", "alice", 100.0, "a.jpg"))
    await store.add_signin("token", "alice", 9e9)
    assert await store.remove_account("alice")
    assert not await store.has_account("alice")
    assert await store.result("r1-0000000000000000") is None
    assert await store.take_signin("token", 100.0) is None
    assert not await store.remove_account("alice")


async def test_slots_are_capped_released_and_expire(store: WebStore) -> None:
    assert await store.acquire_slot("ip:1", "a", 2, now=100.0, lease_s=60)
    assert await store.acquire_slot("ip:1", "b", 2, now=100.0, lease_s=60)
    assert not await store.acquire_slot("ip:1", "c", 2, now=100.0, lease_s=60)
    await store.release_slot("ip:1", "a")
    assert await store.acquire_slot("ip:1", "c", 2, now=100.0, lease_s=60)
    assert await store.acquire_slot("ip:1", "d", 2, now=200.0, lease_s=60)  # b and c expired


async def test_daily_counters(store: WebStore) -> None:
    assert await store.add_count("ip:1", "2026-01-01", 2) == 2
    assert await store.add_count("ip:1", "2026-01-01", 1) == 3
    assert await store.count("ip:1", "2026-01-01") == 3
    assert await store.count("ip:1", "2026-01-02") == 0


async def test_the_session_secret_is_made_once(store: WebStore, tmp_path: Path) -> None:
    first = await store.session_secret()
    assert len(first) == 32
    assert await store.session_secret() == first
    if isinstance(store, SQLiteWebStore):
        assert stat.S_IMODE(os.stat(tmp_path / "web-session-secret").st_mode) == 0o600
        assert await SQLiteWebStore(tmp_path).session_secret() == first


def test_the_accounts_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHOTODETECTIVE_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PHOTODETECTIVE_WEB_PUBLIC_URL", "https://photos.example.org")
    (tmp_path / "state").mkdir()  # as the running bot left it; a missing folder is refused

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        return main(list(argv), out=out, err=io.StringIO()), out.getvalue()

    code, text = run("web", "user", "add", "alice")
    assert code == 0
    assert "account alice created" in text
    assert "https://photos.example.org/signin/" in text
    assert "exists" in run("web", "user", "add", "alice")[1]
    assert run("web", "user", "list") == (0, "alice\n")
    assert run("web", "user", "add", "../bad name")[0] == 1
    assert run("web", "user", "remove", "alice") == (0, "account alice removed\n")
    assert run("web", "user", "remove", "alice")[0] == 1
    assert run("web", "user", "list") == (0, "no accounts\n")


async def test_sessions_end_one_at_a_time_all_but_one_or_with_the_account(store: WebStore) -> None:
    assert await store.add_account("alice", 5.0)
    since = await store.account_created("alice")
    for sid in ("phone", "laptop", "tablet"):
        await store.add_session(sid, SessionRecord("alice", 5.0, expires_at=1000.0))
    await store.add_session("bobs", SessionRecord("bob", 7.0, expires_at=1000.0))
    assert since == 5.0
    assert await store.session("phone", now=10.0) == SessionRecord("alice", 5.0, 1000.0)
    assert await store.session("phone", now=1001.0) is None  # expired
    assert await store.session("nobody", now=10.0) is None
    await store.end_session("phone")
    assert await store.session("phone", now=10.0) is None
    assert await store.end_sessions("alice", keep="laptop") == 1
    assert await store.session("tablet", now=10.0) is None
    assert await store.session("laptop", now=10.0) is not None
    assert await store.remove_account("alice")
    assert await store.session("laptop", now=10.0) is None
    assert await store.account_created("alice") is None
    assert await store.session("bobs", now=10.0) == SessionRecord("bob", 7.0, 1000.0)
    assert await store.end_sessions("bob") == 1


async def test_waiting_photos_come_back_oldest_first_and_leave_with_their_result(store: WebStore) -> None:
    for n, since in ((1, 30.0), (2, 10.0), (3, 20.0)):
        await store.add_result(WebResult(f"w{n}-000000000000000", "alice", since, f"{n}.jpg"))
        await store.add_waiting(f"w{n}-000000000000000", f'{{"n": {n}}}', since)
    assert [r for r, _ in await store.waiting(10)] == [
        "w2-000000000000000",
        "w3-000000000000000",
        "w1-000000000000000",
    ]
    assert await store.waiting(1) == [("w2-000000000000000", '{"n": 2}')]
    await store.end_waiting("w2-000000000000000")
    await store.delete_result("w3-000000000000000")
    assert await store.waiting(10) == [("w1-000000000000000", '{"n": 1}')]


async def test_a_link_made_before_removal_does_not_sign_in_the_account_added_again(store: WebStore) -> None:
    assert await store.add_account("alice", 1.0)
    await store.add_signin("old-link", "alice", expires_at=9e9)
    assert await store.remove_account("alice")
    assert await store.add_account("alice", 2.0)
    await store.add_signin("new-link", "alice", expires_at=9e9)
    assert await store.take_signin("old-link", now=10.0) is None
    assert await store.take_signin("new-link", now=10.0) == "alice"
