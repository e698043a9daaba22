"""The pages a signed-in visitor reads: the upload form, the results list, one result, its downloads.

Every result is looked up for the signed-in account only: another account's id answers 404, like
an unknown one, so an id seen over someone's shoulder tells nothing about whether it exists.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from aiohttp import web

from adapters.web.config import WebSettings
from adapters.web.errors import WebError, form_field, redirect, wants_json
from adapters.web.render import Renderer
from adapters.web.sessions import Sessions, Visitor
from adapters.web.store import WebResult, WebStore
from adapters.web.upload_body import BodyClock, read_form
from bot.notices import megabytes
from bot.questions import privacy_lines
from bot.service import PhotoService

STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
REFRESH_S = 3
STATUS_WORDS = {
    "queued": "Queued: waiting for a worker.",
    "analysing": "Analysing the photo…",
    "done": "Done.",
    "failed": "The photo could not be analysed.",
}
SHORT_STATUS = {"queued": "queued", "analysing": "analysing", "done": "done", "failed": "failed"}
LAYERS = (("face", "Faces"), ("object", "Objects"), ("text", "Text"))


class ResultPages:
    """The handlers for the upload page, the results and the static files."""

    def __init__(
        self,
        web_settings: WebSettings,
        service: PhotoService,
        store: WebStore,
        sessions: Sessions,
        renderer: Renderer,
    ) -> None:
        self.web = web_settings
        self.service = service
        self.store = store
        self.sessions = sessions
        self.renderer = renderer

    async def upload_page(self, request: web.Request) -> web.StreamResponse:
        visitor = await self.sessions.visitor(request, create=True)
        if visitor is None:
            raise WebError(401, "signin_required", self.sessions.signin_text())
        limit = self.service.max_bytes
        days = self.web.retention_days
        response = self.renderer.page(
            "upload.html",
            title="Analyse a photo",
            account=visitor.account,
            csrf_token=await self.sessions.csrf_token(visitor),
            max_bytes=limit,
            max_mb=megabytes(limit),
            max_files=self.web.max_files,
            backend=self.service.backend,
            retention=f"{days:g} day{'s' if days != 1 else ''}",
            described=privacy_lines(self.service.capabilities, self.service.questions)[:1],
        )
        if visitor.new_cookie:
            self.sessions.set_cookie(response, visitor.new_cookie)
        return response

    async def results_page(self, request: web.Request) -> web.StreamResponse:
        visitor = await self.sessions.required(request)
        return await self.results_list(visitor, [])

    async def results_list(self, visitor: Visitor, refused: list[dict[str, str]]) -> web.Response:
        """The account's results, newest first, with any photos of the last upload that were refused."""
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
        return self.renderer.page(
            "results.html",
            title="Your results",
            account=visitor.account,
            csrf_token=await self.sessions.csrf_token(visitor),
            results=rows,
            refused=refused,
            status_words=SHORT_STATUS,
            refresh=REFRESH_S if pending else None,
        )

    async def _own_result(self, request: web.Request) -> tuple[Visitor, WebResult]:
        visitor = await self.sessions.required(request)
        result = await self.store.result(request.match_info["id"])
        if result is None or result.account != visitor.account:
            raise WebError(404, "not_found", "There is no such result (it may have been deleted).")
        return visitor, result

    async def result_page(self, request: web.Request) -> web.StreamResponse:
        visitor, result = await self._own_result(request)
        view = json.loads(result.view) if result.view else None
        kinds = {box["kind"] for box in view["boxes"]} if view else set()
        pending = result.status in ("queued", "analysing")
        return self.renderer.page(
            "result.html",
            title=result.name,
            account=visitor.account,
            csrf_token=await self.sessions.csrf_token(visitor),
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
        form = await read_form(
            request, BodyClock(request, self.web.upload_stall_s, self.web.upload_timeout_s)
        )
        token = request.headers.get("X-CSRF-Token") or form_field(form.get("csrf_token"))
        await self.sessions.check_post(request, visitor, token)
        await self.store.delete_result(result.id)
        if wants_json(request):
            return web.json_response({"deleted": result.id})
        return redirect("/results")

    async def static(self, request: web.Request) -> web.StreamResponse:
        """Files of adapters/web/static by plain name only (no folders, so no way out of it)."""
        name = request.match_info["name"]
        path = STATIC_DIR / name
        kind = STATIC_TYPES.get(path.suffix)
        if kind is None or "/" in name or name.startswith(".") or not path.is_file():
            raise WebError(404, "not_found", "No such file.")
        return web.Response(body=path.read_bytes(), content_type=kind, headers={"Cache-Control": "no-cache"})

    async def signed_out(self, request: web.Request) -> web.StreamResponse:
        """Where "Sign out" lands: a plain page (the upload page would only say "please sign in")."""
        return self.renderer.page(
            "message.html",
            title="Signed out",
            heading="Signed out",
            message=self.sessions.signed_out_words(),
            code="signed_out",
            link="/",
            link_text="Back to the upload page",
        )

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        raise WebError(404, "not_found", "There is no such page.")
