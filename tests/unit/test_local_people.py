"""Person boxes: built from the pose detector's proportions and grown to hold each person's own face."""

from __future__ import annotations

import numpy as np

from core.analysis_types import Box, DetectedObject, Face
from core.recognizers.local import ssd
from core.recognizers.local.people import BODY_WIDTH_IN_FACES, body_box, include_faces


def person(left: float, width: float) -> DetectedObject:
    return DetectedObject("Person", 0.9, Box(left, 0.3, width, 0.7))


def face(left: float, top: float = 0.1, size: float = 0.1) -> Face:
    return Face(box=Box(left, top, size, size), confidence=0.99)


def test_each_face_grows_only_the_person_it_belongs_to() -> None:
    # Two people standing close: both boxes reach over the other's face.
    left, right = person(0.0, 0.6), person(0.4, 0.6)
    grown = include_faces((left, right), (face(0.2), face(0.7)))
    assert grown[0].box.left == 0.0
    assert grown[0].box.left + grown[0].box.width == 0.6  # not stretched to the right face
    assert grown[0].box.top < 0.1  # its own face (top 0.1) and some hair are inside now
    assert grown[1].box.top < 0.1
    assert grown[1].box.left == 0.4


def test_a_face_far_above_a_person_is_not_theirs() -> None:
    body = DetectedObject("Person", 0.9, Box(0.2, 0.7, 0.3, 0.3))
    (grown,) = include_faces((body,), (face(0.3, top=0.0, size=0.05),))
    assert grown.box.as_list() == body.box.as_list()


def test_body_box_is_a_few_face_widths_wide_around_the_shoulders() -> None:
    # A 1000x1000 photo: face box 100 px wide at x 450..550, shoulders at (500, 400),
    # hips at (500, 700) with the whole-body circle reaching 250 px below them.
    keypoints = np.array([[0.5, 0.7], [0.5, 0.95], [0.5, 0.4], [0.5, 0.1]], dtype=np.float32)
    detection = ssd.Detection(0.9, (0.45, 0.2, 0.55, 0.35), keypoints)
    box = body_box(detection, 1000, 1000)
    assert abs(box.width - BODY_WIDTH_IN_FACES * 0.1) < 1e-6
    assert abs((box.left + box.width / 2) - 0.5) < 1e-6
    assert box.top < 0.2  # above the face
    assert abs(box.top + box.height - 0.95) < 1e-6  # the feet: hips + the whole-body radius
