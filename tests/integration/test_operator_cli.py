"""`photodetective quota ...` and `photodetective jobs ...` against the same stores the bot uses."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.queue import SqliteJobQueue


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHOTODETECTIVE_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PHOTODETECTIVE_QUOTA_DAILY_LIMIT", "3")
    (tmp_path / "state").mkdir()  # the bot made it when it started; a missing one is refused
    return tmp_path / "state"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out, err=io.StringIO())
    return code, out.getvalue()


def test_grant_block_and_unblock_change_what_show_reports() -> None:
    assert run("quota", "show", "telegram:42")[1].startswith("telegram:42: 0 of 3 photos used")
    assert "0 of 5 photos" in run("quota", "grant", "telegram:42", "2")[1]
    assert run("quota", "block", "telegram:42")[1].strip() == "telegram:42 blocked"
    assert "BLOCKED" in run("quota", "show", "telegram:42")[1]
    assert run("quota", "block", "telegram:42")[1].strip() == "telegram:42 was already blocked"
    assert run("quota", "unblock", "telegram:42")[1].strip() == "telegram:42 unblocked"
    assert "5 left" in run("quota", "show", "telegram:42")[1]


def test_grant_of_nothing_is_an_error() -> None:
    code, _ = run("quota", "grant", "telegram:42", "0")
    assert code == 1


def test_jobs_stats_and_dead_letters(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)

    async def make_dead_job() -> None:
        queue = SqliteJobQueue(data_dir / "queue.sqlite3")
        await queue.enqueue("telegram:1:2", "telegram:7", {"x": 1}, time.time())
        await queue.enqueue("telegram:1:3", "telegram:7", {"x": 2}, time.time())
        lease = await queue.claim("w", time.time(), 30)
        assert lease is not None
        await queue.fail(lease, "recognizer down", time.time(), retryable=False)
        await queue.close()

    asyncio.run(make_dead_job())
    code, stats = run("jobs", "stats")
    assert code == 0
    assert "1 waiting, 0 in progress, 0 answers waiting for their platform" in stats
    assert "0 answered, 0 apologised, 1 dead" in stats
    code, dead = run("jobs", "dead")
    assert "telegram:7" in dead
    assert "recognizer down" in dead


def test_jobs_stats_tell_answered_apologised_dead_and_answers_waiting_for_their_platform(
    data_dir: Path,
) -> None:
    async def make_jobs() -> None:
        queue = SqliteJobQueue(data_dir / "queue.sqlite3")
        now = time.time()
        for n in range(4):
            await queue.enqueue(f"telegram:1:{n}", "telegram:7", {"x": n}, now)
        leases = [await queue.claim("w", now, 30) for _ in range(4)]
        assert None not in leases
        answered, told, untold, waiting = [lease for lease in leases if lease is not None]
        await queue.complete(answered, now)
        await queue.mark_reply_started(told.job_id, told.attempt, now)
        await queue.mark_reply_sent(told.job_id)
        await queue.fail(told, "answer not delivered within 24 h; the user was told", now, retryable=False)
        await queue.fail(untold, "the platform refused the answer for good: Forbidden", now, retryable=False)
        await queue.defer(waiting, '{"kept": "answer"}', "not delivered: 502", now, 60)
        await queue.close()

    asyncio.run(make_jobs())
    code, stats = run("jobs", "stats")
    assert code == 0
    assert "1 waiting, 0 in progress, 1 answers waiting for their platform" in stats
    assert "1 answered, 1 apologised, 2 dead" in stats
    code, dead = run("jobs", "dead")
    assert "the user was told" in dead
    assert "refused the answer for good: Forbidden" in dead
