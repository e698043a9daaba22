"""The Rekognition backend with a real boto3 client over real HTTP, against the local fake service.

These tests cover what the Stubber cannot: SigV4 signing, botocore's standard-mode retries (the
`amz-sdk-request` attempt header), read timeouts, connection errors, and the calls for one photo
running at the same time. Retries use botocore's own backoff (at most about a second per retry),
so scripted failures keep `max_attempts` small.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from core.analysis_types import Box, ErrorKind, ExifData, Feature, PreparedPhoto
from core.errors import PhotoRejected, RecognizerError, RecognizerThrottled, RecognizerUnavailable, TooLarge
from core.recognizers.rekognition import MAX_IMAGE_BYTES, RekognitionRecognizer
from tests.fakes.aws_env import use_dummy_credentials
from tests.fakes.rekognition import FACE_BOX, PERSON_BOX, TEXT_LINE, FakeRekognition

ACCESS_KEY = "AKIAFAKEINTEGRATION1"
SECRET_KEY = "fake/Integration+Secret/000000000000000000"
EVERY_OPERATION = {
    "DetectLabels",
    "DetectFaces",
    "DetectText",
    "DetectModerationLabels",
    "RecognizeCelebrities",
}


def make_photo(width: int = 320, height: int = 240, fmt: str = "JPEG") -> PreparedPhoto:
    image = Image.new("RGB", (width, height), (200, 120, 60))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return PreparedPhoto(
        image=image,
        jpeg=buffer.getvalue(),
        source_format=fmt,
        original_width=width,
        original_height=height,
        orientation=1,
        exif=ExifData(),
    )


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials from the environment, nothing from files, no instance-metadata lookups."""
    use_dummy_credentials(monkeypatch, tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY)


@pytest.fixture
def fake() -> Iterator[FakeRekognition]:
    with FakeRekognition() as server:
        yield server


@pytest.fixture
def make_recognizer(fake: FakeRekognition) -> Iterator[Callable[..., RekognitionRecognizer]]:
    made: list[RekognitionRecognizer] = []

    def build(**options: Any) -> RekognitionRecognizer:
        settings: dict[str, Any] = {
            "region": "us-east-1",
            "endpoint_url": fake.url,
            "max_attempts": 3,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
        }
        settings.update(options)
        recognizer = RekognitionRecognizer(**settings)
        made.append(recognizer)
        return recognizer

    yield build
    for recognizer in made:
        recognizer.close()


PHOTO = make_photo()


async def test_all_features_in_one_analyze(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    analysis = await make_recognizer(celebrities=True).analyze(PHOTO, frozenset(Feature))

    assert analysis.errors == ()
    assert analysis.features == frozenset(Feature) - {Feature.DESCRIBE}
    requests = {r.operation: r for r in fake.requests}
    assert len(fake.requests) == 5
    assert set(requests) == EVERY_OPERATION
    assert requests["DetectLabels"].params == {
        "Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"],
        "MaxLabels": 25,
        "MinConfidence": 55.0,
    }
    assert requests["DetectFaces"].params == {"Attributes": ["ALL"]}
    for operation in ("DetectText", "DetectModerationLabels", "RecognizeCelebrities"):
        assert requests[operation].params == {}
    for request in fake.requests:
        assert request.image == PHOTO.jpeg
        assert request.signed
        assert request.access_key_id == ACCESS_KEY
        assert (request.attempt, request.max_attempts) == (1, 3)

    assert [label.name for label in analysis.labels] == ["Person", "Adult", "Face", "Text"]
    assert analysis.labels[0].categories == ("Person Description",)
    assert analysis.labels[2].parents == ("Head", "Person")
    person = Box(PERSON_BOX["Left"], PERSON_BOX["Top"], PERSON_BOX["Width"], PERSON_BOX["Height"])
    assert [(o.name, o.box) for o in analysis.objects] == [("Person", person), ("Adult", person)]
    assert analysis.objects[0].confidence == pytest.approx(0.992)
    (face,) = analysis.faces
    assert face.box == Box(FACE_BOX["Left"], FACE_BOX["Top"], FACE_BOX["Width"], FACE_BOX["Height"])
    assert (face.attributes.age_low, face.attributes.age_high, face.attributes.smiling) == (26, 34, True)
    assert face.attributes.top_emotion is not None
    assert face.attributes.top_emotion.name == "happy"
    assert [line.text for line in analysis.text] == [TEXT_LINE]
    assert [(m.name, m.parent) for m in analysis.moderation] == [
        ("Alcohol", ""),
        ("Alcoholic Beverages", "Alcohol"),
    ]
    assert analysis.properties is not None
    assert analysis.properties.brightness == pytest.approx(0.625)
    assert [(c.hex, c.name) for c in analysis.properties.dominant_colors] == [
        ("#23272A", "black"),
        ("#D2B48C", "brown"),
    ]
    assert [c.name for c in analysis.celebrities] == ["Ada Example"]


async def test_properties_without_labels_ask_only_for_image_properties(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    analysis = await make_recognizer().analyze(PHOTO, frozenset({Feature.PROPERTIES, Feature.FACES}))
    assert analysis.errors == ()
    assert sorted((r.operation, str(r.params)) for r in fake.requests) == [
        ("DetectFaces", str({"Attributes": ["ALL"]})),
        ("DetectLabels", str({"Features": ["IMAGE_PROPERTIES"]})),
    ]
    assert (analysis.labels, analysis.objects) == ((), ())
    assert analysis.properties is not None
    assert analysis.properties.sharpness == pytest.approx(0.864)


async def test_calls_for_one_photo_overlap(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.set_delay(0.3)
    features = frozenset({Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION})
    analysis = await make_recognizer().analyze(PHOTO, features)
    assert analysis.errors == ()
    requests = fake.requests
    assert len(requests) == 4
    # Every call started before any of them finished: they were in flight together.
    assert max(r.started for r in requests) < min(r.ended for r in requests)


async def test_photos_analysed_together_share_the_pool(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.set_delay(0.2)
    recognizer = make_recognizer(concurrent_photos=2)
    features = frozenset({Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION})
    first, second = await asyncio.gather(
        recognizer.analyze(PHOTO, features), recognizer.analyze(PHOTO, features)
    )
    assert first.errors == second.errors == ()
    requests = fake.requests
    assert len(requests) == 8
    assert max(r.started for r in requests) < min(r.ended for r in requests)


async def test_throttling_is_retried_then_succeeds(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.throttle(operation="DetectFaces", times=2)
    analysis = await make_recognizer(max_attempts=3).analyze(PHOTO, frozenset({Feature.FACES, Feature.TEXT}))
    assert analysis.errors == ()
    assert len(analysis.faces) == 1
    faces = fake.requests_for("DetectFaces")
    assert [(r.attempt, r.error_type) for r in faces] == [
        (1, "ThrottlingException"),
        (2, "ThrottlingException"),
        (3, None),
    ]
    assert [r.attempt for r in fake.requests_for("DetectText")] == [1]


async def test_throttling_left_after_retries_fails_only_that_feature(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.throttle(operation="DetectFaces")
    analysis = await make_recognizer(max_attempts=2).analyze(
        PHOTO, frozenset({Feature.LABELS, Feature.FACES})
    )
    assert analysis.failed == {Feature.FACES}
    (error,) = analysis.errors
    assert error.kind is ErrorKind.THROTTLED
    assert "after 2 attempts" in error.message
    assert analysis.faces == ()
    assert [label.name for label in analysis.labels][:1] == ["Person"]
    assert [r.attempt for r in fake.requests_for("DetectFaces")] == [1, 2]


async def test_every_feature_throttled_raises(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.fail("ProvisionedThroughputExceededException")
    with pytest.raises(RecognizerThrottled, match="rate-limiting"):
        await make_recognizer(max_attempts=1).analyze(PHOTO, frozenset({Feature.LABELS, Feature.TEXT}))
    assert {r.operation for r in fake.requests} == {"DetectLabels", "DetectText"}


async def test_an_image_the_service_cannot_read_is_the_users_fault(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    gif = make_photo(fmt="GIF")
    with pytest.raises(PhotoRejected, match="JPEG and PNG") as caught:
        await make_recognizer().analyze(gif, frozenset({Feature.LABELS, Feature.FACES}))
    assert caught.value.reason == "invalid_image"
    # Not retried: an invalid image stays invalid.
    assert sorted((r.operation, r.attempt, r.error_type) for r in fake.requests) == [
        ("DetectFaces", 1, "InvalidImageFormatException"),
        ("DetectLabels", 1, "InvalidImageFormatException"),
    ]


async def test_one_feature_refusing_the_image_leaves_the_others(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.fail("InvalidParameterException", operation="DetectText", message="Request has invalid parameters")
    analysis = await make_recognizer().analyze(PHOTO, frozenset({Feature.TEXT, Feature.FACES}))
    assert [(e.feature, e.kind) for e in analysis.errors] == [(Feature.TEXT, ErrorKind.INVALID_IMAGE)]
    assert len(analysis.faces) == 1


async def test_an_image_over_5_mb_is_refused_before_upload(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    big = PreparedPhoto(
        image=PHOTO.image,
        jpeg=PHOTO.jpeg + bytes(MAX_IMAGE_BYTES),
        source_format="JPEG",
        original_width=PHOTO.width,
        original_height=PHOTO.height,
        orientation=1,
        exif=ExifData(),
    )
    with pytest.raises(TooLarge, match="5 MB"):
        await make_recognizer().analyze(big, frozenset({Feature.LABELS}))
    assert fake.requests == []


def test_the_fake_refuses_what_rekognition_refuses(fake: FakeRekognition) -> None:
    """The fake's own checks, through a plain boto3 client: size, format, minimum dimensions."""
    client = boto3.client("rekognition", endpoint_url=fake.url, region_name="us-east-1")

    def error_of(data: bytes) -> str:
        with pytest.raises(ClientError) as caught:
            client.detect_labels(Image={"Bytes": data})
        return str(caught.value.response["Error"]["Code"])

    assert error_of(PHOTO.jpeg + bytes(MAX_IMAGE_BYTES)) == "ImageTooLargeException"
    assert error_of(make_photo(fmt="GIF").jpeg) == "InvalidImageFormatException"
    assert error_of(b"\xff\xd8\xff\xe0 not really a jpeg") == "InvalidImageFormatException"
    assert error_of(make_photo(200, 79).jpeg) == "InvalidParameterException"
    smallest_png = make_photo(80, 80, fmt="PNG").jpeg
    assert client.detect_labels(Image={"Bytes": smallest_png})["Labels"]
    client.close()


async def test_a_slow_answer_is_a_timeout(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.set_delay(2.0, operation="DetectFaces")
    recognizer = make_recognizer(max_attempts=1, read_timeout=0.3)
    analysis = await recognizer.analyze(PHOTO, frozenset({Feature.FACES, Feature.LABELS}))
    assert [(e.feature, e.kind) for e in analysis.errors] == [(Feature.FACES, ErrorKind.TIMEOUT)]
    assert "0.3 s" in analysis.errors[0].message
    assert analysis.labels


async def test_a_timeout_after_retries_says_how_long_the_photo_waited(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    """Three attempts of 0.3 s held the photo about 0.9 s: the message says so, not "within 0.3 s"."""
    fake.set_delay(2.0, operation="DetectFaces")
    recognizer = make_recognizer(max_attempts=3, read_timeout=0.3)
    analysis = await recognizer.analyze(PHOTO, frozenset({Feature.FACES, Feature.LABELS}))
    assert [(e.feature, e.kind) for e in analysis.errors] == [(Feature.FACES, ErrorKind.TIMEOUT)]
    assert fake.attempts_arrived("DetectFaces") == [1, 2, 3]
    message = analysis.errors[0].message
    assert "3 attempts" in message
    assert "0.3 s each" in message
    waited = re.search(r"(\d+(?:\.\d)?) s in all", message)
    assert waited is not None, message
    assert 0.9 <= float(waited.group(1)) < 10


async def test_every_feature_timing_out_means_unavailable(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.set_delay(2.0)
    with pytest.raises(RecognizerUnavailable, match="did not answer"):
        await make_recognizer(max_attempts=1, read_timeout=0.3).analyze(PHOTO, frozenset({Feature.TEXT}))


async def test_server_errors_are_retried_then_unavailable(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.fail("InternalServerError", status=500)
    with pytest.raises(RecognizerUnavailable, match="server error"):
        await make_recognizer(max_attempts=2).analyze(PHOTO, frozenset({Feature.MODERATION}))
    assert [r.attempt for r in fake.requests] == [1, 2]


async def test_nothing_listening_is_unavailable(
    make_recognizer: Callable[..., RekognitionRecognizer],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    recognizer = make_recognizer(endpoint_url=f"http://127.0.0.1:{closed_port}", max_attempts=1)
    with pytest.raises(RecognizerUnavailable, match="Could not connect"):
        await recognizer.analyze(PHOTO, frozenset({Feature.LABELS}))


async def test_credentials_never_reach_messages_or_logs(
    fake: FakeRekognition,
    make_recognizer: Callable[..., RekognitionRecognizer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Like AWS's signature errors, the fake echoes the signed Authorization header back.
    echo = "The request signature we calculated does not match. Authorization: {authorization} " + SECRET_KEY
    fake.fail("UnrecognizedClientException", message=echo)
    caplog.set_level(logging.DEBUG, logger="core")
    with pytest.raises(RecognizerError) as caught:
        await make_recognizer().analyze(PHOTO, frozenset({Feature.LABELS, Feature.FACES}))
    assert not isinstance(caught.value, RecognizerThrottled | RecognizerUnavailable)
    assert "did not accept the AWS credentials" in str(caught.value)
    assert fake.requests[0].access_key_id == ACCESS_KEY  # the key really was in the header
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("core"))
    assert "UnrecognizedClientException" in ours
    for text in (str(caught.value), ours):
        assert ACCESS_KEY not in text
        assert SECRET_KEY not in text


async def test_one_feature_denied_names_the_missing_permission(
    fake: FakeRekognition, make_recognizer: Callable[..., RekognitionRecognizer]
) -> None:
    fake.fail(
        "AccessDeniedException", operation="DetectModerationLabels", message=f"User {ACCESS_KEY} denied"
    )
    analysis = await make_recognizer().analyze(PHOTO, frozenset({Feature.MODERATION, Feature.TEXT}))
    (error,) = analysis.errors
    assert (error.feature, error.kind) == (Feature.MODERATION, ErrorKind.ACCESS_DENIED)
    assert "rekognition:DetectModerationLabels" in error.message
    assert ACCESS_KEY not in error.message
    assert [line.text for line in analysis.text] == [TEXT_LINE]


async def test_missing_credentials_are_reported_without_a_request(
    fake: FakeRekognition,
    make_recognizer: Callable[..., RekognitionRecognizer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(RecognizerError, match="No AWS credentials"):
        await make_recognizer().analyze(PHOTO, frozenset({Feature.LABELS}))
    assert fake.requests == []


async def test_the_fake_works_as_an_async_context_manager() -> None:
    async with FakeRekognition() as server:
        recognizer = RekognitionRecognizer(region="us-east-1", endpoint_url=server.url)
        try:
            analysis = await recognizer.analyze(PHOTO, frozenset({Feature.TEXT}))
        finally:
            recognizer.close()
    assert [line.text for line in analysis.text] == [TEXT_LINE]


async def test_the_standard_aws_endpoint_variable_is_honoured(
    fake: FakeRekognition, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_ENDPOINT_URL_REKOGNITION (the AWS SDKs' own variable) points the client at an endpoint
    without PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL, as docs/recognizers/rekognition-costs.md says."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", fake.url)
    recognizer = RekognitionRecognizer(max_attempts=1)
    try:
        analysis = await recognizer.analyze(PHOTO, frozenset({Feature.TEXT}))
    finally:
        recognizer.close()
    assert analysis.errors == ()
    assert [r.operation for r in fake.requests] == ["DetectText"]
    assert fake.requests[0].signed
