"""Photos of one upload that the quota cannot take yet wait their turn instead of being refused.

A chat user sends one photo per message and can be told "you already have 2 photos being
analysed". A page's upload of up to PHOTODETECTIVE_WEB_MAX_FILES photos is one request, and
telling its third photo to be sent again would break the page's promise. So a photo refused only
for the moment (the per-user concurrency, the burst rate, a store briefly unreachable) is stored
as waiting: its result shows "queued", and the adapter's release loop submits it once the user's
earlier photos are done. A refusal that will not pass (the day's quota, a block) ends it with
that refusal's words on its result page; nothing is charged for it.

Waiting photos live in the result store, so a restart or another replica picks them up. Two
replicas may submit the same photo at once: the charge and the job are keyed by the photo's
result id, so the second submission finds the first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace

from adapters.web.store import WebStore
from bot.photo_requests import PhotoRequest
from bot.quota.models import Refusal
from bot.service import UNAVAILABLE, Accepted, PhotoService, Refused

log = logging.getLogger(__name__)

#: Refusals that pass with time: the photo waits instead of failing.
FOR_NOW = frozenset({str(Refusal.CONCURRENCY).lower(), str(Refusal.RATE).lower(), UNAVAILABLE})
#: Waiting photos looked at per round, oldest first.
BATCH = 100


def refused_for_now(verdict: Refused) -> bool:
    return verdict.reason in FOR_NOW


class WaitingPhotos:
    """Keeps photos the quota cannot take yet, and submits them when it can."""

    def __init__(self, service: PhotoService, store: WebStore, clock: Callable[[], float]) -> None:
        self.service = service
        self.store = store
        self.clock = clock

    async def hold(self, result_id: str, request: PhotoRequest) -> None:
        await self.store.add_waiting(result_id, json.dumps(request.to_json()), self.clock())

    async def release(self) -> int:
        """One round: submit what may go now, oldest first, one user's photos in upload order.

        A user with every concurrency slot taken is skipped without a submission (that would
        count a refusal in the metrics each round); the first photo of a user that must still
        wait ends that user's round, so their photos keep their order.
        """
        released = 0
        held_back: set[str] = set()
        for result_id, raw in await self.store.waiting(BATCH):
            request = PhotoRequest.from_json(json.loads(raw))
            user = request.user_key
            if user in held_back:
                continue
            usage = await self.service.usage(user)
            if usage.active_jobs >= self.service.policy.max_concurrent:
                held_back.add(user)
                continue
            verdict = await self.service.submit(request)
            if isinstance(verdict, Accepted):
                await self.store.end_waiting(result_id)
                released += 1
            elif refused_for_now(verdict):
                held_back.add(user)
            else:
                await self._refused(result_id, verdict)
        return released

    async def _refused(self, result_id: str, verdict: Refused) -> None:
        """The photo will not get in (the day's quota is spent): its page says why."""
        result = await self.store.result(result_id)
        if result is not None:
            await self.store.update(
                replace(result, status="failed", error_code=verdict.reason, error_message=verdict.message)
            )
        await self.store.delete_blob(result_id, "upload")
        await self.store.end_waiting(result_id)
        log.info("a waiting web photo was refused: %s", verdict.reason)
