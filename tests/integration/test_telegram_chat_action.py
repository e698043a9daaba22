"""The "sending photo..." chat action against the fake Bot API: repeated while a photo waits, and not
sent again and again into a Bot API that is failing (it is decoration; the answer is what matters)."""

from __future__ import annotations

import asyncio

from telegram import Bot

from adapters.telegram.feedback import ChatActivity, Target
from tests.fakes.telegram_api import FakeTelegram


async def show_for(fake: FakeTelegram, seconds: float) -> None:
    bot = Bot(fake.token, base_url=fake.base_url)

    async def provider() -> Bot:
        return bot

    async def never_answered(job_id: str) -> bool:
        return False

    chat = fake.private_chat(fake.user(42))
    async with bot:
        activity = ChatActivity(provider, never_answered, interval_s=0.05, max_s=seconds)
        activity.begin(Target(chat_id=chat["id"], message_id=1), "telegram:42:1", "job-1")
        await asyncio.sleep(seconds + 0.3)
        await activity.stop()


async def test_the_action_is_repeated_while_the_photo_waits() -> None:
    async with FakeTelegram() as fake:
        await show_for(fake, 0.6)
        assert len(fake.calls_to("sendChatAction", ok=True)) >= 4


async def test_a_failing_bot_api_gets_one_chat_action_not_one_every_few_seconds() -> None:
    async with FakeTelegram() as fake:
        fake.server_error("sendChatAction", 502, times=None)
        await show_for(fake, 0.6)
        assert len(fake.calls_to("sendChatAction")) == 1
