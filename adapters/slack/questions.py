"""Questions about an answered photo in Slack: asked in the thread where the bot answered.

The replies keep the prepared photo under the answer's thread (`keep_photo`). In that thread a
message that mentions the bot (in a channel) or any message (in a direct message with the bot) is
a question about the photo; the answer is posted in the thread, escaped like every other text we
post (no mention, link or broadcast can form from the model's words). A mention in a thread whose
photo is not kept goes on to the usual "analyse the thread's image".

Asking the model takes seconds, longer than Slack waits for an event's acknowledgement, so the
question is answered after the ack (a lost question is simply asked again).
"""

from __future__ import annotations

import logging
import re

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import escape
from bot.questions import Question, QuestionService, photo_key

log = logging.getLogger(__name__)

PLATFORM = "slack"
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def slack_photo_key(team: str, channel: str, thread_ts: str) -> str:
    """The key a photo is kept under: the workspace, the channel and the thread of its answer."""
    return photo_key(PLATFORM, team, channel, thread_ts)


async def keep_photo(
    questions: QuestionService | None, jpeg: bytes | None, team: str, channel: str, thread_ts: str | None
) -> None:
    """Keep the prepared photo for questions in its thread; a failure only costs questions."""
    if questions is None or jpeg is None or not thread_ts:
        return
    try:
        await questions.keep(slack_photo_key(team, channel, thread_ts), jpeg)
    except Exception as error:  # the answer is out; a store hiccup must not turn it into a failure
        log.warning("photo not kept for questions in %s: %s", channel, type(error).__name__)


class SlackQuestions:
    """Tells questions from other messages in a thread, and answers them there."""

    def __init__(self, questions: QuestionService, client: AsyncWebClient) -> None:
        self.questions = questions
        self.client = client

    async def about_a_kept_photo(self, team: str, channel: str, thread_ts: str) -> bool:
        return await self.questions.has_photo(slack_photo_key(team, channel, thread_ts))

    async def answer(self, team: str, user: str, channel: str, thread_ts: str, ts: str, text: str) -> None:
        """Ask the service and post its answer (or why not) in the thread."""
        question = Question(
            platform=PLATFORM,
            user_id=user,
            chat_id=channel,
            message_id=ts,
            photo=slack_photo_key(team, channel, thread_ts),
            text=_MENTION.sub(" ", text),
            workspace_id=team,
        )
        reply = await self.questions.ask(question)
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=escape(reply.text))
        except SlackApiError as error:
            log.warning("answer to a question not posted in %s: %s", channel, error.response.get("error"))
