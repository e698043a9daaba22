"""Describing photos on Telegram end to end: the real python-telegram-bot client against the fake Bot
API, the `openai` describer against the fake OpenAI-compatible server (127.0.0.1: self-hosted).

A photo's answer starts with the caption; replying to that answer with a question asks the model
about the same photo (the JPEG the fake receives is the one the caption was written from), is
charged like a photo, and is answered in reply to the question; once the retention period is over
the photo is gone and the user is told to send it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram.questions import telegram_photo_key
from bot.delivery import DeliveryPolicy
from bot.describe_wiring import with_describer
from bot.questions import NOT_KEPT
from core.recognizers.base import NullRecognizer
from tests.describe_helpers import assert_no_metadata
from tests.fakes.faults import Fault
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.telegram_helpers import Rig, bot_settings, exif_bytes, jpeg, start_rig, worker_config

pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def rigs() -> AsyncIterator[list[Rig]]:
    started: list[Rig] = []
    yield started
    for rig in started:
        await rig.close()


async def describing_bot(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, model: FakeOpenAI, **overrides: Any
) -> Rig:
    settings = bot_settings(
        tmp_path / "data",
        fake.url,
        describe_backend="openai",
        describe_url=model.url + "/v1",
        describe_model="fake-vision",
        **overrides,
    )
    rig = await start_rig(settings, recognizer=with_describer(NullRecognizer(), settings))
    rigs.append(rig)
    return rig


def replies_to(fake: FakeTelegram, message: dict[str, Any], *methods: str) -> list[Any]:
    methods = methods or ("sendMessage", "sendPhoto", "sendDocument")
    return [c for c in fake.calls_to(*methods, ok=True) if c.reply_to_message_id == message["message_id"]]


async def wait_reply(fake: FakeTelegram, message: dict[str, Any], *methods: str) -> Any:
    await fake.wait_for(lambda: len(replies_to(fake, message, *methods)) >= 1)
    return replies_to(fake, message, *methods)[0]


async def kept(rig: Rig, answer: Any) -> None:
    """Wait until the photo is kept: the replies keep it just after Telegram took the answer."""
    assert rig.service.questions is not None
    message = answer.response["result"]
    key = telegram_photo_key(message["chat"]["id"], message["message_id"])
    for _ in range(200):
        if await rig.service.questions.has_photo(key):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the photo was not kept for questions")


async def test_caption_then_a_question_about_the_same_photo(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, model: FakeOpenAI
) -> None:
    rig = await describing_bot(rigs, tmp_path, fake, model)
    chat = fake.private_chat(fake.user(42))
    photo = fake.send_document(chat, jpeg(exif=exif_bytes(gps=(48.8583, 2.2945))), file_name="p.jpg")
    answer = await wait_reply(fake, photo, "sendPhoto", "sendDocument")
    assert answer.visible_text.startswith("Description: Two people stand in front of a Ferris wheel at dusk.")
    assert "Labels: Ferris wheel, Dusk" in answer.visible_text
    (described,) = model.seen
    assert described.image is not None
    assert_no_metadata(described.image)

    model.answer("A round clock with Roman numerals.")
    await kept(rig, answer)
    question = fake.send_text(chat, "what is on the wall?", reply_to=answer.response["result"])
    said = await wait_reply(fake, question, "sendMessage")
    assert said.visible_text == "A round clock with Roman numerals."
    assert said.params["parse_mode"] == "HTML"
    assert said.text.startswith("<code>")
    asked = model.seen[-1]
    assert asked.image == described.image  # the same prepared photo
    assert "what is on the wall?" in str(asked.body["messages"])
    assert "response_format" not in asked.body
    usage = await rig.service.usage("telegram:42")
    assert usage.used == 2  # the photo and the question


async def test_a_reply_to_someone_else_is_not_a_question(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, model: FakeOpenAI
) -> None:
    await describing_bot(rigs, tmp_path, fake, model)
    chat = fake.private_chat(fake.user(42))
    own = fake.send_text(chat, "my own note")
    fake.send_text(chat, "what is this?", reply_to=own)
    await asyncio.sleep(1.5)
    assert model.seen == []


async def test_a_reply_to_the_bots_text_is_not_a_question(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, model: FakeOpenAI
) -> None:
    await describing_bot(rigs, tmp_path, fake, model)
    chat = fake.private_chat(fake.user(42))
    fake.send_text(chat, "/help")
    await fake.wait_for(lambda: len(fake.sent(chat)) == 1)
    help_answer = fake.sent(chat)[0]
    before = len(fake.sent(chat))
    fake.send_text(chat, "thanks!", reply_to=help_answer.response["result"])
    await asyncio.sleep(2.0)  # long enough for the poll to hand it over and the bot to act on it
    assert not any("no longer have that photo" in call.visible_text for call in fake.sent(chat)[before:])
    assert model.seen == []


async def test_after_retention_the_photo_is_gone(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, model: FakeOpenAI
) -> None:
    rig = await describing_bot(rigs, tmp_path, fake, model, describe_retention_h=1 / 3600)
    chat = fake.private_chat(fake.user(7))
    photo = fake.send_photo(chat, jpeg())
    answer = await wait_reply(fake, photo, "sendPhoto", "sendDocument")
    await kept(rig, answer)
    await asyncio.sleep(1.2)
    question = fake.send_text(chat, "what colour is it?", reply_to=answer.response["result"])
    said = await wait_reply(fake, question, "sendMessage")
    assert said.visible_text == NOT_KEPT.format(period="1 s")
    assert len(model.seen) == 1  # only the caption
    assert (await rig.service.usage("telegram:7")).used == 1


async def test_privacy_says_where_the_caption_comes_from_and_what_is_kept(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, model: FakeOpenAI
) -> None:
    await describing_bot(rigs, tmp_path, fake, model)
    chat = fake.private_chat(fake.user(42))
    fake.send_text(chat, "/privacy")
    await fake.wait_for(lambda: len(fake.sent(chat)) == 1)
    text = fake.sent(chat)[0].visible_text
    assert "not sent to any other service" not in text
    assert "a language model on this bot's own servers (fake-vision)" in text
    assert "For 24 h: that copy of each answered photo" in text
    assert "(except as said under What is kept)" in text
    fake.send_text(chat, "/help")
    await fake.wait_for(lambda: len(fake.sent(chat)) == 2)
    assert "reply to my answer with a question" in fake.sent(chat)[1].visible_text


@pytest.mark.slow  # waits out an 8 s Bot API outage
async def test_an_answer_that_waited_for_telegram_still_takes_questions(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, model: FakeOpenAI
) -> None:
    settings = bot_settings(
        tmp_path / "data",
        fake.url,
        describe_backend="openai",
        describe_url=model.url + "/v1",
        describe_model="fake-vision",
    )
    fast = DeliveryPolicy(backoff_s=0.2, backoff_max_s=1.0, horizon_s=3600)
    rig = await start_rig(
        settings, recognizer=with_describer(NullRecognizer(), settings), worker=worker_config(delivery=fast)
    )
    rigs.append(rig)
    outage = fake.faults.add(Fault("status", "sendPhoto", 500, for_s=8.0))  # past FloodControl's retries
    chat = fake.private_chat(fake.user(5))
    photo = fake.send_photo(chat, jpeg())
    answer = await wait_reply(fake, photo, "sendPhoto", "sendDocument")
    assert outage.hits >= 1  # the answer really waited in the queue for Telegram
    await kept(rig, answer)
    model.answer("Blue.")
    question = fake.send_text(chat, "what colour?", reply_to=answer.response["result"])
    said = await wait_reply(fake, question, "sendMessage")
    assert said.visible_text == "Blue."
