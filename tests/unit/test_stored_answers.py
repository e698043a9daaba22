"""An answer kept in the queue through a platform outage reads back exactly as it was written."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from PIL import Image

from bot.photo_requests import AnalysisReply, FailureReply, FileRef, PhotoRequest
from bot.stored_answers import StoredAnswer, UnreadableAnswer, dump_answer, load_answer
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
    GpsPosition,
    ImageProperties,
    Label,
    Landmark,
    ModerationLabel,
    Pose,
    PreparedPhoto,
    TextLine,
)

REQUEST = PhotoRequest(
    platform="telegram",
    user_id="42",
    chat_id="-100",
    message_id="7",
    file=FileRef("AgAD-ä", size=1234, name="IMG.jpg", mime_type="image/jpeg"),
    features=frozenset({Feature.LABELS, Feature.FACES}),
    reply_to={"chat_id": -100, "message_id": 7, "compressed": True},
    private=False,
)
BOX = Box(0.1, 0.2, 0.3, 0.4)
EXIF = ExifData(
    make="Canon",
    datetime_original=datetime(2024, 5, 14, 18, 3, tzinfo=UTC),
    exposure_time=1 / 120,
    iso=100,
    gps=GpsPosition(48.8583, 2.2945, altitude=35.0),
)
ANALYSIS = Analysis(
    backend="rekognition",
    features=frozenset({Feature.LABELS, Feature.FACES, Feature.PROPERTIES}),
    labels=(Label("Tower", 98.5, parents=("Building",), categories=("Buildings",)),),
    objects=(DetectedObject("Person", 91.0, BOX),),
    faces=(
        Face(
            BOX,
            99.0,
            FaceAttributes(
                age_low=20,
                age_high=30,
                gender="Female",
                smiling=True,
                emotions=(Emotion("HAPPY", 90.0),),
                pose=Pose(1.0, -2.0, 3.5),
            ),
            landmarks=(Landmark("eyeLeft", 0.2, 0.3),),
        ),
    ),
    text=(TextLine("EXIT", 97.0, BOX),),
    moderation=(ModerationLabel("Smoking", 60.0, parent="Drugs"),),
    celebrities=(Celebrity("Someone", 99.0, BOX, urls=("example.com",)),),
    properties=ImageProperties(brightness=70.0, dominant_colors=(Color("#aabbcc", 12.5, "blue"),)),
    errors=(FeatureError(Feature.TEXT, ErrorKind.THROTTLED, "slow down"),),
)


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "JPEG")
    return out.getvalue()


def analysis_reply(with_prepared: bool = True) -> AnalysisReply:
    prepared_jpeg = jpeg(64, 48)
    prepared = PreparedPhoto(
        image=Image.open(io.BytesIO(prepared_jpeg)),
        jpeg=prepared_jpeg,
        source_format="HEIF",
        original_width=4032,
        original_height=3024,
        orientation=6,
        exif=EXIF,
    )
    return AnalysisReply(
        request=REQUEST,
        analysis=ANALYSIS,
        exif=EXIF,
        annotated_jpeg=jpeg(64, 48),
        width=64,
        height=48,
        capabilities=frozenset(Feature),
        show_location=False,
        prepared=prepared if with_prepared else None,
    )


def test_an_analysis_reads_back_equal_with_its_image() -> None:
    reply = analysis_reply()

    back = load_answer(dump_answer(StoredAnswer(reply), keep_prepared=True))

    assert back.dead_error is None
    restored = back.outcome
    assert isinstance(restored, AnalysisReply)
    assert restored.request == reply.request
    assert restored.analysis == reply.analysis
    assert restored.exif == reply.exif
    assert restored.annotated_jpeg == reply.annotated_jpeg
    assert (restored.width, restored.height, restored.show_location) == (64, 48, False)
    assert restored.capabilities == reply.capabilities
    assert restored.prepared is not None
    assert reply.prepared is not None
    assert restored.prepared.jpeg == reply.prepared.jpeg
    assert (restored.prepared.width, restored.prepared.height) == (64, 48)
    assert restored.prepared.exif == reply.prepared.exif
    assert restored.prepared.orientation == 6


def test_a_chat_answer_is_stored_without_the_prepared_image() -> None:
    with_it = dump_answer(StoredAnswer(analysis_reply()), keep_prepared=True)
    without = dump_answer(StoredAnswer(analysis_reply()), keep_prepared=False)

    assert len(without) < len(with_it)
    restored = load_answer(without).outcome
    assert isinstance(restored, AnalysisReply)
    assert restored.prepared is None


def test_a_failure_notice_reads_back_with_its_dead_letter_reason() -> None:
    notice = FailureReply(REQUEST, "unavailable", "Sorry, I couldn't download that photo.", False)

    back = load_answer(dump_answer(StoredAnswer(notice, dead_error="fetch failed: 502"), keep_prepared=True))

    assert back == StoredAnswer(notice, dead_error="fetch failed: 502")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"version": 99, "outcome": {}}),
        json.dumps({"version": 1, "outcome": {"kind": "pickle", "request": REQUEST.to_json()}}),
        json.dumps({"version": 1, "outcome": {"kind": "failure"}}),
    ],
)
def test_anything_else_is_refused_with_a_typed_error(text: str) -> None:
    with pytest.raises(UnreadableAnswer):
        load_answer(text)


def test_a_stored_field_of_the_wrong_type_is_refused() -> None:
    document = json.loads(dump_answer(StoredAnswer(analysis_reply()), keep_prepared=False))
    document["outcome"]["analysis"]["labels"][0]["name"] = {"__class__": "os.system"}

    with pytest.raises(UnreadableAnswer):
        load_answer(json.dumps(document))
