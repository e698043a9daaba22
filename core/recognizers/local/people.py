"""People with a box around each body: BlazePose, grown to the faces, merged with the COCO detector.

MediaPipe's BlazePose detector finds people by their face and torso, so also people seen from a
distance or partly (`detect_people`); its face box is coarse, so each person's box is grown to
hold the face BlazeFace found (`include_faces`); and the COCO detector's own people win where
both saw the same person (`merge_people`), so a person is boxed once.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from core.analysis_types import Box, DetectedObject, Face
from core.recognizers.local import ssd
from core.recognizers.local.inference import LiteRtModel, ModelRegistry, ModelSpec
from core.recognizers.local.model_files import POSE_DETECTOR

__all__ = ["POSE", "body_box", "detect_people", "include_faces", "merge_people"]

PERSON_MIN_SCORE = 0.5
PERSON_IOU = 0.3
PERSON_SAME_IOU = 0.3  # a detector person this close to a BlazePose person is that person
POSE_SIZE = 224
_POSE_STRIDES = (8, 16, 32, 32, 32)
MAX_PEOPLE = 20
BODY_WIDTH_IN_FACES = 2.4
HAIR_IN_FACES = 0.2

POSE = ModelSpec("blazepose-detector", (POSE_DETECTOR,), LiteRtModel)


def detect_people(image: Image.Image, models: ModelRegistry) -> tuple[DetectedObject, ...]:
    """People with a box around the body, best first.

    BlazePose's detector gives a face box and four keypoints: the middle of the hips with a point
    on a circle around the whole body, and the middle of the shoulders with a point on a circle
    around the upper body. The circles are good for cropping but far wider than a body, so the
    box is built from proportions instead: as wide as `BODY_WIDTH_IN_FACES` face widths around the
    shoulders' middle (and the face), from just above the face down to the bottom of the
    whole-body circle (the feet of a standing figure), cut to the photo.
    """
    frame = ssd.letterbox(image, POSE_SIZE)
    boxes, scores = models.get(POSE).predict([frame.pixels[np.newaxis]])
    anchors = ssd.anchor_centres(POSE_SIZE, _POSE_STRIDES, 2)
    found = ssd.weighted_nms(
        ssd.decode(boxes[0], scores[0], anchors, POSE_SIZE, frame, PERSON_MIN_SCORE), PERSON_IOU
    )
    people = []
    for detection in sorted(found, key=lambda d: d.score, reverse=True)[:MAX_PEOPLE]:
        box = body_box(detection, *image.size)
        if box.width > 0 and box.height > 0 and math.isfinite(detection.score):
            people.append(DetectedObject("Person", round(detection.score, 4), box))
    return tuple(people)


def body_box(detection: ssd.Detection, width: int, height: int) -> Box:
    """The body box of one BlazePose detection, in photo ratios (see `detect_people`)."""
    x0, y0, x1, y1 = (v * s for v, s in zip(detection.box, (width, height, width, height), strict=True))
    face_w, face_h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    hips, body_edge, shoulders = (detection.keypoints[i] * (width, height) for i in (0, 1, 2))
    half = BODY_WIDTH_IN_FACES * face_w / 2
    left = min(float(shoulders[0]) - half, x0)
    right = max(float(shoulders[0]) + half, x1)
    top = y0 - HAIR_IN_FACES * face_h
    bottom = max(float(hips[1]) + float(np.hypot(*(body_edge - hips))), float(shoulders[1]), y1)
    return Box.clamped(left / width, top / height, (right - left) / width, (bottom - top) / height)


def include_faces(people: tuple[DetectedObject, ...], faces: tuple[Face, ...]) -> tuple[DetectedObject, ...]:
    """Grow each person's box to hold their face (and some hair) as the face detector found it.

    The pose detector's face box is coarse and often sits low; BlazeFace's is tight. Each face
    goes to one person at most: among those whose box contains the face's centre horizontally
    and reaches down to it, the one whose box is centred nearest to it (people stand close).
    """
    edges = [[p.box.left, p.box.top, p.box.left + p.box.width, p.box.top + p.box.height] for p in people]
    for face in faces:
        f = face.box
        centre_x, centre_y = f.left + f.width / 2, f.top + f.height / 2
        owners = [
            i
            for i, (left, top, right, bottom) in enumerate(edges)
            if left <= centre_x <= right and top - 2 * f.height <= centre_y <= bottom
        ]
        if not owners:
            continue
        i = min(owners, key=lambda k: abs((edges[k][0] + edges[k][2]) / 2 - centre_x))
        edges[i][0] = min(edges[i][0], f.left)
        edges[i][1] = min(edges[i][1], f.top - HAIR_IN_FACES * f.height)
        edges[i][2] = max(edges[i][2], f.left + f.width)
    return tuple(
        DetectedObject(p.name, p.confidence, Box.clamped(left, top, right - left, bottom - top))
        for p, (left, top, right, bottom) in zip(people, edges, strict=True)
    )


def _corners(box: Box) -> tuple[float, float, float, float]:
    return (box.left, box.top, box.left + box.width, box.top + box.height)


def merge_people(
    posed: tuple[DetectedObject, ...], detected: tuple[DetectedObject, ...]
) -> tuple[DetectedObject, ...]:
    """One box per person from both finders: the detector's people, then those only BlazePose saw.

    The SSD was trained on boxes people drew around each body, and its own suppression keeps
    one box per person; BlazePose's box is built from face-width proportions (`labels.body_box`)
    and in a tight group one box often spans two people. So the detector's people come first,
    each as it boxed them, and a BlazePose person is added only when no detector person is the
    same: overlapping it (IoU >= PERSON_SAME_IOU), or holding its box centre while being no
    more than twice its size (a box around a whole group is not one person). A detector person
    that is the same as a BlazePose person takes the higher of the two confidences. On the
    hand-drawn boxes of the evaluation set the detector's boxes were the closer ones (median IoU
    0.74 against 0.45), and a group of six was six people instead of four.
    """
    boxed = sorted((d for d in detected if d.name == "Person"), key=lambda d: -d.confidence)
    only_posed: list[DetectedObject] = []
    for person in posed:
        p = _corners(person.box)
        centre = ((p[0] + p[2]) / 2, (p[1] + p[3]) / 2)
        same: list[tuple[float, int]] = []
        for at, candidate in enumerate(boxed):
            c = _corners(candidate.box)
            holds = c[0] <= centre[0] <= c[2] and c[1] <= centre[1] <= c[3]
            small = candidate.box.width * candidate.box.height <= 2 * person.box.width * person.box.height
            overlap = ssd.iou(c, p)
            if overlap >= PERSON_SAME_IOU or (holds and small):
                same.append((overlap, at))
        if not same:
            only_posed.append(person)
            continue
        _, at = max(same)
        if person.confidence > boxed[at].confidence:
            boxed[at] = DetectedObject("Person", person.confidence, boxed[at].box)
    return (*boxed, *only_posed)
