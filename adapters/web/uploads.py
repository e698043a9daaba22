"""POST /upload: who, from where and how big is checked before the body is read, then each photo is queued.

The size is refused from `Content-Length` before the body is read, and again while streaming
each photo (a client may lie or not say). Per-IP daily limits and the caps on parallel uploads
per IP and per account come first; the quota (the same store as the chat platforms, as
`web:<account>`) is charged by `service.submit` for each photo. The body is read under
`adapters.web.upload_body`'s time limits, so a stalled upload gives its slots back. A photo
the quota can take only later (the user's earlier photos still being analysed) is accepted and
waits its turn (`adapters.web.waiting`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from adapters.web.config import WebSettings
from adapters.web.errors import WebError, redirect, wants_json
from adapters.web.pages import ResultPages
from adapters.web.replies import PLATFORM, WebTarget
from adapters.web.security import client_ip
from adapters.web.sessions import Sessions, Visitor
from adapters.web.store import WebResult, WebStore, new_result_id
from adapters.web.upload_body import BodyClock, Upload, read_photos
from adapters.web.waiting import WaitingPhotos, refused_for_now
from bot.notices import TOO_LARGE, describe_reset, megabytes, photos, too_large_message
from bot.photo_requests import FileRef, PhotoRequest
from bot.service import Accepted, PhotoService, Refused
from core.analysis_types import Feature

#: Multipart framing and the small fields around the photos, on top of the photos' own bytes.
FORM_OVERHEAD = 64 * 1024
REFUSAL_STATUS = {TOO_LARGE: 413, "not_allowed": 403, "blocked": 403, "unavailable": 503}


@dataclass(frozen=True)
class Queued:
    """A photo of the upload taken in: submitted, or `waiting` for the user's earlier photos."""

    result_id: str
    waiting: bool


class Uploads:
    """The upload handler and the per-IP and per-account limits around it."""

    def __init__(
        self,
        web_settings: WebSettings,
        service: PhotoService,
        store: WebStore,
        sessions: Sessions,
        pages: ResultPages,
        waiting: WaitingPhotos,
        clock: Callable[[], float],
    ) -> None:
        self.web = web_settings
        self.service = service
        self.store = store
        self.sessions = sessions
        self.pages = pages
        self.waiting = waiting
        self.clock = clock

    @property
    def slot_lease_s(self) -> float:
        """A slot outlives the longest upload allowed, so only a crashed process leaves one behind."""
        return self.web.upload_timeout_s + 60.0

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """Receive photos: check who, where from and how big before reading, then queue each one."""
        visitor = await self.sessions.required(request)
        self.sessions.check_origin(request)
        limit = self.service.max_bytes
        cap = limit * self.web.max_files + FORM_OVERHEAD
        if request.content_length is not None and request.content_length > cap:
            raise WebError(413, TOO_LARGE, self._too_large(request.content_length))
        ip = client_ip(request.remote, request.headers.get("X-Forwarded-For"), self.web.trusted_proxies)
        await self._check_ip_day(ip)
        slot = secrets.token_hex(8)
        slots = [
            (f"ip:{ip}", self.web.ip_concurrent_uploads),
            (f"account:{visitor.account}", self.web.account_concurrent_uploads),
        ]
        taken: list[str] = []
        try:
            for key, most in slots:
                if not await self.store.acquire_slot(key, slot, most, self.clock(), self.slot_lease_s):
                    raise WebError(
                        429,
                        "concurrent_uploads",
                        f"Already {photos(most).replace('photo', 'upload')} in progress from here; "
                        "wait until they finish, then try again.",
                        retry_after=5,
                    )
                taken.append(key)
            return await self._receive(request, visitor, ip)
        finally:
            for key in taken:
                await self.store.release_slot(key, slot)

    def _too_large(self, size: int) -> str:
        limit = self.service.max_bytes
        if self.web.max_files > 1:
            return (
                f"That upload is {megabytes(size)} MB; the limit is {megabytes(limit)} MB per photo "
                f"and {self.web.max_files} photos at once."
            )
        return too_large_message(size, limit)

    async def _check_ip_day(self, ip: str) -> None:
        day, resets = self._day()
        if self.web.ip_daily_limit and await self.store.count(f"ip:{ip}", day) >= self.web.ip_daily_limit:
            now = datetime.fromtimestamp(self.clock(), self.service.policy.zone)
            raise WebError(
                429,
                "ip_daily_limit",
                f"{photos(self.web.ip_daily_limit)} were uploaded from your address today, the most "
                f"allowed. The limit resets {describe_reset(resets, now)}.",
                retry_after=max(int((resets - now).total_seconds()), 1),
            )

    def _day(self) -> tuple[str, datetime]:
        """Today's date in the quota's zone (the per-IP day ends at the same midnight) and that midnight."""
        zone = self.service.policy.zone
        now = datetime.fromtimestamp(self.clock(), zone)
        midnight = datetime(now.year, now.month, now.day, tzinfo=zone) + timedelta(days=1)
        return now.date().isoformat(), midnight

    async def _receive(self, request: web.Request, visitor: Visitor, ip: str) -> web.StreamResponse:
        """Store and queue each photo as it arrives; a refusal after some were accepted is listed."""
        account = visitor.account
        features = await self.service.features_for(f"{PLATFORM}:{account}")
        day, _ = self._day()
        accepted: list[dict[str, str]] = []
        refused: list[dict[str, Any]] = []
        first_error: WebError | None = None
        waiting = False  # once one photo waits, the rest of the upload waits behind it, in order
        photos_in = read_photos(
            request,
            BodyClock(request, self.web.upload_stall_s, self.web.upload_timeout_s),
            await self.sessions.signer(),
            visitor.session,
            limit=self.service.max_bytes,
            max_files=self.web.max_files,
        )
        while True:
            try:
                upload = await anext(photos_in)
            except StopAsyncIteration:
                break
            except WebError as error:
                if not accepted:
                    raise
                # The rest of the body is not read (it may be huge): what came before stands.
                refused.append({"name": "", "code": error.code, "message": error.message})
                break
            outcome = await self._queue_one(upload, account, features, ip, day, waiting=waiting)
            if isinstance(outcome, WebError):
                first_error = first_error or outcome
                refused.append({"name": upload.name, "code": outcome.code, "message": outcome.message})
            else:
                accepted.append({"id": outcome.result_id, "url": f"/results/{outcome.result_id}"})
                waiting = waiting or outcome.waiting
        if not accepted:
            assert first_error is not None
            raise first_error
        if wants_json(request):
            return web.json_response({"results": accepted, "refused": refused}, status=202)
        if refused:
            return await self.pages.results_list(visitor, refused)
        return redirect(accepted[0]["url"] if len(accepted) == 1 else "/results")

    async def _queue_one(
        self,
        upload: Upload,
        account: str,
        features: frozenset[Feature],
        ip: str,
        day: str,
        *,
        waiting: bool,
    ) -> Queued | WebError:
        """Store one photo and submit it (or, behind a waiting one, let it wait); else the refusal."""
        try:
            await self._check_ip_day(ip)
        except WebError as error:
            return error
        result_id = new_result_id()
        await self.store.add_result(WebResult(result_id, account, self.clock(), upload.name))
        await self.store.put_blob(result_id, "upload", upload.data)
        request = PhotoRequest(
            platform=PLATFORM,
            user_id=account,
            chat_id=account,
            message_id=result_id,
            file=FileRef(file_id=result_id, size=len(upload.data), name=upload.name, mime_type=upload.mime),
            features=features,
            reply_to=WebTarget(result_id, account).to_reply_to(),
            # Only the account sees its results: the page is a one-to-one conversation, so
            # PHOTODETECTIVE_LOCATION_IN_PRIVATE decides whether GPS is shown.
            private=True,
        )
        try:
            verdict = None if waiting else await self.service.submit(request)
        except BaseException:
            await self.store.delete_result(result_id)
            raise
        if verdict is None or (isinstance(verdict, Refused) and refused_for_now(verdict)):
            # One upload is one request: a photo past the concurrency or burst limit waits its turn.
            await self.waiting.hold(result_id, request)
            await self.store.add_count(f"ip:{ip}", day, 1)
            return Queued(result_id, waiting=True)
        if isinstance(verdict, Accepted):
            await self.store.add_count(f"ip:{ip}", day, 1)
            return Queued(result_id, waiting=False)
        await self.store.delete_result(result_id)
        return WebError(
            REFUSAL_STATUS.get(verdict.reason, 429),
            verdict.reason,
            verdict.message,
            retry_after=verdict.retry_after or self._retry_after(verdict.reason),
        )

    def _retry_after(self, reason: str) -> int | None:
        """Seconds until a daily limit lifts (the quota's midnight), for the API's `retry_after`."""
        if reason in ("daily_limit", "global_cap"):
            _, midnight = self._day()
            return max(int(midnight.timestamp() - self.clock()), 1)
        return None
