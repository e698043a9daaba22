"""Whole-photo labels and people with boxes, from what the bundled models can actually see.

(Other things get boxes in `objects`; scene labels come from `scenes`.)

"Person" comes with one box per body from MediaPipe's BlazePose detector (which finds people by
their face and torso, so also people seen from a distance or partly), "Face" when faces were
found, "Text" when the text reader found lines; everything else (objects, animals, food,
vehicles, scenes) comes from the ImageNet classifier in `classifier`, for the photo as a whole
and without boxes. Labels follow Rekognition's names so the summary and the annotation treat
both backends alike.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from PIL import Image

from core.analysis_types import Box, DetectedObject, Face, Label, TextLine
from core.recognizers.local import ssd
from core.recognizers.local.classifier import CATEGORY
from core.recognizers.local.model_files import POSE_DETECTOR, ModelStore
from core.recognizers.local.taxonomy import PARENTS, ancestors

PERSON_MIN_SCORE = 0.5
PERSON_IOU = 0.3
POSE_SIZE = 224
_POSE_STRIDES = (8, 16, 32, 32, 32)
MAX_PEOPLE = 20


def detect_people(image: Image.Image, store: ModelStore) -> tuple[DetectedObject, ...]:
    """People with a box around the body, best first.

    BlazePose's detector gives a face box and four keypoints: the middle of the hips with a point
    on a circle around the whole body, and the middle of the shoulders with a point on a circle
    around the upper body. The circles are good for cropping but far wider than a body, so the
    box is built from proportions instead: as wide as `BODY_WIDTH_IN_FACES` face widths around the
    shoulders' middle (and the face), from just above the face down to the bottom of the
    whole-body circle (the feet of a standing figure), cut to the photo.
    """
    model = store.load(POSE_DETECTOR, ssd.TfliteModel)
    frame = ssd.letterbox(image, POSE_SIZE)
    boxes, scores = model.run(frame.pixels)
    anchors = ssd.anchor_centres(POSE_SIZE, _POSE_STRIDES, 2)
    found = ssd.weighted_nms(
        ssd.decode(boxes, scores, anchors, POSE_SIZE, frame, PERSON_MIN_SCORE), PERSON_IOU
    )
    people = []
    for detection in sorted(found, key=lambda d: d.score, reverse=True)[:MAX_PEOPLE]:
        box = body_box(detection, *image.size)
        if box.width > 0 and box.height > 0 and math.isfinite(detection.score):
            people.append(DetectedObject("Person", round(detection.score, 4), box))
    return tuple(people)


BODY_WIDTH_IN_FACES = 2.4
HAIR_IN_FACES = 0.2


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


def summarise_labels(
    people: tuple[DetectedObject, ...],
    faces: tuple[Face, ...],
    text: tuple[TextLine, ...],
    classified: tuple[Label, ...] = (),
    scenes: tuple[Label, ...] = (),
    things: tuple[DetectedObject, ...] = (),
) -> tuple[Label, ...]:
    """Whole-photo labels, most confident first, with Rekognition's names and parents.

    `classified` (the classifier's labels, already in their own order, which puts a subject
    before a slightly more confident ancestor) is merged in without reordering it; a name both
    sources give is kept once, from the detectors. `scenes` (from `scenes.scene_labels`) are
    merged by confidence too, but never ahead of the first subject: "Outdoors" or "Sky" says
    where, the photo's subject says what, and the subject leads as it does with Rekognition.
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
    strongest: dict[str, float] = {}
    for thing in things:  # each boxed kind is a label too, with its parents when the taxonomy knows it
        strongest[thing.name] = max(strongest.get(thing.name, 0.0), thing.confidence)
    known = {label.name: label for label in classified}
    for name, confidence in strongest.items():
        if name in known:  # the classifier's label (placed before its parents) is kept, as sure as either
            boost = max(known[name].confidence, round(confidence, 4))
            classified = tuple(replace(c, confidence=boost) if c.name == name else c for c in classified)
            continue
        parents = tuple(n for n, _ in ancestors(PARENTS.get(name, ())))
        labels.append(Label(name, round(confidence, 4), parents=parents, categories=(CATEGORY,)))
    detected = sorted(labels, key=lambda label: label.confidence, reverse=True)
    names = {label.name for label in detected}
    others = [label for label in classified if label.name not in names]
    merged: list[Label] = []
    while detected or others:
        if detected and (not others or detected[0].confidence >= others[0].confidence):
            merged.append(detected.pop(0))
        else:
            merged.append(others.pop(0))
    taken = {label.name for label in merged}
    places = [label for label in scenes if label.name not in taken]
    if not places:
        return tuple(merged)
    out: list[Label] = merged[:1]
    rest = merged[1:]
    while rest or places:
        if rest and (not places or rest[0].confidence >= places[0].confidence):
            out.append(rest.pop(0))
        else:
            out.append(places.pop(0))
    return tuple(out)
