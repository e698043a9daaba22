"""A tiny aiohttp site serving the hand-written pages of fixtures/ with the real static files.

It stands in for the server so app.js can be tested on its own: it answers the upload and the
status document the way the DOM contract says, records what the page sent, and sends the same
security headers (strict CSP) as the real adapter, so an inline style or script would fail here too.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image, ImageDraw

from bot.http_server import SECURITY_HEADERS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STATIC = Path(__file__).resolve().parents[2] / "adapters" / "web" / "static"


def scene(width: int = 640, height: int = 480) -> bytes:
    """A drawn street: two brown 'dogs', a face-coloured disc and a sign, where the fixture's boxes are."""
    image = Image.new("RGB", (width, height), (150, 190, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 0.6, width, height), fill=(110, 110, 120))
    draw.ellipse((width * 0.1, height * 0.5, width * 0.4, height * 0.9), fill=(140, 90, 40))
    draw.ellipse((width * 0.6, height * 0.55, width * 0.85, height * 0.9), fill=(120, 80, 30))
    draw.ellipse((width * 0.45, height * 0.1, width * 0.6, height * 0.3), fill=(235, 190, 160))
    draw.rectangle((width * 0.05, height * 0.05, width * 0.35, height * 0.15), fill=(250, 250, 250))
    draw.text((width * 0.1, height * 0.07), "OPEN", fill=(20, 20, 20), font_size=28)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@dataclass
class Upload:
    headers: dict[str, str]
    fields: list[tuple[str, str]]  # (field name, value or file name), in the order sent


@dataclass
class FixtureSite:
    """What the pages will be answered, and what they sent."""

    upload_answer: tuple[int, dict[str, Any]] = (202, {"results": [{"id": "fx", "url": "/results/fx"}]})
    uploads: list[Upload] = field(default_factory=list)
    statuses: list[str] = field(default_factory=lambda: ["analysing", "done"])
    status_calls: int = 0

    def app(self) -> web.Application:
        @web.middleware
        async def headers(request: web.Request, handler: Any) -> web.StreamResponse:
            response: web.StreamResponse = await handler(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        app = web.Application(middlewares=[headers])
        app.add_routes(
            [
                web.get("/", self.page("upload.html")),
                web.post("/upload", self.upload),
                web.get("/results", self.page("results.html")),
                web.get("/results/fx", self.page("result-done.html")),
                web.get("/results/fx/{kind}.jpg", self.image),
                web.get("/results/fx/analysis.json", self.analysis),
                web.get("/results/wait", self.waiting_page),
                web.get("/results/wait.json", self.waiting_status),
                web.get("/static/{name}", self.static),
            ]
        )
        return app

    @staticmethod
    def page(name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=(FIXTURES / name).read_text(), content_type="text/html")

        return handler

    async def upload(self, request: web.Request) -> web.Response:
        fields: list[tuple[str, str]] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            if part.filename:
                await part.read()
                fields.append((str(part.name), part.filename))
            else:
                fields.append((str(part.name), await part.text()))
        self.uploads.append(Upload(dict(request.headers), fields))
        status, body = self.upload_answer
        return web.json_response(body, status=status)

    async def image(self, request: web.Request) -> web.Response:
        return web.Response(body=scene(), content_type="image/jpeg")

    async def analysis(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"photo": "street.jpg"}), content_type="application/json")

    async def waiting_page(self, request: web.Request) -> web.Response:
        done = self.status_calls >= len(self.statuses)
        name = "result-done.html" if done else "result-pending.html"
        return web.Response(text=(FIXTURES / name).read_text(), content_type="text/html")

    async def waiting_status(self, request: web.Request) -> web.Response:
        status = self.statuses[min(self.status_calls, len(self.statuses) - 1)]
        self.status_calls += 1
        return web.json_response({"id": "wait", "status": status, "analysis": None, "error": None})

    async def static(self, request: web.Request) -> web.Response:
        path = STATIC / request.match_info["name"]
        kinds = {".js": "text/javascript", ".css": "text/css"}
        if path.suffix not in kinds or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=kinds[path.suffix])
