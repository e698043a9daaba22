"""Whole-photo labels from the ImageNet classifier: what the photo shows besides people and text.

The photo is cropped and scaled the way EfficientNet-Lite was evaluated (the central square
holding 224/256 of the short side, bicubic to 224 px, values (x - 127) / 128): on the
scikit-image test photos that crop finds the subject more often than squeezing the whole frame
(the rocket is called a drilling platform when squeezed). Class probabilities become labels
through `taxonomy`: a label's confidence is the summed probability of every class it names or
is an ancestor of, so "Cat" collects tabby + tiger cat + Egyptian cat, and a general label is at
least as confident as any label under it, as with Rekognition. Labels below `MIN_CONFIDENCE`, or
without a single class of at least half that, are dropped; the rest are ranked by confidence,
except that a label goes before an ancestor less than `SPECIFIC_FIRST_MARGIN` more confident
("Cat" 0.92 before "Animal" 0.95): the subject, not its most general parent, leads the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.analysis_types import Label
from core.recognizers.local.inference import ModelRegistry, ModelSpec, OnnxModel
from core.recognizers.local.model_files import CLASSIFIER
from core.recognizers.local.taxonomy import CLASS_LABELS, PARENTS, ancestors

__all__ = [
    "CLASSIFIER_MODEL",
    "CROP_SHARE",
    "MIN_CONFIDENCE",
    "cell_logits",
    "classify",
    "labels_from_probabilities",
    "logits",
    "model_input",
]

INPUT_SIZE = 224

MIN_CONFIDENCE = 0.2
# A label also needs one class of its own at half that: on a photo the network cannot place, the
# probability spreads thinly over hundreds of classes and "Animal" alone would sum to 0.2, and
# a bearded man in a fur coat is 11% macaque.
PEAK_SHARE = 0.75
SPECIFIC_FIRST_MARGIN = 0.05
CROP_SHARE = 224 / 256  # EfficientNet's evaluation crop: the centre 87.5% of the short side
MAX_LABELS = 10
CATEGORY = "Objects and Scenes"


def model_input(image: Image.Image) -> npt.NDArray[np.float32]:
    """The classifier's (224, 224, 3) input in [-1, 1] from any photo."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    side = max(min(width, height) * CROP_SHARE, 1.0)
    left, top = (width - side) / 2, (height - side) / 2
    square = rgb.resize(
        (INPUT_SIZE, INPUT_SIZE),
        Image.Resampling.BICUBIC,
        box=(left, top, left + side, top + side),
        reducing_gap=2.0,  # a box reduction first (5 ms instead of 11 from 1920 px), then bicubic
    )
    return (np.asarray(square, dtype=np.float32) - 127.0) / 128.0


@dataclass(frozen=True)
class _LabelTable:
    """Every label name, which classes it covers (a 0/1 matrix), its specificity and parents."""

    names: tuple[str, ...]
    covers: npt.NDArray[np.float64]  # (labels, classes)
    depth: tuple[int, ...]  # 0 when the label is some class's own name, else its nearest distance
    parents: tuple[tuple[str, ...], ...]


@cache
def _table() -> _LabelTable:
    index: dict[str, int] = {}
    rows: list[set[int]] = []
    depth: list[int] = []
    parents: list[tuple[str, ...]] = []

    def row(name: str, level: int, lineage: tuple[str, ...]) -> int:
        if name not in index:
            index[name] = len(rows)
            rows.append(set())
            depth.append(level)
            parents.append(lineage)
        at = index[name]
        depth[at] = min(depth[at], level)
        return at

    for number, (own, direct) in enumerate(CLASS_LABELS):
        lineage = ancestors(direct)
        rows[row(own, 0, tuple(n for n, _ in lineage if n != own))].add(number)
        for name, level in lineage:
            general = tuple(n for n, _ in ancestors(PARENTS.get(name, ())))
            rows[row(name, level, general)].add(number)
    covers = np.zeros((len(rows), len(CLASS_LABELS)), dtype=np.float64)
    for at, members in enumerate(rows):
        covers[at, sorted(members)] = 1.0
    return _LabelTable(tuple(index), covers, tuple(depth), tuple(parents))


def labels_from_probabilities(
    probabilities: npt.NDArray[np.floating], min_confidence: float = MIN_CONFIDENCE
) -> tuple[Label, ...]:
    """Rekognition-like labels (name, confidence 0..1, parents nearest first) from 1000 probabilities."""
    if probabilities.shape != (len(CLASS_LABELS),):
        raise ValueError(f"expected {len(CLASS_LABELS)} probabilities, got {probabilities.shape}")
    table = _table()
    p = probabilities.astype(np.float64)
    confidences = table.covers @ p
    peaks = (table.covers * p).max(axis=1)
    found = np.flatnonzero((confidences >= min_confidence) & (peaks >= min_confidence * PEAK_SHARE))
    ranked = sorted(
        (int(at) for at in found),
        key=lambda at: (-float(confidences[at]), table.depth[at], table.names[at]),
    )
    ordered: list[int] = []
    for at in ranked:
        # A general label barely more confident than this one says less: the specific one goes first.
        position = next(
            (
                k
                for k, other in enumerate(ordered)
                if table.names[other] in table.parents[at]
                and confidences[other] - confidences[at] < SPECIFIC_FIRST_MARGIN
            ),
            len(ordered),
        )
        ordered.insert(position, at)
    return tuple(
        Label(
            table.names[at],
            round(min(float(confidences[at]), 1.0), 4),
            parents=table.parents[at],
            categories=(CATEGORY,),
        )
        for at in ordered[:MAX_LABELS]
    )


# EfficientNet-Lite0 as the ONNX graph the install step builds (`core.model_build.efficientnet`):
# `predict([pixels])` with pixels (1, H, W, 3) in [-1, 1] (H, W >= 32) returns `[logits (1, 1000),
# cell_logits (1, H/32, W/32, 1000)]`: the pooled class scores (`classify`) and each cell's through
# the same linear layer (`objects.find_objects`).
CLASSIFIER_MODEL = ModelSpec("efficientnet-lite0", (CLASSIFIER,), OnnxModel)


def logits(pixels: npt.NDArray[np.float32], models: ModelRegistry) -> npt.NDArray[np.float32]:
    """The 1000 class scores for one (224, 224, 3) `model_input`."""
    scores, _ = models.get(CLASSIFIER_MODEL).predict([np.ascontiguousarray(pixels[np.newaxis])])
    return np.asarray(scores[0], dtype=np.float32)


def cell_logits(pixels: npt.NDArray[np.float32], models: ModelRegistry) -> npt.NDArray[np.float32]:
    """Class scores (H/32, W/32, 1000) of each cell of an (H, W, 3) input in [-1, 1]."""
    _, cells = models.get(CLASSIFIER_MODEL).predict([np.ascontiguousarray(pixels[np.newaxis])])
    return np.asarray(cells[0], dtype=np.float32)


def classify(image: Image.Image, models: ModelRegistry) -> tuple[Label, ...]:
    """The photo's object and scene labels (no boxes: the classifier sees the photo as a whole)."""
    scores = logits(model_input(image), models).astype(np.float64)
    exp = np.exp(scores - scores.max())
    return labels_from_probabilities((exp / exp.sum()).astype(np.float32))
