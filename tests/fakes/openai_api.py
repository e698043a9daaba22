"""A local OpenAI-compatible chat completions server (what Ollama, vLLM or llama.cpp's server speak).

`POST /v1/chat/completions` with the photo as a `data:image/jpeg;base64,...` URL in an
`image_url` content part; answers `{"choices": [{"message": {"content": ...}}]}`. Besides the
shared scripting (`tests.fakes.vision_model`: latency, 429 with `Retry-After`, 5xx, hangs,
malformed bodies, redirects) it can refuse `response_format` with a 400, as servers without
structured output do (`refuse_response_format`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from tests.fakes.vision_model import ScriptedModelServer, Seen

DATA_URL_PREFIX = "data:image/jpeg;base64,"


class FakeOpenAI(ScriptedModelServer):
    thread_name = "fake-openai"

    def __init__(self, host: str = "127.0.0.1", *, seed: int = 0) -> None:
        super().__init__(host, seed=seed)
        self.refuse_response_format = False

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/{tail:.*}", self._elsewhere)
        return app

    async def _elsewhere(self, request: web.Request) -> web.Response:
        """Any other path (a redirect's target): recorded, so a test can see what arrived."""
        body = await request.read()
        self._record(Seen(request.path, dict(request.headers), {"raw": body.decode(errors="replace")}, None))
        return web.json_response({"error": {"message": "not here"}}, status=404)

    async def _complete(self, request: web.Request) -> web.Response:
        try:
            body: dict[str, Any] = json.loads(await request.read())
        except ValueError:
            return _error(400, "the body is not JSON")
        scripted = self._record(Seen(request.path, dict(request.headers), body, _image(body)))
        await self._delay()
        if scripted is not None:
            if scripted.kind == "hang":
                await self._hang()
                return _error(503, "stopped")
            if scripted.kind == "malformed":
                return web.Response(status=200, text="<html>gateway</html>", content_type="text/html")
            if scripted.kind == "redirect":
                return web.Response(status=307, headers={"Location": scripted.location})
            if scripted.kind == "status":
                response = _error(scripted.status, "scripted")
                if scripted.retry_after is not None:
                    response.headers["Retry-After"] = f"{scripted.retry_after:g}"
                return response
        if self.refuse_response_format and "response_format" in body:
            return _error(400, "response_format is not supported")
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self._reply()},
                        "finish_reason": "stop",
                    }
                ],
            }
        )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)


def _image(body: dict[str, Any]) -> bytes | None:
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            url = part.get("image_url", {}).get("url", "") if isinstance(part, dict) else ""
            if url.startswith(DATA_URL_PREFIX):
                return base64.b64decode(url[len(DATA_URL_PREFIX) :])
    return None
