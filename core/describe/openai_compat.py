"""Any OpenAI-compatible `/v1/chat/completions` server as a `Describer`, through httpx.

Ollama, llama.cpp's server, vLLM, LocalAI and LM Studio speak this API on the operator's own
machines, and hosted providers speak it too. The photo goes as a `data:` URL (the prepared JPEG,
no EXIF), with the same fixed prompt as Bedrock. Structured output is asked for with
`response_format` (`json_schema`); a server that answers 400 to it is asked again without it,
and from then on in plain text (the reply is validated either way).

The API key is a secret: it is sent only as `Authorization: Bearer` to the configured URL's own
host, redirects are never followed (a redirect could carry the header elsewhere), and it never
appears in a message or log line. 429 and 5xx answers are retried within the attempt budget,
waiting what `Retry-After` asks when it fits the time left.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.analysis_types import ErrorKind, PreparedPhoto
from core.describe import prompt
from core.describe.errors import DescribeFailed
from core.describe.types import Answer, Description

log = logging.getLogger(__name__)

#: Most of an answer's body read; a chat completion with a caption is a few kB.
MAX_BODY_BYTES = 1_000_000
#: Longest wait honoured from a Retry-After header; longer ones fail the call instead.
MAX_RETRY_AFTER_S = 10.0
_RETRIED = frozenset({429, 500, 502, 503, 504})


def is_self_hosted(url: str) -> bool:
    """Whether `url` points at the operator's own machines: localhost, a private or loopback
    address, or a `.local`/`.internal`/`.lan` name. Anything else counts as a hosted provider."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in ("localhost", "host.docker.internal") or host.endswith((".local", ".internal", ".lan")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host and bool(host)  # a bare name: a container or LAN host
    return address.is_private or address.is_loopback or address.is_link_local


class OpenAIDescriber:
    """A vision model behind an OpenAI-compatible chat completions API.

    `base_url` is the API base as OpenAI clients take it (`http://localhost:11434/v1` for
    Ollama); requests go to `{base_url}/chat/completions`. `hosted` is decided from the URL
    (`is_self_hosted`) unless given.
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 20.0,
        max_attempts: int = 3,
        hosted: bool | None = None,
        structured: bool = True,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the describer URL must be an http(s) URL with a host")
        if not model:
            raise ValueError("an OpenAI-compatible describer needs a model name")
        self._endpoint = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_attempts = max(1, max_attempts)
        self._hosted = (not is_self_hosted(base_url)) if hosted is None else hosted
        self._structured = structured
        self._client: httpx.AsyncClient | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def hosted(self) -> bool:
        return self._hosted

    async def describe(self, photo: PreparedPhoto, labels: Sequence[str]) -> Description:
        """A caption and tags from one chat completion (two if `response_format` was refused)."""
        text = await self._complete(photo, prompt.describe_prompt(labels), structured=True)
        caption, tags = prompt.parse_description(text)
        return Description(caption, self.name, self._model, tags)

    async def ask(self, photo: PreparedPhoto, question: str) -> Answer:
        """The model's answer to a question about the photo, in plain text."""
        text = await self._complete(photo, prompt.question_prompt(question), structured=False)
        return Answer(prompt.clean_answer(text), self.name, self._model)

    async def close(self) -> None:
        """Close the HTTP connections (the client is made on the first call, on its loop)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _complete(self, photo: PreparedPhoto, text: str, *, structured: bool) -> str:
        deadline = time.monotonic() + self._timeout_s
        body = self._body(photo.jpeg, text, structured and self._structured)
        for attempt in range(1, self._max_attempts + 1):
            status, wait, payload = await self._post(body, deadline)
            if status == 200:
                return self._reply_text(payload)
            if status == 400 and "response_format" in body:
                log.info("the describer refused response_format; asking in plain text from now on")
                self._structured = False
                body = self._body(photo.jpeg, text, False)
                continue
            if status not in _RETRIED or attempt == self._max_attempts:
                raise _status_failure(status)
            wait = min(wait if wait is not None else 0.5 * 2 ** (attempt - 1), MAX_RETRY_AFTER_S)
            if time.monotonic() + wait >= deadline:
                raise _status_failure(status)
            await asyncio.sleep(wait)
        raise _status_failure(0)

    async def _post(self, body: dict[str, Any], deadline: float) -> tuple[int, float | None, bytes]:
        """One request: its status, the Retry-After it asked for, and its body (about 1 MB at most)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise DescribeFailed(ErrorKind.TIMEOUT, "The describer did not answer in time.")
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            async with self._http().stream(
                "POST", self._endpoint, json=body, headers=headers, timeout=httpx.Timeout(left)
            ) as response:
                payload = bytearray()
                async for chunk in response.aiter_bytes():
                    payload += chunk
                    if len(payload) > MAX_BODY_BYTES:
                        break
                return response.status_code, _retry_after(response.headers.get("Retry-After")), bytes(payload)
        except httpx.TimeoutException:
            raise DescribeFailed(ErrorKind.TIMEOUT, "The describer did not answer in time.") from None
        except httpx.HTTPError as error:
            raise DescribeFailed(
                ErrorKind.UNAVAILABLE, f"The describer could not be reached ({type(error).__name__})."
            ) from None

    def _http(self) -> httpx.AsyncClient:
        """One client per describer; redirects are never followed, proxies from the environment
        are not used (the key goes to the configured host and nowhere else)."""
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client

    def _body(self, jpeg: bytes, text: str, structured: bool) -> dict[str, Any]:
        image = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": prompt.SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image}},
                        {"type": "text", "text": text},
                    ],
                },
            ],
            "max_tokens": prompt.MAX_OUTPUT_TOKENS,
            "temperature": 0.2,
        }
        if structured:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "photo_description", "schema": prompt.DESCRIPTION_SCHEMA},
            }
        return body

    def _reply_text(self, payload: bytes) -> str:
        """The first choice's message text; anything else is a failure (billed when hosted)."""
        try:
            document = json.loads(payload)
            content = document["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise DescribeFailed(
                ErrorKind.ERROR, "The describer's answer was not readable.", billed=self._hosted
            ) from None
        if isinstance(content, list):  # some servers answer in content parts
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise DescribeFailed(ErrorKind.ERROR, "The describer's answer held no text.", billed=self._hosted)
        return content


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _status_failure(status: int) -> DescribeFailed:
    if status == 429:
        return DescribeFailed(ErrorKind.THROTTLED, "The describer is busy (429); try again later.")
    if status in (401, 403):
        return DescribeFailed(ErrorKind.ACCESS_DENIED, f"The describer refused our key ({status}).")
    if 300 <= status < 400:
        return DescribeFailed(ErrorKind.ERROR, f"The describer answered with a redirect ({status}).")
    if status >= 500:
        return DescribeFailed(ErrorKind.UNAVAILABLE, f"The describer is unavailable ({status}).")
    return DescribeFailed(ErrorKind.ERROR, f"The describer answered {status or 'nothing usable'}.")
