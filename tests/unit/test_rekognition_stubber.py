"""The Rekognition backend against botocore's Stubber: exact requests, documented response shapes.

The Stubber sits inside a real boto3 client, so every request we build is validated against the
service model and every canned response below against the documented output shapes. No HTTP is
involved; retries, signing and concurrency are tested against the fake server in
tests/integration/test_rekognition_fake.py.
"""

from __future__ import annotations

import io
import itertools
import logging
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from botocore.stub import Stubber
from PIL import Image

from core.analysis_types import (
    Analysis,
    Box,
    Celebrity,
    Color,
    DetectedObject,
    Emotion,
    ErrorKind,
    ExifData,
    Face,
    FaceAttributes,
    Feature,
    FeatureError,
    ImageProperties,
    Label,
    Landmark,
    ModerationLabel,
    Pose,
    PreparedPhoto,
    TextLine,
)
from core.errors import (
    PhotoRejected,
    RecognizerError,
    RecognizerThrottled,
    RecognizerUnavailable,
    TooLarge,
    TooSmall,
)
from core.recognizers.base import Recognizer
from core.recognizers.rekognition import (
    MAX_IMAGE_BYTES,
    RekognitionRecognizer,
    aws_credentials_available,
    plan_calls,
)
from core.recognizers.rekognition_errors import backend_failure, classify
from core.recognizers.rekognition_parse import (
    parse_celebrities,
    parse_faces,
    parse_labels,
    parse_moderation,
    parse_properties,
    parse_text,
)
from tests.fakes.aws_env import use_dummy_credentials

ACCESS_KEY = "AKIASTUBBERTEST00001"
SECRET_KEY = "stubber/Secret+Key/0000000000000000000000"


def make_photo(width: int = 320, height: int = 240) -> PreparedPhoto:
    image = Image.new("RGB", (width, height), (90, 140, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return PreparedPhoto(
        image=image,
        jpeg=buffer.getvalue(),
        source_format="JPEG",
        original_width=width,
        original_height=height,
        orientation=1,
        exif=ExifData(),
    )


PHOTO = make_photo()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, a region, no config files and no instance-metadata lookups."""
    use_dummy_credentials(monkeypatch, tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY)


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("rekognition", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def recognizer(client: Any, **options: Any) -> RekognitionRecognizer:
    return RekognitionRecognizer(client=client, **options)


def image_param() -> dict[str, Any]:
    return {"Image": {"Bytes": PHOTO.jpeg}}


# -- realistic, documented response shapes ----------------------------------------------------

DETECT_LABELS = {
    "Labels": [
        {
            "Name": "Person",
            "Confidence": 99.5,
            "Instances": [
                {
                    "BoundingBox": {"Width": 0.4, "Height": 0.9, "Left": -0.05, "Top": 0.2},
                    "Confidence": 99.1,
                    "DominantColors": [],
                },
                {
                    "BoundingBox": {"Width": 0.3, "Height": 0.7, "Left": 0.8, "Top": 0.25},
                    "Confidence": 87.0,
                    "DominantColors": [],
                },
            ],
            "Parents": [],
            "Aliases": [{"Name": "Human"}],
            "Categories": [{"Name": "Person Description"}],
        },
        {
            "Name": "Bicycle",
            "Confidence": 91.25,
            "Instances": [
                {
                    "BoundingBox": {"Width": 0.5, "Height": 0.4, "Left": 0.1, "Top": 0.5},
                    "Confidence": 90.0,
                    "DominantColors": [],
                }
            ],
            "Parents": [{"Name": "Transportation"}, {"Name": "Vehicle"}],
            "Aliases": [{"Name": "Bike"}],
            "Categories": [{"Name": "Vehicles and Automotive"}],
        },
        {
            "Name": "Outdoors",
            "Confidence": 80.0,
            "Instances": [],
            "Parents": [],
            "Aliases": [],
            "Categories": [{"Name": "Nature and Outdoors"}],
        },
    ],
    "LabelModelVersion": "3.0",
}

IMAGE_PROPERTIES = {
    "Quality": {"Brightness": 62.5, "Sharpness": 88.0, "Contrast": 40.0},
    "DominantColors": [
        {
            "Red": 30,
            "Green": 60,
            "Blue": 200,
            "HexCode": "#1e3cc8",
            "CSSColor": "mediumblue",
            "SimplifiedColor": "blue",
            "PixelPercent": 55.5,
        },
        {
            "Red": 255,
            "Green": 255,
            "Blue": 255,
            "HexCode": "FFFFFF",
            "CSSColor": "white",
            "SimplifiedColor": "white",
            "PixelPercent": 20.0,
        },
        {"Red": 12, "Green": 0, "Blue": 255, "CSSColor": "blue", "PixelPercent": 4.0},
    ],
    "Foreground": {
        "Quality": {"Brightness": 70.0, "Sharpness": 92.0},
        "DominantColors": [
            {
                "Red": 255,
                "Green": 255,
                "Blue": 255,
                "HexCode": "#FFFFFF",
                "CSSColor": "white",
                "SimplifiedColor": "white",
                "PixelPercent": 60.0,
            }
        ],
    },
    "Background": {
        "Quality": {"Brightness": 50.0, "Sharpness": 30.0},
        "DominantColors": [
            {
                "Red": 30,
                "Green": 60,
                "Blue": 200,
                "HexCode": "#1E3CC8",
                "CSSColor": "mediumblue",
                "SimplifiedColor": "blue",
                "PixelPercent": 70.0,
            }
        ],
    },
}

FACE_DETAIL = {
    "BoundingBox": {"Width": 0.2, "Height": 0.3, "Left": 0.9, "Top": -0.1},
    "AgeRange": {"Low": 25, "High": 35},
    "Smile": {"Value": True, "Confidence": 97.0},
    "Eyeglasses": {"Value": True, "Confidence": 92.0},
    "Sunglasses": {"Value": False, "Confidence": 99.0},
    "Gender": {"Value": "Male", "Confidence": 99.5},
    "Beard": {"Value": True, "Confidence": 85.0},
    "Mustache": {"Value": False, "Confidence": 70.0},
    "EyesOpen": {"Value": True, "Confidence": 98.0},
    "MouthOpen": {"Value": False, "Confidence": 91.0},
    "Emotions": [
        {"Type": "CALM", "Confidence": 12.5},
        {"Type": "HAPPY", "Confidence": 85.0},
        {"Type": "SAD", "Confidence": 0.5},
    ],
    "Landmarks": [
        {"Type": "eyeLeft", "X": 0.93, "Y": 0.05},
        {"Type": "eyeRight", "X": 1.02, "Y": 0.05},
        {"Type": "nose", "X": 0.97, "Y": -0.01},
    ],
    "Pose": {"Roll": -3.5, "Yaw": 12.0, "Pitch": 4.25},
    "Quality": {"Brightness": 70.0, "Sharpness": 80.0},
    "Confidence": 99.99,
    "FaceOccluded": {"Value": False, "Confidence": 99.0},
    "EyeDirection": {"Yaw": 2.0, "Pitch": -5.0, "Confidence": 99.0},
}

DETECT_FACES = {"FaceDetails": [FACE_DETAIL], "OrientationCorrection": "ROTATE_0"}


def text_detection(
    text: str, kind: str, ident: int, box: dict[str, float], parent: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "DetectedText": text,
        "Type": kind,
        "Id": ident,
        "Confidence": 97.0,
        "Geometry": {
            "BoundingBox": box,
            "Polygon": [
                {"X": box["Left"], "Y": box["Top"]},
                {"X": box["Left"] + box["Width"], "Y": box["Top"]},
                {"X": box["Left"] + box["Width"], "Y": box["Top"] + box["Height"]},
                {"X": box["Left"], "Y": box["Top"] + box["Height"]},
            ],
        },
    }
    if parent is not None:
        item["ParentId"] = parent
    return item


LINE_BOX = {"Width": 0.5, "Height": 0.1, "Left": 0.6, "Top": 0.8}
DETECT_TEXT = {
    "TextDetections": [
        text_detection("NO\x1b\u200b PARKING\u202e\n", "LINE", 0, LINE_BOX),
        text_detection("ZONE 3", "LINE", 1, {"Width": 0.2, "Height": 0.05, "Left": 0.1, "Top": 0.1}),
        text_detection("NO", "WORD", 2, {"Width": 0.1, "Height": 0.1, "Left": 0.6, "Top": 0.8}, parent=0),
        text_detection(
            "PARKING", "WORD", 3, {"Width": 0.3, "Height": 0.1, "Left": 0.75, "Top": 0.8}, parent=0
        ),
        text_detection("ZONE", "WORD", 4, {"Width": 0.1, "Height": 0.05, "Left": 0.1, "Top": 0.1}, parent=1),
        text_detection("3", "WORD", 5, {"Width": 0.05, "Height": 0.05, "Left": 0.25, "Top": 0.1}, parent=1),
    ],
    "TextModelVersion": "3.0",
}

DETECT_MODERATION = {
    "ModerationLabels": [
        {"Confidence": 92.5, "Name": "Violence", "ParentName": "", "TaxonomyLevel": 1},
        {"Confidence": 92.5, "Name": "Weapons", "ParentName": "Violence", "TaxonomyLevel": 2},
        {"Confidence": 60.0, "Name": "Weapon Violence", "ParentName": "Weapons", "TaxonomyLevel": 3},
    ],
    "ModerationModelVersion": "7.0",
    "ContentTypes": [{"Confidence": 80.0, "Name": "Animated"}],
}

RECOGNIZE_CELEBRITIES = {
    "CelebrityFaces": [
        {
            "Urls": ["www.imdb.com/name/nm0000000", "www.wikidata.org/wiki/Q1\x00"],
            "Name": "Jane\u200b Example",
            "Id": "1XyZ2w",
            "Face": {
                "BoundingBox": {"Width": 0.25, "Height": 0.35, "Left": 0.3, "Top": 0.2},
                "Confidence": 99.9,
                "Landmarks": [{"Type": "nose", "X": 0.42, "Y": 0.35}],
                "Pose": {"Roll": 1.0, "Yaw": 2.0, "Pitch": 3.0},
                "Quality": {"Brightness": 75.0, "Sharpness": 90.0},
                "Emotions": [{"Type": "HAPPY", "Confidence": 88.0}],
                "Smile": {"Value": True, "Confidence": 88.0},
            },
            "MatchConfidence": 99.0,
            "KnownGender": {"Type": "Female"},
        }
    ],
    "UnrecognizedFaces": [
        {"BoundingBox": {"Width": 0.1, "Height": 0.1, "Left": 0.7, "Top": 0.1}, "Confidence": 95.0}
    ],
}

EXPECTED_LABELS = (
    Label("Person", 0.995, parents=(), categories=("Person Description",)),
    Label("Bicycle", 0.9125, parents=("Transportation", "Vehicle"), categories=("Vehicles and Automotive",)),
    Label("Outdoors", 0.8, parents=(), categories=("Nature and Outdoors",)),
)
EXPECTED_OBJECTS = (
    DetectedObject("Person", 0.991, Box(0.0, 0.2, 0.35, 0.8)),
    DetectedObject("Person", 0.87, Box(0.8, 0.25, 0.2, 0.7)),
    DetectedObject("Bicycle", 0.9, Box(0.1, 0.5, 0.5, 0.4)),
)
EXPECTED_PROPERTIES = ImageProperties(
    brightness=0.625,
    sharpness=0.88,
    contrast=0.4,
    dominant_colors=(
        Color("#1E3CC8", 0.555, "blue"),
        Color("#FFFFFF", 0.2, "white"),
        Color("#0C00FF", 0.04, "blue"),
    ),
)
EXPECTED_FACE = Face(
    box=Box(0.9, 0.0, 0.1, 0.2),
    confidence=0.9999,
    attributes=FaceAttributes(
        age_low=25,
        age_high=35,
        smiling=True,
        eyeglasses=True,
        sunglasses=False,
        gender="Male",  # as the README promises, and as the embedded recognizer spells it
        beard=True,
        mustache=False,
        eyes_open=True,
        mouth_open=False,
        emotions=(Emotion("happy", 0.85), Emotion("calm", 0.125), Emotion("sad", 0.005)),
        pose=Pose(roll=-3.5, yaw=12.0, pitch=4.25),
    ),
    landmarks=(Landmark("eyeLeft", 0.93, 0.05), Landmark("eyeRight", 1.0, 0.05), Landmark("nose", 0.97, 0.0)),
)
EXPECTED_TEXT = (
    TextLine("NO PARKING", 0.97, Box(0.6, 0.8, 0.4, 0.1)),
    TextLine("ZONE 3", 0.97, Box(0.1, 0.1, 0.2, 0.05)),
)
EXPECTED_MODERATION = (
    ModerationLabel("Violence", 0.925, ""),
    ModerationLabel("Weapons", 0.925, "Violence"),
    ModerationLabel("Weapon Violence", 0.6, "Weapons"),
)
EXPECTED_CELEBRITY = Celebrity(
    name="Jane Example",
    confidence=0.99,
    box=Box(0.3, 0.2, 0.25, 0.35),
    urls=("www.imdb.com/name/nm0000000", "www.wikidata.org/wiki/Q1"),
)


def assert_same(actual: object, expected: object) -> None:
    assert repr_rounded(actual) == repr_rounded(expected)


def repr_rounded(value: object) -> object:
    """Dataclasses as nested tuples with floats rounded, so 0.995 from 99.5/100 compares exactly."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, tuple | list):
        return tuple(repr_rounded(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        fields = value.__dataclass_fields__
        return (type(value).__name__, tuple((name, repr_rounded(getattr(value, name))) for name in fields))
    return value


# -- requests ---------------------------------------------------------------------------------

ALL_FEATURES = tuple(f for f in Feature if f is not Feature.DESCRIBE)  # describing is not Rekognition's
COMBINATIONS = [
    frozenset(c) for n in range(1, len(ALL_FEATURES) + 1) for c in itertools.combinations(ALL_FEATURES, n)
]

EMPTY_RESPONSES: dict[str, dict[str, Any]] = {
    "DetectLabels": {"Labels": []},
    "DetectFaces": {"FaceDetails": []},
    "DetectText": {"TextDetections": []},
    "DetectModerationLabels": {"ModerationLabels": []},
    "RecognizeCelebrities": {"CelebrityFaces": [], "UnrecognizedFaces": []},
}
METHODS = {
    "DetectLabels": "detect_labels",
    "DetectFaces": "detect_faces",
    "DetectText": "detect_text",
    "DetectModerationLabels": "detect_moderation_labels",
    "RecognizeCelebrities": "recognize_celebrities",
}


def test_every_planned_request_is_valid_for_the_service_model(stubbed: tuple[Any, Stubber]) -> None:
    """All 63 feature combinations: each planned request passes botocore's parameter validation."""
    client, stubber = stubbed
    for features in COMBINATIONS:
        for call in plan_calls(features, min_confidence=70.5, max_labels=10):
            expected = {**image_param(), **call.params}
            stubber.add_response(METHODS[call.operation], EMPTY_RESPONSES[call.operation], expected)
            getattr(client, METHODS[call.operation])(**expected)


def test_one_billed_call_per_feature_with_labels_and_properties_sharing_detect_labels() -> None:
    every = plan_calls(frozenset(Feature))
    assert [c.operation for c in every] == [
        "DetectLabels",
        "DetectFaces",
        "DetectText",
        "DetectModerationLabels",
        "RecognizeCelebrities",
    ]
    assert every[0].features == {Feature.LABELS, Feature.PROPERTIES}
    assert plan_calls(frozenset()) == ()
    for features in COMBINATIONS:
        covered = [f for call in plan_calls(features) for f in call.features]
        assert sorted(covered) == sorted(features), "each feature is answered by exactly one call"


@pytest.mark.parametrize(
    ("features", "operation", "params"),
    [
        (
            {Feature.LABELS},
            "DetectLabels",
            {"Features": ["GENERAL_LABELS"], "MaxLabels": 25, "MinConfidence": 55.0},
        ),
        ({Feature.PROPERTIES}, "DetectLabels", {"Features": ["IMAGE_PROPERTIES"]}),
        (
            {Feature.LABELS, Feature.PROPERTIES},
            "DetectLabels",
            {"Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"], "MaxLabels": 25, "MinConfidence": 55.0},
        ),
        ({Feature.FACES}, "DetectFaces", {"Attributes": ["ALL"]}),
        ({Feature.TEXT}, "DetectText", {}),
        ({Feature.MODERATION}, "DetectModerationLabels", {}),
        ({Feature.CELEBRITIES}, "RecognizeCelebrities", {}),
    ],
    ids=["labels", "properties", "labels+properties", "faces", "text", "moderation", "celebrities"],
)
async def test_analyze_sends_exactly_one_pinned_request(
    stubbed: tuple[Any, Stubber], features: set[Feature], operation: str, params: dict[str, Any]
) -> None:
    client, stubber = stubbed
    stubber.add_response(METHODS[operation], EMPTY_RESPONSES[operation], {**image_param(), **params})
    backend = recognizer(client, celebrities=True)
    analysis = await backend.analyze(PHOTO, frozenset(features))
    assert analysis.errors == ()
    assert analysis.backend == "rekognition"
    assert analysis.features == frozenset(features)


async def test_label_thresholds_come_from_the_constructor(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    expected = {**image_param(), "Features": ["GENERAL_LABELS"], "MaxLabels": 7, "MinConfidence": 80.0}
    stubber.add_response("detect_labels", EMPTY_RESPONSES["DetectLabels"], expected)
    analysis = await recognizer(client, min_confidence=80, max_labels=7).analyze(
        PHOTO, frozenset({Feature.LABELS})
    )
    assert analysis.errors == ()


async def test_celebrities_only_when_enabled(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed
    plain = recognizer(client)
    assert isinstance(plain, Recognizer)
    assert plain.name == "rekognition"
    assert plain.capabilities == {
        Feature.LABELS,
        Feature.FACES,
        Feature.TEXT,
        Feature.MODERATION,
        Feature.PROPERTIES,
    }
    assert recognizer(client, celebrities=True).capabilities == frozenset(Feature) - {Feature.DESCRIBE}
    # Not enabled: nothing is called (the Stubber has no response queued) and nothing is claimed.
    analysis = await plain.analyze(PHOTO, frozenset({Feature.CELEBRITIES}))
    assert analysis == Analysis(backend="rekognition", features=frozenset())


# -- responses --------------------------------------------------------------------------------


async def test_labels_objects_and_properties_from_one_detect_labels(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("detect_labels", {**DETECT_LABELS, "ImageProperties": IMAGE_PROPERTIES})
    analysis = await recognizer(client).analyze(PHOTO, frozenset({Feature.LABELS, Feature.PROPERTIES}))
    assert analysis.errors == ()
    assert_same(analysis.labels, EXPECTED_LABELS)
    assert_same(analysis.objects, EXPECTED_OBJECTS)
    assert_same(analysis.properties, EXPECTED_PROPERTIES)


async def test_properties_alone_do_not_report_labels(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("detect_labels", {"Labels": [], "ImageProperties": IMAGE_PROPERTIES})
    analysis = await recognizer(client).analyze(PHOTO, frozenset({Feature.PROPERTIES}))
    assert (analysis.labels, analysis.objects) == ((), ())
    assert_same(analysis.properties, EXPECTED_PROPERTIES)


async def test_faces_with_all_attributes(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("detect_faces", DETECT_FACES)
    analysis = await recognizer(client).analyze(PHOTO, frozenset({Feature.FACES}))
    assert analysis.errors == ()
    assert_same(analysis.faces, (EXPECTED_FACE,))
    assert analysis.faces[0].attributes.top_emotion == Emotion("happy", 0.85)


async def test_faces_come_out_numbered_left_to_right_whatever_the_service_order(
    stubbed: tuple[Any, Stubber],
) -> None:
    """Rekognition lists faces by its own order; the analysis (and so the JSON) is left to right."""
    client, stubber = stubbed
    right = {**FACE_DETAIL, "BoundingBox": {"Width": 0.1, "Height": 0.2, "Left": 0.7, "Top": 0.1}}
    left = {**FACE_DETAIL, "BoundingBox": {"Width": 0.1, "Height": 0.2, "Left": 0.05, "Top": 0.4}}
    stubber.add_response("detect_faces", {"FaceDetails": [right, left]})
    analysis = await recognizer(client).analyze(PHOTO, frozenset({Feature.FACES}))
    assert [round(f.box.left, 2) for f in analysis.faces] == [0.05, 0.7]


async def test_text_keeps_cleaned_lines_only(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("detect_text", DETECT_TEXT)
    analysis = await recognizer(client).analyze(PHOTO, frozenset({Feature.TEXT}))
    assert_same(analysis.text, EXPECTED_TEXT)


async def test_moderation_labels_with_parents(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("detect_moderation_labels", DETECT_MODERATION)
    analysis = await recognizer(client).analyze(PHOTO, frozenset({Feature.MODERATION}))
    assert_same(analysis.moderation, EXPECTED_MODERATION)


async def test_celebrities_with_cleaned_names_and_urls(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("recognize_celebrities", RECOGNIZE_CELEBRITIES)
    analysis = await recognizer(client, celebrities=True).analyze(PHOTO, frozenset({Feature.CELEBRITIES}))
    assert_same(analysis.celebrities, (EXPECTED_CELEBRITY,))


def test_parsers_survive_missing_and_odd_fields() -> None:
    """A partial or odd answer yields what it contains instead of an exception."""
    odd: dict[str, Any] = {
        "Labels": [{"Confidence": 90.0}, "junk", {"Name": "Tree", "Instances": [{"Confidence": 50.0}]}],
        "ImageProperties": {"DominantColors": [{"CSSColor": "red"}, {"HexCode": "#12345G", "Red": 1}]},
        "FaceDetails": [
            {"Confidence": 90.0},
            {"BoundingBox": {"Width": 0.1, "Height": 0.1, "Left": 0, "Top": 0}},
        ],
        "TextDetections": [
            {"Type": "LINE", "DetectedText": "\x00\x01", "Geometry": {"BoundingBox": LINE_BOX}}
        ],
        "ModerationLabels": [{"Name": "Drugs", "Confidence": "high"}],
        "CelebrityFaces": [{"Name": "No Face"}],
    }
    labels, objects = parse_labels(odd)
    assert labels == (Label("Tree", 0.0),)
    assert objects == ()
    assert parse_properties(odd) == ImageProperties()
    assert parse_properties({}) is None
    assert parse_faces(odd) == (Face(Box(0.0, 0.0, 0.1, 0.1), 0.0),)
    assert parse_text(odd) == ()
    assert parse_moderation(odd) == (ModerationLabel("Drugs", 0.0),)
    assert parse_celebrities(odd) == ()
    assert parse_labels({"Labels": None}) == ((), ())


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "raised", "reason"),
    [
        ("ThrottlingException", 400, RecognizerThrottled, None),
        ("ProvisionedThroughputExceededException", 400, RecognizerThrottled, None),
        ("LimitExceededException", 400, RecognizerThrottled, None),
        ("InvalidImageFormatException", 400, PhotoRejected, "invalid_image"),
        ("ImageTooLargeException", 400, PhotoRejected, "invalid_image"),
        ("InvalidParameterException", 400, PhotoRejected, "invalid_image"),
        ("AccessDeniedException", 400, RecognizerError, None),
        ("UnrecognizedClientException", 400, RecognizerError, None),
        ("InternalServerError", 500, RecognizerUnavailable, None),
    ],
)
async def test_one_reason_for_every_feature_raises_the_matching_error(
    stubbed: tuple[Any, Stubber], code: str, status: int, raised: type[Exception], reason: str | None
) -> None:
    client, stubber = stubbed
    secret_message = f"Signature {ACCESS_KEY} {SECRET_KEY} was wrong"
    stubber.add_client_error("detect_labels", code, secret_message, http_status_code=status)
    with pytest.raises(raised) as caught:
        await recognizer(client).analyze(PHOTO, frozenset({Feature.LABELS, Feature.PROPERTIES}))
    if raised is RecognizerError:
        assert not isinstance(caught.value, RecognizerThrottled | RecognizerUnavailable)
    if reason is not None:
        assert isinstance(caught.value, PhotoRejected)
        assert caught.value.reason == reason
    text = str(caught.value)
    assert "Amazon Rekognition" in text
    assert ACCESS_KEY not in text
    assert SECRET_KEY not in text
    assert "Signature" not in text


async def test_an_unknown_error_stays_a_feature_error(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("detect_text", "SomethingNewException", "no idea", http_status_code=400)
    analysis = await recognizer(client).analyze(PHOTO, frozenset({Feature.TEXT}))
    assert analysis.errors == (
        FeatureError(
            Feature.TEXT,
            ErrorKind.ERROR,
            "Amazon Rekognition returned an unexpected error (SomethingNewException).",
        ),
    )
    assert analysis.features == {Feature.TEXT}


async def test_failures_are_logged_without_service_text(
    stubbed: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    client, stubber = stubbed
    stubber.add_client_error("detect_faces", "AccessDeniedException", f"user {ACCESS_KEY} is not authorized")
    caplog.set_level(logging.DEBUG, logger="core")
    with pytest.raises(RecognizerError, match=r"rekognition:DetectFaces permission"):
        await recognizer(client).analyze(PHOTO, frozenset({Feature.FACES}))
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("core"))
    assert "AccessDeniedException" in logged
    assert ACCESS_KEY not in logged


def test_transport_failures_are_classified() -> None:
    def kind(error: Exception) -> tuple[ErrorKind, str]:
        return classify(error, "DetectFaces", read_timeout=7.5, connect_timeout=2)

    assert kind(ReadTimeoutError(endpoint_url="https://x")) == (
        ErrorKind.TIMEOUT,
        "Amazon Rekognition did not answer within 7.5 s.",
    )
    retried = classify(
        ReadTimeoutError(endpoint_url="https://x"),
        "DetectFaces",
        read_timeout=20,
        connect_timeout=2,
        attempts=3,
        elapsed=60.4,
    )
    assert retried[1] == "Amazon Rekognition did not answer: 3 attempts waited 20 s each, 60 s in all."
    refused = classify(
        EndpointConnectionError(endpoint_url="https://x"),
        "DetectFaces",
        read_timeout=20,
        connect_timeout=2,
        attempts=3,
    )
    assert refused[1] == "Could not connect to Amazon Rekognition (network error after 3 attempts)."
    assert kind(EndpointConnectionError(endpoint_url="https://x"))[0] is ErrorKind.UNAVAILABLE
    assert kind(NoCredentialsError())[0] is ErrorKind.ACCESS_DENIED
    assert kind(KeyError("Labels"))[0] is ErrorKind.ERROR


def failure(feature: Feature, kind: ErrorKind) -> FeatureError:
    return FeatureError(feature, kind, f"{feature} {kind}")


def test_backend_failure_needs_every_feature_and_one_reason() -> None:
    both = {Feature.LABELS, Feature.FACES}
    timeout_and_down = [
        failure(Feature.LABELS, ErrorKind.TIMEOUT),
        failure(Feature.FACES, ErrorKind.UNAVAILABLE),
    ]
    assert isinstance(backend_failure(both, timeout_and_down), RecognizerUnavailable)
    assert str(backend_failure(both, timeout_and_down)) == "labels timeout"
    # One feature worked: no raise.
    assert backend_failure(both, [failure(Feature.FACES, ErrorKind.THROTTLED)]) is None
    # Different reasons: no single cause to report.
    mixed = [failure(Feature.LABELS, ErrorKind.THROTTLED), failure(Feature.FACES, ErrorKind.ACCESS_DENIED)]
    assert backend_failure(both, mixed) is None
    # Plain errors stay per feature.
    plain = [failure(Feature.LABELS, ErrorKind.ERROR), failure(Feature.FACES, ErrorKind.ERROR)]
    assert backend_failure(both, plain) is None
    assert backend_failure(set(), []) is None


async def test_images_outside_the_limits_are_refused_before_any_call(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed  # no response queued: a call would fail the test
    big = PreparedPhoto(
        image=PHOTO.image,
        jpeg=PHOTO.jpeg + b"\0" * MAX_IMAGE_BYTES,
        source_format="JPEG",
        original_width=320,
        original_height=240,
        orientation=1,
        exif=ExifData(),
    )
    with pytest.raises(TooLarge, match="at most 5 MB"):
        await recognizer(client).analyze(big, frozenset({Feature.LABELS}))
    with pytest.raises(TooSmall, match="at least 80 pixels"):
        await recognizer(client).analyze(make_photo(79, 200), frozenset({Feature.LABELS}))


def test_constructor_needs_a_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(RecognizerError, match="No AWS region"):
        RekognitionRecognizer()
    RekognitionRecognizer(region="eu-west-1").close()


# -- aws_credentials_available ------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local port that accepts TCP connections and never answers: a stand-in metadata service."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server


def was_contacted(server: socket.socket) -> bool:
    readable, _, _ = select.select([server], [], [], 0)
    return bool(readable)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, listener: socket.socket) -> Path:
    """Nothing configured, and the instance-metadata service pointed at `listener`, NOT disabled.

    Leaving AWS_EC2_METADATA_DISABLED unset is the point: any lookup would reach the listener,
    so the tests can see that `aws_credentials_available` never makes one.
    """
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    port = listener.getsockname()[1]
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return tmp_path


def test_the_listener_would_see_an_instance_metadata_lookup(
    no_credentials: Path, listener: socket.socket
) -> None:
    """Control: botocore's full chain does contact the metadata service here, so silence means something."""
    assert botocore.session.Session().get_credentials() is None
    assert was_contacted(listener)


def test_no_credentials_without_contacting_the_metadata_service(
    no_credentials: Path, listener: socket.socket
) -> None:
    assert aws_credentials_available() is False
    assert not was_contacted(listener)


def test_credentials_from_the_environment(no_credentials: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    assert aws_credentials_available() is False, "a key without its secret is not usable"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert aws_credentials_available() is True


def test_credentials_from_the_shared_file_and_profiles(
    no_credentials: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_credentials / "credentials").write_text(
        f"[work]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    assert aws_credentials_available() is False, "the default profile has none"
    monkeypatch.setenv("AWS_PROFILE", "work")
    assert aws_credentials_available() is True
    monkeypatch.setenv("AWS_PROFILE", "missing")
    assert aws_credentials_available() is False


def test_remote_sources_count_when_configured_without_being_contacted(
    no_credentials: Path, monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    marker = no_credentials / "process-ran"
    (no_credentials / "config").write_text(
        f"[profile proc]\ncredential_process = touch {marker}\n"
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
        "credential_source = Ec2InstanceMetadata\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "proc")
    assert aws_credentials_available() is True
    assert not marker.exists()
    monkeypatch.setenv("AWS_PROFILE", "role")
    assert aws_credentials_available() is True
    monkeypatch.delenv("AWS_PROFILE")
    port = listener.getsockname()[1]
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{port}/creds")
    assert aws_credentials_available() is True
    assert not was_contacted(listener)


async def test_a_closed_recognizer_refuses_new_work(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed
    backend = recognizer(client)
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(RecognizerUnavailable, match="shut down"):
        await backend.analyze(PHOTO, frozenset({Feature.LABELS}))
