"""The JSON document: one spelling per value whatever the backend, faces numbered as everywhere else.

Findings of issue 21 (Rekognition path): gender came as "female" from Rekognition and "Female" from
the embedded recognizer; faces kept the backend's order while the summary and the annotated image
numbered them left to right; `celebrities: []` appeared when the feature was not enabled; top-level
moderation labels had `parent: ""` instead of null.
"""

from __future__ import annotations

import pytest
from PIL import Image

from bot.analysis_json import analysis_json
from core.analysis_types import (
    Analysis,
    Box,
    Celebrity,
    ExifData,
    Face,
    FaceAttributes,
    Feature,
    ModerationLabel,
    PreparedPhoto,
)
from core.summary import build_summary, render_text

PREPARED = PreparedPhoto(
    image=Image.new("RGB", (400, 300)),
    jpeg=b"",
    source_format="JPEG",
    original_width=400,
    original_height=300,
    orientation=1,
    exif=ExifData(),
)


def document(analysis: Analysis) -> dict[str, object]:
    return analysis_json(analysis, PREPARED, file="p.jpg", annotated="p.annotated.jpg")


def face(left: float, top: float = 0.3, **attributes: object) -> Face:
    return Face(Box(left, top, 0.1, 0.1), 0.99, FaceAttributes(**attributes))  # type: ignore[arg-type]


@pytest.mark.parametrize("spelled", ["female", "Female", "FEMALE", " female "])
def test_gender_is_spelled_as_documented_whatever_the_backend_sent(spelled: str) -> None:
    analysis = Analysis(backend="x", features=frozenset({Feature.FACES}), faces=(face(0.1, gender=spelled),))
    faces = document(analysis)["faces"]
    assert isinstance(faces, list)
    assert faces[0]["attributes"]["gender"] == "Female"


def test_an_unknown_gender_word_is_left_out() -> None:
    assert FaceAttributes(gender="<b>x</b>").gender is None
    assert FaceAttributes(gender="male").gender == "Male"
    assert FaceAttributes().gender is None


def test_faces_are_listed_in_the_order_they_are_numbered() -> None:
    """JSON index + 1 is the number on the annotated image and in the summary (left to right)."""
    right = face(0.7, age_low=60, age_high=70)
    left = face(0.1, age_low=20, age_high=25)
    middle = face(0.4, age_low=40, age_high=45)
    analysis = Analysis(backend="x", features=frozenset({Feature.FACES}), faces=(right, left, middle))

    assert analysis.faces == (left, middle, right)
    faces = document(analysis)["faces"]
    assert isinstance(faces, list)
    assert [f["attributes"]["age_low"] for f in faces] == [20, 40, 60]
    text = render_text(build_summary(analysis, ExifData(), show_location=False))
    assert "#1 20-25" in text
    assert "#3 60-70" in text


def test_faces_in_one_column_are_numbered_top_to_bottom() -> None:
    lower, upper = face(0.2, top=0.6), face(0.2, top=0.1)
    assert Analysis(backend="x", faces=(lower, upper)).faces == (upper, lower)


def test_celebrities_are_absent_unless_the_feature_ran() -> None:
    plain = document(Analysis(backend="rekognition", features=frozenset({Feature.LABELS})))
    assert "celebrities" not in plain
    found = Celebrity("Jane Example", 0.98, Box(0.1, 0.1, 0.2, 0.2))
    enabled = document(
        Analysis(backend="rekognition", features=frozenset({Feature.CELEBRITIES}), celebrities=(found,))
    )
    assert enabled["celebrities"] == [
        {"name": "Jane Example", "confidence": 0.98, "box": [0.1, 0.1, 0.2, 0.2]}
    ]
    none_found = document(Analysis(backend="rekognition", features=frozenset({Feature.CELEBRITIES})))
    assert none_found["celebrities"] == []


def test_a_top_level_moderation_label_has_a_null_parent() -> None:
    analysis = Analysis(
        backend="rekognition",
        features=frozenset({Feature.MODERATION}),
        moderation=(ModerationLabel("Violence", 0.9), ModerationLabel("Weapons", 0.9, "Violence")),
    )
    assert document(analysis)["moderation"] == [
        {"name": "Violence", "confidence": 0.9, "parent": None},
        {"name": "Weapons", "confidence": 0.9, "parent": "Violence"},
    ]
