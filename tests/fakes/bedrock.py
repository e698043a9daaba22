"""A local stand-in for Amazon Bedrock's Converse API that a real boto3 client can talk to.

It speaks rest-json like the service (`POST /model/{modelId}/converse`, the image as base64
`bytes` in the JSON body, errors with an `x-amzn-ErrorType` header and a `message`), so botocore's
signing, standard retries and timeouts run for real; point a client at it with `endpoint_url=`
(or `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`). Scripting and recording: `tests.fakes.vision_model`.

    with FakeBedrock() as fake:
        fake.misbehave("status", status=429, error_type="ThrottlingException")
        ...
        assert fake.seen[-1].path == "/model/amazon.nova-lite-v1:0/converse"
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.fakes.vision_model import ScriptedModelServer, Seen


class FakeBedrock(ScriptedModelServer):
    thread_name = "fake-bedrock"

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_post("/model/{model_id}/converse", self._converse)
        return app

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: dict[str, Any] = json.loads(raw)
        except ValueError:
            return _error(400, "ValidationException", "The request body is not JSON.")
        scripted = self._record(Seen(unquote(request.path), dict(request.headers), body, _image(body)))
        await self._delay()
        if scripted is not None:
            if scripted.kind == "hang":
                await self._hang()
                return _error(503, "ServiceUnavailableException", "stopped")
            if scripted.kind == "malformed":
                return web.Response(status=200, text="{not json", content_type="application/json")
            if scripted.kind == "status":
                response = _error(
                    scripted.status, scripted.error_type or "InternalServerException", "scripted"
                )
                if scripted.retry_after is not None:
                    response.headers["Retry-After"] = f"{scripted.retry_after:g}"
                return response
        if "messages" not in body or not isinstance(body["messages"], list):
            return _error(400, "ValidationException", "messages is required")
        return web.json_response(
            {
                "output": {"message": {"role": "assistant", "content": [{"text": self._reply()}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 1200, "outputTokens": 40, "totalTokens": 1240},
                "metrics": {"latencyMs": 10},
            }
        )


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response(
        {"message": message}, status=status, headers={"x-amzn-ErrorType": f"{error_type}:http://internal/"}
    )


def _image(body: dict[str, Any]) -> bytes | None:
    """The first image block's bytes, decoded (the wire carries them base64)."""
    for message in body.get("messages", []):
        for block in message.get("content", []):
            image = block.get("image") if isinstance(block, dict) else None
            if isinstance(image, dict):
                return base64.b64decode(image["source"]["bytes"])
    return None
