"""Amazon Bedrock's Converse API as a `Describer`: the prepared JPEG, a fixed prompt, one call.

boto3 is synchronous but thread-safe, so each call runs on a small thread pool, after waiting
its turn at the shared rate limit (`CallGate`, the same one Rekognition uses, under its own
operation name). Credentials and the region come from the standard AWS chain, as for
Rekognition; retries are botocore's standard mode (throttling and 5xx, with back-off).

Structured output (`outputConfig` with a JSON schema) is asked for by default; a model that
does not support it answers ValidationException, and the describer then asks again without it
and keeps asking in plain text from then on (the reply is validated either way).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from core.analysis_types import ErrorKind, PreparedPhoto
from core.describe import prompt
from core.describe.errors import DescribeFailed
from core.describe.types import Answer, Description
from core.errors import RecognizerThrottled
from core.recognizers.base import CallGate, OpenGate

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

log = logging.getLogger(__name__)

#: The gate's name for Converse calls (the shared schedule keeps one slot line per name).
GATE_OPERATION = "bedrock:Converse"
#: Bedrock's limit for one image in a Converse request.
MAX_IMAGE_BYTES = 3_750_000

_KINDS: dict[str, ErrorKind] = {
    "ThrottlingException": ErrorKind.THROTTLED,
    "ServiceQuotaExceededException": ErrorKind.THROTTLED,
    "AccessDeniedException": ErrorKind.ACCESS_DENIED,
    "ResourceNotFoundException": ErrorKind.ACCESS_DENIED,
    "ModelTimeoutException": ErrorKind.TIMEOUT,
    "InternalServerException": ErrorKind.UNAVAILABLE,
    "ServiceUnavailableException": ErrorKind.UNAVAILABLE,
    "ModelNotReadyException": ErrorKind.UNAVAILABLE,
    "ValidationException": ErrorKind.ERROR,
    "ModelErrorException": ErrorKind.ERROR,
}
_REFUSED = frozenset({"content_filtered", "guardrail_intervened"})


class BedrockDescriber:
    """A Bedrock model that accepts images (Amazon Nova, Anthropic Claude...) behind `Describer`.

    `model` is a model or inference-profile id. `client` replaces the boto3 client (tests pass
    one wrapped in botocore's Stubber); the timeout and retry arguments then do not apply.
    """

    name = "bedrock"
    hosted = True

    def __init__(
        self,
        *,
        model: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_s: float = 20.0,
        max_attempts: int = 3,
        concurrency: int = 4,
        gate: CallGate | None = None,
        structured: bool = True,
        client: BedrockRuntimeClient | None = None,
    ) -> None:
        if not model:
            raise ValueError("a Bedrock describer needs a model id")
        self._model = model
        if client is None:
            client = boto3.session.Session().client(
                "bedrock-runtime",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(
                    retries={"mode": "standard", "total_max_attempts": max_attempts},
                    connect_timeout=min(5.0, timeout_s),
                    read_timeout=timeout_s,
                    max_pool_connections=concurrency,
                    user_agent_extra="photodetective",
                ),
            )
        self._client = client
        self._gate: CallGate = gate or OpenGate()
        self._structured = structured
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bedrock")

    @property
    def model(self) -> str:
        return self._model

    async def describe(self, photo: PreparedPhoto, labels: Sequence[str]) -> Description:
        """A caption and tags from one Converse call (two if structured output had to be turned off)."""
        text = await self._converse(photo, prompt.describe_prompt(labels), structured=True)
        caption, tags = prompt.parse_description(text)
        return Description(caption, self.name, self._model, tags)

    async def ask(self, photo: PreparedPhoto, question: str) -> Answer:
        """The model's answer to a question about the photo, in plain text."""
        text = await self._converse(photo, prompt.question_prompt(question), structured=False)
        return Answer(prompt.clean_answer(text), self.name, self._model)

    def close(self) -> None:
        """Stop the call threads; calls already running finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _converse(self, photo: PreparedPhoto, text: str, *, structured: bool) -> str:
        if len(photo.jpeg) > MAX_IMAGE_BYTES:
            raise DescribeFailed(ErrorKind.INVALID_IMAGE, "The photo is too large for the describer.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, photo.jpeg, text, structured)

    def _call(self, jpeg: bytes, text: str, structured: bool) -> str:
        """One Converse request (in a pool thread), its reply text, or a `DescribeFailed`."""
        try:
            self._gate.wait_turn(GATE_OPERATION)
        except RecognizerThrottled as error:
            raise DescribeFailed(ErrorKind.THROTTLED, str(error)) from None
        request = self._request(jpeg, text, structured and self._structured)
        try:
            response = self._client.converse(**request)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "ValidationException" and "outputConfig" in request:
                log.info("the Bedrock model refused structured output; asking in plain text from now on")
                self._structured = False
                return self._call(jpeg, text, structured=False)
            kind = _KINDS.get(code, ErrorKind.ERROR)
            raise DescribeFailed(kind, f"The describer answered {code or 'an error'}.") from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise DescribeFailed(ErrorKind.TIMEOUT, "The describer did not answer in time.") from None
        except BotoCoreError as error:
            raise DescribeFailed(
                ErrorKind.UNAVAILABLE, f"The describer could not be reached ({type(error).__name__})."
            ) from None
        return _reply_text(dict(response))

    def _request(self, jpeg: bytes, text: str, structured: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "modelId": self._model,
            "system": [{"text": prompt.SYSTEM_PROMPT}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"image": {"format": "jpeg", "source": {"bytes": jpeg}}},
                        {"text": text},
                    ],
                }
            ],
            "inferenceConfig": {"maxTokens": prompt.MAX_OUTPUT_TOKENS, "temperature": 0.2},
        }
        if structured:
            request["outputConfig"] = {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {
                        "jsonSchema": {
                            "schema": json.dumps(prompt.DESCRIPTION_SCHEMA),
                            "name": "photo_description",
                        }
                    },
                }
            }
        return request


def _reply_text(response: dict[str, Any]) -> str:
    """The text blocks of Converse's output message; a refusal or an empty reply fails (billed)."""
    stop = str(response.get("stopReason", ""))
    if stop in _REFUSED:
        raise DescribeFailed(ErrorKind.ERROR, "The describer declined to describe this photo.", billed=True)
    message = response.get("output", {}).get("message", {})
    parts = [block["text"] for block in message.get("content", []) if isinstance(block.get("text"), str)]
    if not parts:
        raise DescribeFailed(ErrorKind.ERROR, "The describer's answer held no text.", billed=True)
    return "\n".join(parts)
