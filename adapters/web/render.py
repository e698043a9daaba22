"""Pages from templates, and refusals as a page or as JSON: the only place HTML is produced.

The templates are Jinja2 with autoescaping on, so every string from a photo (EXIF, OCR text,
labels, file names) is escaped by the engine, never by hand, and strict about undefined names,
so a missing value is a test failure rather than an empty spot on the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from adapters.web.errors import WebError, wants_json

TEMPLATES = Path(__file__).parent / "templates"
HEADINGS = {404: "Not found", 408: "Too slow", 413: "Too large", 429: "Please wait"}


def templates() -> jinja2.Environment:
    """The page templates, autoescaped (every `{{ }}` is HTML-escaped) and strict about undefined names."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )


class Renderer:
    """Renders pages with the context every page's frame needs (account, CSRF token, sign-out)."""

    def __init__(self, *, can_sign_out: bool) -> None:
        self.env = templates()
        self.can_sign_out = can_sign_out

    def page(self, name: str, status: int = 200, **context: Any) -> web.Response:
        context.setdefault("refresh", None)
        context.setdefault("account", None)
        context.setdefault("csrf_token", "")
        context.setdefault("can_sign_out", self.can_sign_out)
        html = self.env.get_template(name).render(**context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def error(self, request: web.Request, error: WebError) -> web.Response:
        """The refusal as the asker wants it: `{"error": {...}}` for scripts, else a page in words."""
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
        if wants_json(request):
            body: dict[str, Any] = {"code": error.code, "message": error.message}
            if error.retry_after is not None:
                body["retry_after"] = error.retry_after
            return web.json_response({"error": body}, status=error.status, headers=headers)
        heading = HEADINGS.get(error.status, "Sorry")
        response = self.page(
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
