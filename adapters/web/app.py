"""The web page's routes on the shared server, and how a refusal becomes an answer.

The handlers live by job: `adapters.web.sessions` (who is asking, sign-in and sign-out),
`adapters.web.pages` (the pages and downloads), `adapters.web.uploads` (POST /upload, with
`adapters.web.upload_body` reading the body under time limits). Every POST needs a session, a
CSRF token and our own origin; every result is looked up for the signed-in account only.

This module wires them into routes and wraps each handler once: a `WebError` becomes its page or
JSON, a store outage a 503, and a body left unread closes the connection (a stalled client must
not keep it). The security headers are added to every answer of the whole server as it is
prepared (`bot.http_server`), so aiohttp's own 404 and 405 carry them too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from adapters.web.config import WebSettings
from adapters.web.errors import STORE_ERRORS, WebError
from adapters.web.pages import ResultPages
from adapters.web.questions import WebQuestions
from adapters.web.render import Renderer
from adapters.web.security import Signer
from adapters.web.sessions import Sessions
from adapters.web.store import WebStore
from adapters.web.uploads import Uploads
from adapters.web.waiting import WaitingPhotos
from bot.service import TRY_AGAIN_SHORTLY, PhotoService

log = logging.getLogger(__name__)

ID_PATTERN = "[A-Za-z0-9_-]{16,64}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebPages:
    """The web page's handlers; `routes()` lists them for the shared aiohttp application."""

    def __init__(
        self,
        web_settings: WebSettings,
        service: PhotoService,
        store: WebStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.web = web_settings
        self.renderer = Renderer(can_sign_out=web_settings.access != "proxy")
        self.sessions = Sessions(web_settings, store, clock)
        self.pages = ResultPages(web_settings, service, store, self.sessions, self.renderer)
        self.waiting = WaitingPhotos(service, store, clock)
        self.uploads = Uploads(web_settings, service, store, self.sessions, self.pages, self.waiting, clock)
        self.questions = WebQuestions(web_settings, service.questions, store, self.sessions, self.renderer)

    async def signer(self) -> Signer:
        return await self.sessions.signer()

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        g = self._guarded
        pages, sessions = self.pages, self.sessions
        one = f"/results/{{id:{ID_PATTERN}}}"
        return [
            web.get("/", g(pages.upload_page)),
            web.post("/upload", g(self.uploads.upload)),
            web.get("/results", g(pages.results_page)),
            web.get(f"{one}.json", g(pages.status_json)),
            web.get(one, g(pages.result_page)),
            web.get(f"{one}/annotated.jpg", g(pages.annotated)),
            web.get(f"{one}/prepared.jpg", g(pages.prepared)),
            web.get(f"{one}/analysis.json", g(pages.analysis_download)),
            web.post(f"{one}/delete", g(pages.delete)),
            web.post(f"{one}/ask", g(self.questions.ask)),
            web.get("/signin/{token}", g(sessions.signin)),
            web.post("/signout", g(sessions.signout)),
            web.post("/signout/others", g(sessions.signout_others)),
            web.get("/signedout", g(pages.signed_out)),
            web.get("/static/{name}", g(pages.static)),
            # Anything else under our prefixes is our 404 page, not aiohttp's plain text.
            web.get("/results/{rest:.*}", g(pages.not_found)),
            web.get("/static/{rest:.*}", g(pages.not_found)),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        """A `WebError` turned into its page or JSON; the connection closed if the body was left unread."""

        async def run(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except WebError as error:
                response = self.renderer.error(request, error)
            except STORE_ERRORS as error:
                log.warning("web store unavailable: %s: %s", type(error).__name__, error)
                response = self.renderer.error(request, WebError(503, "unavailable", TRY_AGAIN_SHORTLY, 5))
            except web.HTTPException as error:
                if error.status < 400:
                    raise
                response = self.renderer.error(request, WebError(error.status, "http", error.reason))
            if request.body_exists and not request.content.is_eof():
                await _answer_and_hang_up(request, response)
            return response

        return run


async def _answer_and_hang_up(request: web.Request, response: web.StreamResponse) -> None:
    """Send the answer, then close the connection instead of reading what the client still sends.

    Left to itself, aiohttp would keep the connection to read (and discard) the rest of a body we
    refused or gave up on, for up to ten seconds: time a stalled or hostile client would hold.
    """
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
