"""The web page's "reply": the worker's answer is stored with the result, where the page reads it.

There is no message to send: `deliver` writes the annotated and prepared JPEGs, the CLI's JSON
document and the page's view into the result store and marks the result done (or failed, with
the friendly text from `bot.presentation`). The uploaded photo is deleted then: it was only
kept for the worker, and the retention period covers what the user sees.

The browser fetches the result whenever it likes: a page that cannot reach us (offline, a proxy
answering 502) simply asks again later, and the result is kept for the retention period. The
one outage that matters here is the result store itself (Redis restarting, SQLite locked): the
write raises a transient `bot.ports.DeliveryFailed` and the worker keeps the answer until the
store is back.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace

import redis.exceptions

from adapters.web.store import WebStore
from adapters.web.view import analysis_document, blocks_json, build_view
from bot.photo_requests import AnalysisReply, JsonScalar, Outcome, ReplyTo
from bot.ports import Accepted, DeliveryFailed
from bot.presentation import PhotoAnswer, present

log = logging.getLogger(__name__)

PLATFORM = "web"


@dataclass(frozen=True)
class WebTarget:
    """Where a web answer goes (the adapter's `bot.photo_requests.ReplyTarget`): one stored result."""

    result_id: str
    account: str

    def to_reply_to(self) -> dict[str, JsonScalar]:
        return {"result_id": self.result_id, "account": self.account}

    @classmethod
    def from_reply_to(cls, data: ReplyTo | Mapping[str, object]) -> WebTarget:
        return cls(result_id=str(data["result_id"]), account=str(data.get("account") or ""))


#: What the result store raises while it cannot be reached or written: worth another try.
STORE_OUTAGES = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlite3.OperationalError,
    OSError,
)


class WebReplies:
    """`bot.ports.ReplyPort` for the web page: store the outcome with its result."""

    #: The page draws its boxes on the prepared image, so an answer kept for later keeps it too.
    USES_PREPARED_IMAGE = True

    def __init__(self, store: WebStore) -> None:
        self.store = store

    async def deliver(self, outcome: Outcome, accepted: Accepted) -> None:
        """Store the answer; a result deleted meanwhile is not brought back (nothing to tell)."""
        try:
            await self._store(outcome, accepted)
        except STORE_OUTAGES as error:
            raise DeliveryFailed(f"result store: {type(error).__name__}", permanent=False) from error

    async def _store(self, outcome: Outcome, accepted: Accepted) -> None:
        target = WebTarget.from_reply_to(outcome.request.reply_to)
        result = await self.store.result(target.result_id)
        if result is None:
            log.info("result %s was deleted before its analysis finished", target.result_id)
            return
        reply = present(outcome)
        if isinstance(reply, PhotoAnswer):
            assert isinstance(outcome, AnalysisReply)
            document = analysis_document(outcome, result.name)
            view = {**build_view(outcome, reply), "blocks": blocks_json(reply.blocks)}
            await self.store.put_blob(result.id, "annotated", reply.image.jpeg)
            if outcome.prepared is not None:
                await self.store.put_blob(result.id, "prepared", outcome.prepared.jpeg)
            done = replace(
                result,
                status="done",
                analysis=json.dumps(document, ensure_ascii=False) if document is not None else None,
                view=json.dumps(view, ensure_ascii=False),
            )
        else:
            done = replace(result, status="failed", error_code=reply.reason, error_message=reply.text)
        await self.store.update(done)
        await accepted()
        await self.store.delete_blob(result.id, "upload")
