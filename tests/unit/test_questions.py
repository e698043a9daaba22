"""Questions about an answered photo: the same photo is asked about, each question is charged like a
photo (daily quota, cost cap) with its own hourly rate, failures are refunded, and the photo is
deleted after the retention period. Real SQLite stores; the describer is a double (the wire is
tested in tests/integration/test_describe_backends.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.access import AccessPolicy
from bot.kept_photos import RedisKeptPhotos, SQLiteKeptPhotos
from bot.questions import EMPTY_QUESTION, NOT_KEPT, Question, QuestionService, photo_key
from bot.quota import SQLiteQuotaStore
from bot.quota.models import QuotaPolicy
from core.analysis_types import ErrorKind
from core.describe.errors import DescribeFailed
from tests.conftest import RedisServer
from tests.describe_helpers import ScriptedDescriber, prepared_photo

DAY = 86400.0
START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PHOTO = photo_key("slack", "T1", "C1", "1700000000.000100")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def service(
    tmp_path: Path,
    describer: ScriptedDescriber,
    *,
    per_hour: int = 10,
    daily: int = 20,
    clock: Clock | None = None,
) -> QuestionService:
    return QuestionService(
        describer=describer,
        kept=SQLiteKeptPhotos(tmp_path / "kept.sqlite3"),
        quota=SQLiteQuotaStore(tmp_path / "quota.sqlite3"),
        policy=QuotaPolicy(daily_limit=daily, burst_limit=100, global_daily_calls=1000),
        access=AccessPolicy(),
        questions_per_hour=per_hour,
        retention_s=DAY,
        timeout_s=5,
        clock=clock or Clock(),
    )


def question(n: int = 1, text: str = "what is on the wall?") -> Question:
    return Question("slack", "U1", "C1", f"1700000100.{n:06d}", PHOTO, text, workspace_id="T1")


async def used(questions: QuestionService) -> tuple[int, int]:
    """The user's photos today and the global billed units."""
    usage = await questions.quota.usage("slack:T1:U1", questions.clock(), questions.policy)
    stats = await questions.quota.stats(questions.clock(), questions.policy)
    return usage.used, stats.global_calls


async def test_a_question_reaches_the_same_photo_and_is_charged(tmp_path: Path) -> None:
    describer = ScriptedDescriber(hosted=True)
    questions = service(tmp_path, describer)
    jpeg = prepared_photo().jpeg
    await questions.keep(PHOTO, jpeg)
    reply = await questions.ask(question())
    assert reply.answered
    assert reply.charged
    assert reply.text == "About what is on the wall?"
    (asked_photo, asked_text) = describer.asked[0]
    assert asked_photo.jpeg == jpeg
    assert asked_text == "what is on the wall?"
    assert await used(questions) == (1, 1)


async def test_a_self_hosted_describer_bills_no_unit(tmp_path: Path) -> None:
    questions = service(tmp_path, ScriptedDescriber(hosted=False))
    await questions.keep(PHOTO, prepared_photo().jpeg)
    await questions.ask(question())
    assert await used(questions) == (1, 0)


async def test_a_redelivered_question_is_charged_once(tmp_path: Path) -> None:
    questions = service(tmp_path, ScriptedDescriber())
    await questions.keep(PHOTO, prepared_photo().jpeg)
    await questions.ask(question(1))
    await questions.ask(question(1))
    assert await used(questions) == (1, 1)


async def test_the_photo_is_deleted_after_retention(tmp_path: Path) -> None:
    clock = Clock()
    describer = ScriptedDescriber()
    questions = service(tmp_path, describer, clock=clock)
    await questions.keep(PHOTO, prepared_photo().jpeg)
    clock.now = START + timedelta(seconds=DAY - 1)
    assert (await questions.ask(question(1))).answered
    clock.now = START + timedelta(seconds=DAY + 1)
    reply = await questions.ask(question(2))
    assert reply.text == NOT_KEPT.format(period="24 h")
    assert not reply.charged
    assert await questions.kept.purge(clock.now.timestamp()) == 0  # the question deleted the bytes already
    assert await questions.kept.get(PHOTO, START.timestamp()) is None
    assert len(describer.asked) == 1


async def test_the_hourly_question_rate(tmp_path: Path) -> None:
    clock = Clock()
    questions = service(tmp_path, ScriptedDescriber(), per_hour=2, clock=clock)
    await questions.keep(PHOTO, prepared_photo().jpeg)
    assert (await questions.ask(question(1))).answered
    assert (await questions.ask(question(2))).answered
    refused = await questions.ask(question(3))
    assert not refused.answered
    assert refused.text.startswith("You can ask at most 2 questions per hour.")
    assert await used(questions) == (2, 2)
    clock.now = START + timedelta(hours=1, seconds=1)
    assert (await questions.ask(question(4))).answered


async def test_the_daily_quota_counts_questions(tmp_path: Path) -> None:
    questions = service(tmp_path, ScriptedDescriber(), daily=1)
    await questions.keep(PHOTO, prepared_photo().jpeg)
    assert (await questions.ask(question(1))).answered
    refused = await questions.ask(question(2))
    assert not refused.answered
    assert "You have used all" in refused.text
    assert await used(questions) == (1, 1)


async def test_a_failed_question_is_refunded_unless_billed(tmp_path: Path) -> None:
    busy = DescribeFailed(ErrorKind.THROTTLED, "The describer is busy (429); try again later.")
    questions = service(tmp_path, ScriptedDescriber(failure=busy))
    await questions.keep(PHOTO, prepared_photo().jpeg)
    reply = await questions.ask(question(1))
    assert not reply.answered
    assert not reply.charged
    assert "You were not charged" in reply.text
    assert await used(questions) == (0, 0)
    questions.describer = ScriptedDescriber(failure=DescribeFailed(ErrorKind.ERROR, "Empty.", billed=True))
    billed = await questions.ask(question(2))
    assert billed.charged
    assert await used(questions) == (1, 1)


async def test_an_empty_question_is_answered_kindly(tmp_path: Path) -> None:
    describer = ScriptedDescriber()
    questions = service(tmp_path, describer)
    await questions.keep(PHOTO, prepared_photo().jpeg)
    reply = await questions.ask(question(text=" \u200b\n "))
    assert reply.text == EMPTY_QUESTION
    assert describer.asked == []


async def test_a_blocked_chat_cannot_ask(tmp_path: Path) -> None:
    questions = service(tmp_path, ScriptedDescriber())
    questions.access = AccessPolicy(blocked=frozenset({"slack:T1"}))
    await questions.keep(PHOTO, prepared_photo().jpeg)
    assert not (await questions.ask(question())).answered
    assert await used(questions) == (0, 0)


async def test_redis_keeps_photos_until_their_expiry(redis_server: RedisServer) -> None:
    kept = RedisKeptPhotos(redis_server.url)
    try:
        await kept.keep(PHOTO, b"\xff\xd8jpeg", START.timestamp(), 60)
        assert await kept.get(PHOTO, START.timestamp() + 59) == b"\xff\xd8jpeg"
        assert await kept.get(PHOTO, START.timestamp() + 61) is None
        assert await kept.get("other", START.timestamp()) is None
    finally:
        await kept.close()
