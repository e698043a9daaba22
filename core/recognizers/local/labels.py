"""Whole-photo labels and people with boxes, from what the bundled models can actually see.

"Person" comes with one box per body from MediaPipe's BlazePose detector (which finds people by
their face and torso, so also people seen from a distance or partly), "Face" when faces were
found, "Text" when the text reader found lines; everything else (objects, animals, food,
vehicles, scenes) comes from the ImageNet classifier in `classifier`, for the photo as a whole
and without boxes. Labels follow Rekognition's names so the summary and the annotation treat
both backends alike.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from core.models import Box, DetectedObject, Face, Label, TextLine
from core.recognizers.local import ssd
from core.recognizers.local.models import POSE_DETECTOR, ModelStore

PERSON_MIN_SCORE = 0.5
PERSON_IOU = 0.3
POSE_SIZE = 224
_POSE_STRIDES = (8, 16, 32, 32, 32)
MAX_PEOPLE = 20


def detect_people(image: Image.Image, store: ModelStore) -> tuple[DetectedObject, ...]:
    """People with a box around the whole body, best first.

    BlazePose's detector gives a face-sized box plus keypoints, among them the middle of the
    shoulders and a point whose distance from it is the radius of a circle around the upper
    body. That circle joined with the face box, cut to the photo, is the person's box: it fits
    portraits and half-length shots (most photos of people); a full figure is boxed to the waist.
    """
    model = store.load(POSE_DETECTOR, ssd.TfliteModel)
    frame = ssd.letterbox(image, POSE_SIZE)
    boxes, scores = model.run(frame.pixels)
    anchors = ssd.anchor_centres(POSE_SIZE, _POSE_STRIDES, 2)
    found = ssd.weighted_nms(
        ssd.decode(boxes, scores, anchors, POSE_SIZE, frame, PERSON_MIN_SCORE), PERSON_IOU
    )
    width, height = image.size
    people = []
    for detection in sorted(found, key=lambda d: d.score, reverse=True)[:MAX_PEOPLE]:
        shoulders = detection.keypoints[2] * (width, height)
        edge = detection.keypoints[3] * (width, height)
        radius = float(np.hypot(*(edge - shoulders)))
        x0, y0, x1, y1 = detection.box
        left = min(float(shoulders[0]) - radius, x0 * width)
        top = min(float(shoulders[1]) - radius, y0 * height)
        right = max(float(shoulders[0]) + radius, x1 * width)
        bottom = max(float(shoulders[1]) + radius, y1 * height)
        box = Box.clamped(left / width, top / height, (right - left) / width, (bottom - top) / height)
        if box.width > 0 and box.height > 0 and math.isfinite(detection.score):
            people.append(DetectedObject("Person", round(detection.score, 4), box))
    return tuple(people)


def summarise_labels(
    people: tuple[DetectedObject, ...],
    faces: tuple[Face, ...],
    text: tuple[TextLine, ...],
    classified: tuple[Label, ...] = (),
) -> tuple[Label, ...]:
    """Whole-photo labels, most confident first, with Rekognition's names and parents.

    `classified` (the classifier's labels, already in their own order, which puts a subject
    before a slightly more confident ancestor) is merged in without reordering it; a name both
    sources give is kept once, from the detectors.
    """
    labels: list[Label] = []
    person = max([p.confidence for p in people] + [f.confidence for f in faces], default=0.0)
    if person > 0:
        labels.append(Label("Person", round(person, 4), categories=("Person Description",)))
    if faces:
        best = max(f.confidence for f in faces)
        labels.append(
            Label("Face", round(best, 4), parents=("Head", "Person"), categories=("Person Description",))
        )
    if text:
        best = max(t.confidence for t in text)
        labels.append(Label("Text", round(best, 4), categories=("Text and Documents",)))
    detected = sorted(labels, key=lambda label: label.confidence, reverse=True)
    names = {label.name for label in detected}
    others = [label for label in classified if label.name not in names]
    merged: list[Label] = []
    while detected or others:
        if detected and (not others or detected[0].confidence >= others[0].confidence):
            merged.append(detected.pop(0))
        else:
            merged.append(others.pop(0))
    return tuple(merged)
