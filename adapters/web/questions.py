"""Questions about a result on the web page: a question box under a described photo.

`POST /results/<id>/ask` with the question and the page's CSRF token asks the describer about
that result's prepared image (the page keeps it with the result, for the result's own retention),
charged like a photo through `bot.questions`. A script asking for JSON gets
`{"question", "answer", "answered", "charged"}`; a form post gets a page with the answer and a
link back. The same question about the same result counts once (a reload resends the form).
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from adapters.web.config import WebSettings
from adapters.web.errors import WebError, form_field, wants_json
from adapters.web.render import Renderer
from adapters.web.sessions import Sessions
from adapters.web.store import WebStore
from adapters.web.upload_body import BodyClock, read_form
from bot.questions import Question, QuestionService

PLATFORM = "web"


class WebQuestions:
    """The question box's handler; nothing is offered when no describer is configured."""

    def __init__(
        self,
        web_settings: WebSettings,
        questions: QuestionService | None,
        store: WebStore,
        sessions: Sessions,
        renderer: Renderer,
    ) -> None:
        self.web = web_settings
        self.questions = questions
        self.store = store
        self.sessions = sessions
        self.renderer = renderer

    async def ask(self, request: web.Request) -> web.StreamResponse:
        visitor = await self.sessions.required(request)
        result = await self.store.result(request.match_info["id"])
        if result is None or result.account != visitor.account:  # as every result route checks it
            raise WebError(404, "not_found", "There is no such result (it may have been deleted).")
        clock = BodyClock(request, self.web.upload_stall_s, self.web.upload_timeout_s)
        form = await read_form(request, clock)
        token = request.headers.get("X-CSRF-Token") or form_field(form.get("csrf_token"))
        await self.sessions.check_post(request, visitor, token)
        if self.questions is None:
            raise WebError(404, "no_questions", "Questions about photos are not available here.")
        photo = await self.store.blob(result.id, "prepared")
        if photo is None:
            raise WebError(409, "not_ready", "This photo has no analysis to ask about yet.")
        text = form_field(form.get("question")) or ""
        asked = hashlib.sha256(f"{result.id}\x1f{text.strip()}".encode()).hexdigest()[:32]
        question = Question(PLATFORM, visitor.account, visitor.account, asked, result.id, text)
        reply = await self.questions.ask(question, photo)
        if wants_json(request):
            return web.json_response(
                {
                    "question": text[:300],
                    "answer": reply.text,
                    "answered": reply.answered,
                    "charged": reply.charged,
                }
            )
        return self.renderer.page(
            "message.html",
            title="Your question",
            heading="Your question" if reply.answered else "No answer",
            code="answered" if reply.answered else "not_answered",
            message=reply.text,
            link=f"/results/{result.id}",
            link_text="Back to the photo",
            account=visitor.account,
            csrf_token=await self.sessions.csrf_token(visitor),
        )
