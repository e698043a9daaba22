"""The web page's HTTP handlers: upload, results, downloads, sign-in, all on the shared server.

Every response carries the security headers (`adapters.web.security.SECURITY_HEADERS`); every
POST needs a session, a CSRF token and our own origin; every result is looked up for the signed-in
account only (another account's id answers 404, like an unknown one). Pages are Jinja2 templates
with autoescaping on, so every string from a photo (EXIF, OCR text, labels, file names) is
escaped by the engine, never by hand.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import BodyPartReader, web
from redis.exceptions import RedisError

from adapters.web.config import WebSettings
from adapters.web.replies import PLATFORM, WebTarget
from adapters.web.security import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    Session,
    Signer,
    client_ip,
    peer_trusted,
    same_origin,
)
from adapters.web.store import WebResult, WebStore, new_result_id
from bot.notices import TOO_LARGE, describe_reset, megabytes, photos, too_large_message
from bot.photo_requests import FileRef, PhotoRequest
from bot.service import TRY_AGAIN_SHORTLY, Accepted, PhotoService
from core.analysis_types import Feature
from core.untrusted_text import clean_text

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
ID_PATTERN = "[A-Za-z0-9_-]{16,64}"
#: Multipart framing and the small fields around the photos, on top of the photos' own bytes.
FORM_OVERHEAD = 64 * 1024
UPLOAD_SLOT_LEASE_S = 600.0
REFRESH_S = 3
STATUS_WORDS = {
    "queued": "Queued: waiting for a worker.",
    "analysing": "Analysing the photo…",
    "done": "Done.",
    "failed": "The photo could not be analysed.",
}
SHORT_STATUS = {"queued": "queued", "analysing": "analysing", "done": "done", "failed": "failed"}
LAYERS = (("face", "Faces"), ("object", "Objects"), ("text", "Text"))
REFUSAL_STATUS = {TOO_LARGE: 413, "not_allowed": 403, "blocked": 403, "unavailable": 503}

#: The result store could not be reached (SQLite locked or gone, Redis down): answered 503.
STORE_ERRORS = (sqlite3.Error, RedisError, OSError)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebError(Exception):
    """A refusal the page shows in words (and the API as `{"error": {"code", "message"}}`)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Upload:
    """One photo of an upload form: its (cleaned) file name, declared type and bytes."""

    name: str
    mime: str | None
    data: bytes


@dataclass(frozen=True)
class Visitor:
    """Who is asking: the session (account and CSRF basis) and a cookie to set, if a new one was made."""

    session: Session
    new_cookie: str | None = None

    @property
    def account(self) -> str:
        return self.session.account


def templates() -> jinja2.Environment:
    """The page templates, autoescaped (every `{{ }}` is HTML-escaped) and strict about undefined names."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )


class WebPages:
    """The handlers; `routes()` lists them for the shared aiohttp application."""

    def __init__(
        self,
        web_settings: WebSettings,
        service: PhotoService,
        store: WebStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.web = web_settings
        self.service = service
        self.store = store
        self.clock = clock
        self.env = templates()
        self._signer: Signer | None = None

    # -- plumbing --------------------------------------------------------------------------

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        g = self._guarded
        return [
            web.get("/", g(self.upload_page)),
            web.post("/upload", g(self.upload)),
            web.get("/results", g(self.results_page)),
            web.get(f"/results/{{id:{ID_PATTERN}}}.json", g(self.status_json)),
            web.get(f"/results/{{id:{ID_PATTERN}}}", g(self.result_page)),
            web.get(f"/results/{{id:{ID_PATTERN}}}/annotated.jpg", g(self.annotated)),
            web.get(f"/results/{{id:{ID_PATTERN}}}/prepared.jpg", g(self.prepared)),
            web.get(f"/results/{{id:{ID_PATTERN}}}/analysis.json", g(self.analysis_download)),
            web.post(f"/results/{{id:{ID_PATTERN}}}/delete", g(self.delete)),
            web.get("/signin/{token}", g(self.signin)),
            web.post("/signout", g(self.signout)),
            web.get("/static/{name}", g(self.static)),
            # Anything else under our prefixes is our 404, with our headers.
            web.get("/results/{rest:.*}", g(self.not_found)),
            web.get("/static/{rest:.*}", g(self.not_found)),
        ]

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        raise WebError(404, "not_found", "There is no such page.")

    def _guarded(self, handler: Handler) -> Handler:
        """Security headers on every answer, and a `WebError` turned into its page or JSON."""

        async def run(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except WebError as error:
                response = await self._error(request, error)
            except STORE_ERRORS as error:
                log.warning("web store unavailable: %s: %s", type(error).__name__, error)
                response = await self._error(request, WebError(503, "unavailable", TRY_AGAIN_SHORTLY, 5))
            except web.HTTPException as error:
                if error.status >= 400:
                    response = await self._error(request, WebError(error.status, "http", error.reason))
                else:
                    for name, value in SECURITY_HEADERS.items():
                        error.headers.setdefault(name, value)
                    raise
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return run

    async def signer(self) -> Signer:
        if self._signer is None:
            secret = (
                self.web.session_secret.get_secret_value().encode()
                if self.web.session_secret is not None
                else await self.store.session_secret()
            )
            self._signer = Signer(secret)
        return self._signer

    def _render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        context.setdefault("refresh", None)
        context.setdefault("account", None)
        context.setdefault("csrf_token", "")
        context.setdefault("can_sign_out", self.web.access != "proxy")
        html = self.env.get_template(name).render(**context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    async def _error(self, request: web.Request, error: WebError) -> web.Response:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
        if wants_json(request):
            body: dict[str, Any] = {"code": error.code, "message": error.message}
            if error.retry_after is not None:
                body["retry_after"] = error.retry_after
            return web.json_response({"error": body}, status=error.status, headers=headers)
        heading = {404: "Not found", 413: "Too large", 429: "Please wait"}.get(error.status, "Sorry")
        response = self._render(
            "message.html",
            status=error.status,
            title=heading,
            heading=heading,
            message=error.message,
            code=error.code,
            link="/",
            link_text="Back to the upload page",
        )
        response.headers.update(headers)
        return response

    # -- who is asking ---------------------------------------------------------------------

    async def visitor(self, request: web.Request, *, create: bool = False) -> Visitor | None:
        """The signed-in visitor, per the access mode; `create` makes an anonymous one in open mode."""
        signer = await self.signer()
        now = self.clock()
        if self.web.access == "proxy":
            name = request.headers.get(self.web.proxy_user_header)
            if not name or not peer_trusted(request.remote, self.web.trusted_proxies):
                return None
            account = clean_text(name, 100)
            if not account:
                return None
            # No cookie: the proxy vouches for every request; the CSRF basis is the account itself.
            return Visitor(Session(f"proxy:{account}", math.inf, f"proxy:{account}"))
        session = signer.session(request.cookies.get(SESSION_COOKIE), now)
        if session is not None:
            if self.web.access == "open" and session.account.startswith("guest-"):
                return Visitor(session)
            if await self.store.has_account(session.account):
                return Visitor(session)
        if self.web.access == "open" and create:
            cookie, session = signer.cookie(
                f"guest-{secrets.token_hex(6)}", now + self.web.session_days * 86400
            )
            return Visitor(session, cookie)
        return None

    def _set_cookie(self, response: web.StreamResponse, cookie: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(self.web.session_days * 86400),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self.web.secure_cookies,
        )

    async def _required(self, request: web.Request) -> Visitor:
        visitor = await self.visitor(request)
        if visitor is None:
            raise WebError(401, "signin_required", self._signin_text())
        return visitor

    def _signin_text(self) -> str:
        if self.web.access == "proxy":
            return "Your sign-in did not reach this page; sign in through the site's front door."
        return (
            "Please sign in first, with the sign-in link the operator gave you "
            "(`photodetective web user add NAME` prints one)."
        )

    async def _check_post(self, request: web.Request, visitor: Visitor, token: str | None) -> None:
        """Our own origin and a valid CSRF token, or a 403."""
        self._check_origin(request)
        if not (await self.signer()).csrf_ok(visitor.session, token):
            raise WebError(403, "csrf", "This form has expired; reload the page and try again.")

    def _check_origin(self, request: web.Request) -> None:
        expected = self.web.public_url or f"{request.scheme}://{request.host}"
        if not same_origin(expected, request.headers.get("Origin"), request.headers.get("Referer")):
            raise WebError(403, "bad_origin", "This request did not come from this site's own page.")

    async def _own_result(self, request: web.Request) -> tuple[Visitor, WebResult]:
        visitor = await self._required(request)
        result = await self.store.result(request.match_info["id"])
        if result is None or result.account != visitor.account:
            raise WebError(404, "not_found", "There is no such result (it may have been deleted).")
        return visitor, result

    def _client_ip(self, request: web.Request) -> str:
        return client_ip(request.remote, request.headers.get("X-Forwarded-For"), self.web.trusted_proxies)

    # -- pages -----------------------------------------------------------------------------

    async def upload_page(self, request: web.Request) -> web.StreamResponse:
        visitor = await self.visitor(request, create=True)
        if visitor is None:
            raise WebError(401, "signin_required", self._signin_text())
        limit = self.service.max_bytes
        days = self.web.retention_days
        response = self._render(
            "upload.html",
            title="Analyse a photo",
            account=visitor.account,
            csrf_token=(await self.signer()).csrf_token(visitor.session),
            max_bytes=limit,
            max_mb=megabytes(limit),
            max_files=self.web.max_files,
            backend=self.service.backend,
            retention=f"{days:g} day{'s' if days != 1 else ''}",
        )
        if visitor.new_cookie:
            self._set_cookie(response, visitor.new_cookie)
        return response

    async def results_page(self, request: web.Request) -> web.StreamResponse:
        visitor = await self._required(request)
        return await self._results_list(visitor, [])

    async def _results_list(self, visitor: Visitor, refused: list[dict[str, str]]) -> web.Response:
        results = await self.store.results_of(visitor.account)
        zone = self.service.policy.zone
        rows = [
            {
                "id": r.id,
                "name": r.name,
                "status": r.status,
                "created_iso": datetime.fromtimestamp(r.created_at, zone).isoformat(),
                "created_text": f"{datetime.fromtimestamp(r.created_at, zone):%Y-%m-%d %H:%M %Z}",
            }
            for r in results
        ]
        pending = any(r.status in ("queued", "analysing") for r in results)
        return self._render(
            "results.html",
            title="Your results",
            account=visitor.account,
            csrf_token=(await self.signer()).csrf_token(visitor.session),
            results=rows,
            refused=refused,
            status_words=SHORT_STATUS,
            refresh=REFRESH_S if pending else None,
        )

    async def result_page(self, request: web.Request) -> web.StreamResponse:
        visitor, result = await self._own_result(request)
        view = json.loads(result.view) if result.view else None
        kinds = {box["kind"] for box in view["boxes"]} if view else set()
        pending = result.status in ("queued", "analysing")
        return self._render(
            "result.html",
            title=result.name,
            account=visitor.account,
            csrf_token=(await self.signer()).csrf_token(visitor.session),
            result=result,
            view=view,
            status_text=STATUS_WORDS[result.status],
            refresh=REFRESH_S if pending else None,
            layer_kinds=LAYERS,
            box_kinds=kinds,
            has_analysis=result.analysis is not None,
            download_stem=Path(result.name).stem or "photo",
        )

    async def status_json(self, request: web.Request) -> web.StreamResponse:
        _, result = await self._own_result(request)
        error = (
            {"code": result.error_code, "message": result.error_message}
            if result.status == "failed"
            else None
        )
        analysis = json.loads(result.analysis) if result.status == "done" and result.analysis else None
        return web.json_response(
            {"id": result.id, "status": result.status, "analysis": analysis, "error": error}
        )

    async def _image(self, request: web.Request, kind: str) -> web.StreamResponse:
        _, result = await self._own_result(request)
        data = await self.store.blob(result.id, "annotated" if kind == "annotated" else "prepared")
        if data is None:
            raise WebError(404, "not_found", "That image is not there (yet).")
        return web.Response(body=data, content_type="image/jpeg")

    async def annotated(self, request: web.Request) -> web.StreamResponse:
        return await self._image(request, "annotated")

    async def prepared(self, request: web.Request) -> web.StreamResponse:
        return await self._image(request, "prepared")

    async def analysis_download(self, request: web.Request) -> web.StreamResponse:
        _, result = await self._own_result(request)
        if result.analysis is None:
            raise WebError(404, "not_found", "This result has no analysis (yet).")
        stem = "".join(c for c in Path(result.name).stem if c.isalnum() or c in "-_") or "photo"
        return web.Response(
            text=result.analysis,
            content_type="application/json",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.json"'},
        )

    async def delete(self, request: web.Request) -> web.StreamResponse:
        visitor, result = await self._own_result(request)
        form = await request.post()
        token = request.headers.get("X-CSRF-Token") or _field(form.get("csrf_token"))
        await self._check_post(request, visitor, token)
        await self.store.delete_result(result.id)
        if wants_json(request):
            return web.json_response({"deleted": result.id})
        return redirect("/results")

    async def signin(self, request: web.Request) -> web.StreamResponse:
        if self.web.access != "accounts":
            return redirect("/")
        account = await self.store.take_signin(request.match_info["token"], self.clock())
        if account is None:
            raise WebError(
                400,
                "signin_link",
                "This sign-in link was already used or has expired. Ask the operator for a new one.",
            )
        cookie, _ = (await self.signer()).cookie(account, self.clock() + self.web.session_days * 86400)
        response = redirect("/")
        self._set_cookie(response, cookie)
        return response

    async def signout(self, request: web.Request) -> web.StreamResponse:
        visitor = await self._required(request)
        form = await request.post()
        await self._check_post(request, visitor, _field(form.get("csrf_token")))
        response = redirect("/")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        """Files of adapters/web/static by plain name only (no folders, so no way out of it)."""
        name = request.match_info["name"]
        path = STATIC_DIR / name
        kind = STATIC_TYPES.get(path.suffix)
        if kind is None or "/" in name or name.startswith(".") or not path.is_file():
            raise WebError(404, "not_found", "No such file.")
        return web.Response(body=path.read_bytes(), content_type=kind, headers={"Cache-Control": "no-cache"})

    # -- the upload ------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """Receive photos: check who, where from and how big before reading, then queue each one.

        The size is refused from `Content-Length` before the body is read, and again while
        streaming each photo (a client may lie or not say). Per-IP daily limits and the caps on
        parallel uploads per IP and per account come first; the quota (the same store as the
        chat platforms, as `web:<account>`) is charged by `service.submit` for each photo.
        """
        visitor = await self._required(request)
        self._check_origin(request)
        limit = self.service.max_bytes
        cap = limit * self.web.max_files + FORM_OVERHEAD
        if request.content_length is not None and request.content_length > cap:
            raise WebError(413, TOO_LARGE, self._too_large(request.content_length))
        ip = self._client_ip(request)
        await self._check_ip_day(ip)
        slot = secrets.token_hex(8)
        slots = [
            (f"ip:{ip}", self.web.ip_concurrent_uploads),
            (f"account:{visitor.account}", self.web.account_concurrent_uploads),
        ]
        taken: list[str] = []
        try:
            for key, most in slots:
                if not await self.store.acquire_slot(key, slot, most, self.clock(), UPLOAD_SLOT_LEASE_S):
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

    async def _photos(self, request: web.Request, visitor: Visitor, limit: int) -> AsyncIterator[Upload]:
        """The form's photos one at a time, each read with a cap; the CSRF token must come first.

        One photo is in memory at a time: it is stored and queued before the next is read. Only
        the page's two fields are accepted, so no other part can make us read an unbounded body.
        """
        signer = await self.signer()
        token_ok = signer.csrf_ok(visitor.session, request.headers.get("X-CSRF-Token"))
        if not request.content_type.startswith("multipart/"):
            raise WebError(400, "bad_form", "Send the photos as a multipart/form-data form.")
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError) as exc:
            raise WebError(400, "bad_form", "That upload could not be read.") from exc
        count = 0
        while True:
            try:
                part = await reader.next()
            except ValueError as exc:
                raise WebError(400, "bad_form", "That upload could not be read.") from exc
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name not in ("csrf_token", "photo"):
                raise WebError(400, "bad_form", "That upload holds something other than photos.")
            if part.name == "csrf_token":
                token = (await _read_capped(part, 512, field=True)).decode("utf-8", "replace")
                token_ok = token_ok or signer.csrf_ok(visitor.session, token)
                continue
            if not token_ok:
                raise WebError(403, "csrf", "This form has expired; reload the page and try again.")
            data = await _read_capped(part, limit)
            if not data and not part.filename:
                continue  # the browser's empty part when no file was chosen
            count += 1
            if count > self.web.max_files:
                raise WebError(
                    400, "too_many_photos", f"At most {photos(self.web.max_files)} at once, please."
                )
            name = clean_text(Path(part.filename or "photo").name, 100) or "photo"
            yield Upload(name, part.headers.get("Content-Type"), data)
        if not token_ok:
            raise WebError(403, "csrf", "This form has expired; reload the page and try again.")
        if not count:
            raise WebError(400, "no_photo", "Choose a photo to upload first.")

    async def _receive(self, request: web.Request, visitor: Visitor, ip: str) -> web.StreamResponse:
        """Store and queue each photo as it arrives; a refusal after some were accepted is listed."""
        account = visitor.account
        features = await self.service.features_for(f"{PLATFORM}:{account}")
        day, _ = self._day()
        accepted: list[dict[str, str]] = []
        refused: list[dict[str, Any]] = []
        first_error: WebError | None = None
        photos_in = self._photos(request, visitor, self.service.max_bytes)
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
            error = await self._queue_one(upload, account, features, ip, day, accepted)
            if error is not None:
                first_error = first_error or error
                refused.append({"name": upload.name, "code": error.code, "message": error.message})
        if not accepted:
            assert first_error is not None
            raise first_error
        if wants_json(request):
            return web.json_response({"results": accepted, "refused": refused}, status=202)
        if refused:
            return await self._results_list(visitor, refused)
        return redirect(accepted[0]["url"] if len(accepted) == 1 else "/results")

    async def _queue_one(
        self,
        upload: Upload,
        account: str,
        features: frozenset[Feature],
        ip: str,
        day: str,
        accepted: list[dict[str, str]],
    ) -> WebError | None:
        """Store one photo and submit it; the refusal (per-IP day, quota, size) when not accepted."""
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
            verdict = await self.service.submit(request)
        except BaseException:
            await self.store.delete_result(result_id)
            raise
        if isinstance(verdict, Accepted):
            await self.store.add_count(f"ip:{ip}", day, 1)
            accepted.append({"id": result_id, "url": f"/results/{result_id}"})
            return None
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
        if reason == "concurrency":
            return 30
        return None


def redirect(location: str) -> web.Response:
    """A 303 to a page of ours (after a POST the browser GETs it)."""
    return web.Response(status=303, headers={"Location": location})


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _field(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def _read_capped(part: BodyPartReader, limit: int, *, field: bool = False) -> bytes:
    """A part's bytes, refused as soon as they pass `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await part.read_chunk(min(limit + 1, 256 * 1024)):
        total += len(chunk)
        if total > limit:
            if field:
                raise WebError(400, "bad_form", "That upload could not be read.")
            raise WebError(413, TOO_LARGE, too_large_message(total, limit, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)
