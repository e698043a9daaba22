"""Describing photos on Slack end to end: signed events into the real Bolt app, the real slack-sdk
client against the fake Slack Web API, the `openai` describer against the fake OpenAI server.

The caption heads the answer's comment; a question in the answer's thread (any message in a direct
message, a mention in a channel) asks the model about the same photo and is answered in the thread,
escaped (a hostile answer cannot broadcast); other talk in a channel's thread is left alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.describe_wiring import with_describer
from core.recognizers.base import NullRecognizer
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.integration.slack_harness import (
    ALICE,
    CHANNEL,
    DM,
    SlackHarness,
    eventually,
    file_message,
    jpeg,
    make_settings,
    running_slack,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def slack(fake: FakeSlack, model: FakeOpenAI, tmp_path: Path) -> AsyncIterator[SlackHarness]:
    describe: dict[str, Any] = {
        "describe_backend": "openai",
        "describe_url": model.url + "/v1",
        "describe_model": "fake-vision",
    }
    recognizer = with_describer(NullRecognizer(), make_settings(data_dir=tmp_path, **describe))
    async with running_slack(fake, tmp_path, recognizer=recognizer, **describe) as harness:
        yield harness


def thread_posts(fake: FakeSlack, channel: str, thread: str) -> list[str]:
    return [
        str(c.params.get("text", ""))
        for c in fake.ok_calls("chat.postMessage")
        if c.params.get("channel") == channel and c.params.get("thread_ts") == thread
    ]


async def answered_photo(slack: SlackHarness, fake: FakeSlack, channel: str, mention: bool = False) -> str:
    file = fake.add_file(f"F0{channel}", jpeg())
    ts = fake.next_ts()
    text = f"<@{fake.bot_user_id}>" if mention else ""
    event = file_message(file, channel=channel, ts=ts, text=text)
    if mention:
        event["type"] = "app_mention"
    await slack.send_event(event)
    shared = await eventually(lambda: fake.shared_files, what="the annotated image")
    assert (shared[0].initial_comment or "").startswith(
        "*Description:* Two people stand in front of a Ferris wheel at dusk."
    )
    return ts


async def test_a_question_in_a_direct_messages_thread(
    slack: SlackHarness, fake: FakeSlack, model: FakeOpenAI
) -> None:
    ts = await answered_photo(slack, fake, DM)
    model.answer("A clock. <!channel> *now*")
    question = {
        "type": "message",
        "user": ALICE,
        "text": "what is on the wall?",
        "ts": fake.next_ts(),
        "thread_ts": ts,
        "channel": DM,
        "channel_type": "im",
    }
    await slack.send_event(question)
    posts = await eventually(lambda: thread_posts(fake, DM, ts), what="the answer in the thread")
    assert posts == ["A clock. &lt;!channel&gt; ∗now∗"]
    assert model.seen[-1].image == model.seen[0].image
    usage = await slack.service.usage(f"slack:{fake.team_id}:{ALICE}")
    assert usage.used == 2


async def test_in_a_channel_only_a_mention_in_the_thread_is_a_question(
    slack: SlackHarness, fake: FakeSlack, model: FakeOpenAI
) -> None:
    ts = await answered_photo(slack, fake, CHANNEL, mention=True)
    chatter = {
        "type": "message",
        "user": ALICE,
        "text": "nice photo",
        "ts": fake.next_ts(),
        "thread_ts": ts,
        "channel": CHANNEL,
        "channel_type": "channel",
    }
    await slack.send_event(chatter)
    mention = {
        "type": "app_mention",
        "user": ALICE,
        "text": f"<@{fake.bot_user_id}> how many windows?",
        "ts": fake.next_ts(),
        "thread_ts": ts,
        "channel": CHANNEL,
    }
    model.answer("Four windows.")
    await slack.send_event(mention)
    posts = await eventually(lambda: thread_posts(fake, CHANNEL, ts), what="the answer in the thread")
    assert posts == ["Four windows."]
    assert len(model.seen) == 2  # the caption and the one question, not the chatter
    assert "how many windows?" in str(model.seen[-1].body["messages"])
    assert fake.bot_user_id not in str(model.seen[-1].body["messages"])
