"""Both describer backends against their fakes on 127.0.0.1, with real HTTP clients.

Bedrock through a real boto3 client (signing, standard retries, timeouts), the OpenAI-compatible
backend through aiohttp. What is checked: the caption and tags come back validated; the photo
that leaves carries no EXIF or GPS; the API key reaches its own host only; 429/5xx are retried,
timeouts and malformed bodies end in a `DescribeFailed` of the right kind and nothing leaks.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.analysis_types import ErrorKind
from core.describe.bedrock import BedrockDescriber
from core.describe.errors import DescribeFailed
from core.describe.openai_compat import OpenAIDescriber
from tests.describe_helpers import assert_no_metadata, prepared_photo
from tests.fakes.aws_env import use_dummy_credentials
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.openai_api import FakeOpenAI

MODEL = "amazon.nova-lite-v1:0"
KEY = "sk-test-0123456789-secret"


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBedrock]:
    use_dummy_credentials(monkeypatch, tmp_path, access_key="AKIDEXAMPLE", secret_key="dummy-secret")
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def bedrock_describer(fake: FakeBedrock, **options: object) -> BedrockDescriber:
    return BedrockDescriber(model=MODEL, region="us-east-1", endpoint_url=fake.url, **options)  # type: ignore[arg-type]


# -- Bedrock ---------------------------------------------------------------------------------


async def test_bedrock_caption_and_tags_from_converse_without_exif(bedrock: FakeBedrock) -> None:
    describer = bedrock_describer(bedrock)
    description = await describer.describe(prepared_photo(), ["Person", "Amusement Park"])
    assert description.text == "Two people stand in front of a Ferris wheel at dusk."
    assert description.tags == ("Ferris wheel", "Dusk")
    assert (description.backend, description.model) == ("bedrock", MODEL)
    (seen,) = bedrock.seen
    assert seen.path == f"/model/{MODEL}/converse"
    assert seen.image is not None
    assert_no_metadata(seen.image)
    sent = json.dumps(seen.body)
    assert "Amusement Park" in sent  # the labels go as context...
    assert "SecretCam" not in sent
    assert "48." not in sent
    assert seen.body["outputConfig"]["textFormat"]["type"] == "json_schema"  # type: ignore[index]
    assert seen.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


async def test_bedrock_throttling_is_retried_by_botocore(bedrock: FakeBedrock) -> None:
    bedrock.misbehave("status", status=429, error_type="ThrottlingException", times=2)
    description = await bedrock_describer(bedrock).describe(prepared_photo(), [])
    assert description.text.startswith("Two people")
    assert len(bedrock.seen) == 3


async def test_bedrock_throttled_past_its_attempts_is_a_throttled_failure(bedrock: FakeBedrock) -> None:
    bedrock.misbehave("status", status=429, error_type="ThrottlingException", times=None)
    with pytest.raises(DescribeFailed) as failed:
        await bedrock_describer(bedrock, max_attempts=2).describe(prepared_photo(), [])
    assert failed.value.kind is ErrorKind.THROTTLED
    assert not failed.value.billed
    assert len(bedrock.seen) == 2


async def test_bedrock_5xx_is_unavailable(bedrock: FakeBedrock) -> None:
    bedrock.misbehave("status", status=503, error_type="ServiceUnavailableException", times=None)
    with pytest.raises(DescribeFailed) as failed:
        await bedrock_describer(bedrock, max_attempts=2).describe(prepared_photo(), [])
    assert failed.value.kind is ErrorKind.UNAVAILABLE


async def test_bedrock_timeout(bedrock: FakeBedrock) -> None:
    bedrock.misbehave("hang", times=None)
    started = time.monotonic()
    with pytest.raises(DescribeFailed) as failed:
        await bedrock_describer(bedrock, timeout_s=0.5, max_attempts=1).describe(prepared_photo(), [])
    assert failed.value.kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 30


async def test_bedrock_malformed_body_fails_without_echoing_it(bedrock: FakeBedrock) -> None:
    bedrock.misbehave("malformed", times=None)
    with pytest.raises(DescribeFailed) as failed:
        await bedrock_describer(bedrock, max_attempts=1).describe(prepared_photo(), [])
    assert "not json" not in str(failed.value)


async def test_bedrock_model_without_structured_output_is_asked_in_plain_text(bedrock: FakeBedrock) -> None:
    bedrock.misbehave("status", status=400, error_type="ValidationException")
    bedrock.answer("A red bus on a wet street.")
    describer = bedrock_describer(bedrock)
    first = await describer.describe(prepared_photo(), [])
    second = await describer.describe(prepared_photo(), [])
    assert (first.text, first.tags) == ("A red bus on a wet street.", ())
    assert second.text == first.text
    assert ["outputConfig" in seen.body for seen in bedrock.seen] == [True, False, False]


async def test_bedrock_question(bedrock: FakeBedrock) -> None:
    bedrock.answer("A clock with Roman numerals.")
    answer = await bedrock_describer(bedrock).ask(prepared_photo(), "what is on the wall?")
    assert answer.text == "A clock with Roman numerals."
    body = json.dumps(bedrock.seen[0].body)
    assert "what is on the wall?" in body
    assert "outputConfig" not in body


# -- OpenAI-compatible ------------------------------------------------------------------------


def openai_describer(fake: FakeOpenAI, **options: object) -> OpenAIDescriber:
    return OpenAIDescriber(base_url=fake.url + "/v1", model="llava", **options)  # type: ignore[arg-type]


async def test_openai_caption_tags_and_the_key_as_bearer(openai_fake: FakeOpenAI) -> None:
    describer = openai_describer(openai_fake, api_key=KEY)
    try:
        description = await describer.describe(prepared_photo(), ["Person"])
    finally:
        await describer.close()
    assert description.text.startswith("Two people")
    assert description.tags == ("Ferris wheel", "Dusk")
    (seen,) = openai_fake.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.image is not None
    assert_no_metadata(seen.image)
    assert seen.body["response_format"]["type"] == "json_schema"  # type: ignore[index]
    assert not describer.hosted  # 127.0.0.1 is the operator's own machine


async def test_openai_key_never_follows_a_redirect_to_another_host(openai_fake: FakeOpenAI) -> None:
    async with FakeOpenAI() as elsewhere:
        openai_fake.misbehave("redirect", location=elsewhere.url + "/steal", times=None)
        describer = openai_describer(openai_fake, api_key=KEY)
        try:
            with pytest.raises(DescribeFailed) as failed:
                await describer.describe(prepared_photo(), [])
        finally:
            await describer.close()
        assert elsewhere.seen == []
    assert KEY not in str(failed.value)


async def test_openai_without_key_sends_no_authorization(openai_fake: FakeOpenAI) -> None:
    describer = openai_describer(openai_fake)
    try:
        await describer.describe(prepared_photo(), [])
    finally:
        await describer.close()
    assert "Authorization" not in openai_fake.seen[0].headers


async def test_openai_429_waits_its_retry_after(openai_fake: FakeOpenAI) -> None:
    openai_fake.misbehave("status", status=429, retry_after=1)
    describer = openai_describer(openai_fake)
    started = time.monotonic()
    try:
        description = await describer.describe(prepared_photo(), [])
    finally:
        await describer.close()
    assert description.text.startswith("Two people")
    assert len(openai_fake.seen) == 2
    assert time.monotonic() - started >= 1.0


async def test_openai_429_asking_longer_than_the_timeout_fails_throttled(openai_fake: FakeOpenAI) -> None:
    openai_fake.misbehave("status", status=429, retry_after=9, times=None)
    describer = openai_describer(openai_fake, timeout_s=2)
    try:
        with pytest.raises(DescribeFailed) as failed:
            await describer.describe(prepared_photo(), [])
    finally:
        await describer.close()
    assert failed.value.kind is ErrorKind.THROTTLED
    assert len(openai_fake.seen) == 1


async def test_openai_5xx_retried_then_unavailable(openai_fake: FakeOpenAI) -> None:
    openai_fake.misbehave("status", status=502, times=None)
    describer = openai_describer(openai_fake, max_attempts=2)
    try:
        with pytest.raises(DescribeFailed) as failed:
            await describer.describe(prepared_photo(), [])
    finally:
        await describer.close()
    assert failed.value.kind is ErrorKind.UNAVAILABLE
    assert len(openai_fake.seen) == 2


async def test_openai_timeout(openai_fake: FakeOpenAI) -> None:
    openai_fake.misbehave("hang", times=None)
    describer = openai_describer(openai_fake, timeout_s=0.5)
    try:
        with pytest.raises(DescribeFailed) as failed:
            await describer.describe(prepared_photo(), [])
    finally:
        await describer.close()
    assert failed.value.kind is ErrorKind.TIMEOUT


async def test_openai_malformed_body(openai_fake: FakeOpenAI) -> None:
    openai_fake.misbehave("malformed")
    describer = openai_describer(openai_fake)
    try:
        with pytest.raises(DescribeFailed) as failed:
            await describer.describe(prepared_photo(), [])
    finally:
        await describer.close()
    assert failed.value.kind is ErrorKind.ERROR
    assert "gateway" not in str(failed.value)


async def test_openai_without_response_format_falls_back_to_plain_text(
    openai_fake: FakeOpenAI,
) -> None:
    openai_fake.refuse_response_format = True
    openai_fake.answer("A cake with candles on a table.")
    describer = openai_describer(openai_fake)
    try:
        description = await describer.describe(prepared_photo(), [])
    finally:
        await describer.close()
    assert (description.text, description.tags) == ("A cake with candles on a table.", ())
    assert ["response_format" in seen.body for seen in openai_fake.seen] == [True, False]


def test_hosted_is_decided_from_the_url() -> None:
    hosted = OpenAIDescriber(base_url="https://api.example.com/v1", model="m")
    assert hosted.hosted
    for url in ("http://localhost:11434/v1", "http://10.0.0.5:8000/v1", "http://ollama:11434/v1"):
        assert not OpenAIDescriber(base_url=url, model="m").hosted, url
