"""Boxes for kinds the COCO detector has no class for (a rocket, a guitar, a butterfly), by the classifier.

The object detector (`detector`) knows COCO's 80 kinds. For the other boxable kinds the photo's
labels name, objects are located with the ImageNet classifier itself, as class activation maps:
EfficientNet-Lite0 is convolutional up to
its pooling, so run on the whole photo (long side `MAP_SIDE`) it gives a grid of cells, each of
which the classifier's own linear layer reads as 1000 class scores. For every label the photo as
a whole was given (by `classifier.classify`) that names a boxable thing (`BOXABLE`: animals,
vehicles, cups, bottles, furniture, instruments... the kinds Rekognition boxes; not scenes,
clothing or people, which BlazePose boxes), the cells where that label's classes hold most of
the probability form connected regions, and each region becomes one instance with its box.

Kinds COCO covers (`COCO_COVERED`) are left to the detector, so nothing is boxed twice. It is
coarser than a detector: a cell is 1/10 of the long side, touching objects of one kind
merge into one box, and only kinds the photo-level labels already name are looked for.
"""

from __future__ import annotations

from collections import deque
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.analysis_types import Box, DetectedObject, Label
from core.recognizers.local.classifier import cell_logits
from core.recognizers.local.inference import ModelRegistry
from core.recognizers.local.rgb import as_rgb
from core.recognizers.local.taxonomy import CLASS_LABELS, PARENTS, ancestors

__all__ = ["BOXABLE", "COCO_COVERED", "MAP_SIDE", "find_objects", "regions"]

MAP_SIDE = 320  # 10 cells on the long side
# The general names an instance is called by (as Rekognition's instances: "Dog", not "Beagle").
BOXABLE: tuple[str, ...] = (
    "Dog", "Cat", "Bird", "Bear", "Elephant", "Monkey", "Ape", "Rabbit", "Livestock", "Fish",
    "Turtle", "Lizard", "Snake", "Butterfly", "Insect", "Spider", "Crustacean", "Marine Mammal",
    "Car", "Truck", "Bus", "Motorcycle", "Bicycle", "Train", "Boat", "Airplane", "Aircraft",
    "Rocket", "Camera", "Phone", "Computer", "Screen", "Clock", "Cup", "Bottle", "Wine", "Beer",
    "Chair", "Couch", "Bed", "Table", "Cabinet", "Guitar", "Piano", "Drum", "Musical Instrument",
    "Ball", "Helmet", "Hat", "Shoe", "Umbrella", "Tool", "Weapon", "Fruit", "Vegetable",
    "Dessert", "Flower", "Fungus",
)  # fmt: skip
# Boxable kinds the COCO detector finds itself (dog, car, cup, chair, banana...): not searched here.
COCO_COVERED = frozenset({
    "Dog", "Cat", "Bird", "Bear", "Elephant", "Livestock", "Car", "Truck", "Bus", "Motorcycle",
    "Bicycle", "Train", "Boat", "Airplane", "Cup", "Bottle", "Wine", "Beer", "Chair", "Couch",
    "Bed", "Table", "Phone", "Computer", "Screen", "Clock", "Umbrella", "Ball", "Fruit", "Vegetable",
})  # fmt: skip
MIN_LABEL_CONFIDENCE = 0.3  # the photo-level label a search starts from
MIN_PEAK = 0.35  # a region's best cell must give the label at least this share
REGION_SHARE = 0.5  # a cell belongs to a region when it holds half the peak or more
MIN_CELL = 0.15  # ... and at least this share of the cell's probability
MAX_OBJECTS = 20

FloatArray = npt.NDArray[np.float32]


def _instance_name(label: str) -> str | None:
    """The boxable name a label is counted under: itself or its nearest boxable ancestor."""
    if label in BOXABLE:
        return label
    for name, _ in ancestors(PARENTS.get(label, ())):
        if name in BOXABLE:
            return name
    return None


@cache
def _class_names() -> dict[int, str | None]:
    """Class index -> boxable name (or None), through the class's own label and its parents."""
    out: dict[int, str | None] = {}
    for index, (own, direct) in enumerate(CLASS_LABELS):
        name = _instance_name(own)
        if name is None:
            name = next((n for n, _ in ancestors(direct) if n in BOXABLE), None)
        out[index] = name
    return out


def _classes_of(name: str) -> npt.NDArray[np.intp]:
    return np.array([i for i, n in _class_names().items() if n == name], dtype=np.intp)


def map_input(image: Image.Image, side: int = MAP_SIDE) -> FloatArray:
    """The whole photo scaled to about `side` on its long edge, both sides multiples of 32."""
    width, height = image.size
    scale = side / max(width, height)
    size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
    resized = as_rgb(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return (np.asarray(resized, dtype=np.float32) - 127.0) / 128.0


def regions(share: FloatArray) -> list[tuple[float, tuple[int, int, int, int]]]:
    """Connected regions (4-neighbours) of strong cells in one label's share map, best first.

    Returns (peak share, (row0, col0, row1, col1) inclusive) for each region whose peak reaches
    `MIN_PEAK`; a cell is strong when it holds `REGION_SHARE` of the map's peak and `MIN_CELL`.
    """
    peak = float(share.max()) if share.size else 0.0
    if peak < MIN_PEAK:
        return []
    strong = share >= max(peak * REGION_SHARE, MIN_CELL)
    seen = np.zeros_like(strong)
    found: list[tuple[float, tuple[int, int, int, int]]] = []
    rows, cols = strong.shape
    for start in zip(*np.nonzero(strong), strict=True):
        if seen[start]:
            continue
        queue = deque([start])
        seen[start] = True
        cells = []
        while queue:
            r, c = queue.popleft()
            cells.append((r, c))
            for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= nr < rows and 0 <= nc < cols and strong[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    queue.append((nr, nc))
        best = max(float(share[r, c]) for r, c in cells)
        if best >= MIN_PEAK:
            rs, cs = [int(r) for r, _ in cells], [int(c) for _, c in cells]
            found.append((best, (min(rs), min(cs), max(rs), max(cs))))
    return sorted(found, key=lambda item: -item[0])


def find_objects(
    image: Image.Image, models: ModelRegistry, labels: tuple[Label, ...]
) -> tuple[DetectedObject, ...]:
    """Boxed instances of the boxable kinds among the photo's labels, most confident first."""
    wanted: dict[str, float] = {}
    for label in labels:
        name = _instance_name(label.name)
        if name is not None and name not in COCO_COVERED and label.confidence >= MIN_LABEL_CONFIDENCE:
            wanted[name] = max(wanted.get(name, 0.0), label.confidence)
    if not wanted:
        return ()
    logits = cell_logits(map_input(image), models).astype(np.float64)
    logits -= logits.max(axis=2, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=2, keepdims=True)
    rows, cols = probabilities.shape[:2]
    found: list[DetectedObject] = []
    for name, confidence in wanted.items():
        share = probabilities[:, :, _classes_of(name)].sum(axis=2).astype(np.float32)
        for peak, (r0, c0, r1, c1) in regions(share):
            # A cell's receptive field reaches past it: half a cell of margin on each side.
            left, top = max(int(c0) - 0.25, 0.0) / cols, max(int(r0) - 0.25, 0.0) / rows
            right, bottom = min(int(c1) + 1.25, cols) / cols, min(int(r1) + 1.25, rows) / rows
            box = Box.clamped(left, top, right - left, bottom - top)
            found.append(DetectedObject(name, round(min(confidence, 1.0) * min(peak / 0.9, 1.0), 4), box))
    found.sort(key=lambda o: -o.confidence)
    return tuple(found[:MAX_OBJECTS])
