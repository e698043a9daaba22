"""Shared plumbing of MediaPipe's single-shot detectors (BlazeFace, BlazePose): input, anchors, decoding.

MediaPipe describes these models in graph files rather than in the .tflite itself, so the anchor
layout and box scale are written down here (from `face_detection_*.pbtxt` and
`pose_detection_cpu.pbtxt` in MediaPipe 0.10.21). All anchors are fixed-size, so only their
centres matter: for each stride, one grid of centres, repeated once per anchor at that location.

Images are letterboxed (scaled to fit, padded to a square) so faces keep their proportions; the
`Letterbox` records how to map the model's 0..1 square back to ratios of the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.recognizers.local.rgb import as_rgb

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Letterbox:
    """The square model input made from a photo and where the photo sits inside it."""

    pixels: FloatArray  # (size, size, 3), values in the model's range
    scale_x: float  # photo width as a share of the square
    scale_y: float
    offset_x: float  # left padding as a share of the square
    offset_y: float

    def to_photo(self, x: npt.NDArray[Any], y: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Square ratios -> photo ratios."""
        return (x - self.offset_x) / self.scale_x, (y - self.offset_y) / self.scale_y


def letterbox(image: Image.Image, size: int, value_range: tuple[float, float] = (-1.0, 1.0)) -> Letterbox:
    """Scale the photo to fit a `size` square, pad it centred with black, and scale values to the range."""
    width, height = image.size
    scale = size / max(width, height)
    new_w, new_h = max(round(width * scale), 1), max(round(height * scale), 1)
    resized = as_rgb(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (size, size))
    left, top = (size - new_w) // 2, (size - new_h) // 2
    canvas.paste(resized, (left, top))
    low, high = value_range
    pixels = np.asarray(canvas, dtype=np.float32) * ((high - low) / 255.0) + low
    return Letterbox(pixels, new_w / size, new_h / size, left / size, top / size)


def anchor_centres(input_size: int, strides: Sequence[int], per_layer: int) -> FloatArray:
    """Anchor centres (N, 2) in 0..1, in the order the model emits them.

    Consecutive layers with the same stride share one grid with their anchors interleaved per
    cell, as MediaPipe's SsdAnchorsCalculator does; each layer has `per_layer` anchors a cell.
    """
    centres: list[FloatArray] = []
    index = 0
    while index < len(strides):
        stride = strides[index]
        same = 1
        while index + same < len(strides) and strides[index + same] == stride:
            same += 1
        cells = -(-input_size // stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs.ravel() + 0.5) / cells, (ys.ravel() + 0.5) / cells], axis=1)
        centres.append(np.repeat(grid, same * per_layer, axis=0).astype(np.float32))
        index += same
    return np.concatenate(centres, axis=0)


@dataclass(frozen=True)
class Detection:
    """A box (x0, y0, x1, y1) and keypoints (K, 2), all in ratios of the photo, with a 0..1 score."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: FloatArray


def decode(
    raw_boxes: FloatArray,
    raw_scores: FloatArray,
    anchors: FloatArray,
    input_size: int,
    frame: Letterbox,
    min_score: float,
) -> list[Detection]:
    """Turn the model's raw outputs into detections above `min_score`, in photo ratios."""
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= min_score)
    found: list[Detection] = []
    for i in keep:
        raw = raw_boxes[i] / input_size
        cx, cy = raw[0] + anchors[i, 0], raw[1] + anchors[i, 1]
        w, h = raw[2], raw[3]
        xs = np.array([cx - w / 2, cx + w / 2, *(raw[4::2] + anchors[i, 0])], dtype=np.float32)
        ys = np.array([cy - h / 2, cy + h / 2, *(raw[5::2] + anchors[i, 1])], dtype=np.float32)
        px, py = frame.to_photo(xs, ys)
        points = np.stack([px[2:], py[2:]], axis=1).astype(np.float32)
        found.append(
            Detection(float(scores[i]), (float(px[0]), float(py[0]), float(px[1]), float(py[1])), points)
        )
    return found


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(detections: list[Detection], threshold: float) -> list[Detection]:
    """MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged by score.

    Averaging (rather than keeping only the best box) steadies the box and keypoints of a face
    that several anchors found, which is what the BlazeFace graphs do.
    """
    remaining = sorted(detections, key=lambda d: d.score, reverse=True)
    kept: list[Detection] = []
    while remaining:
        best = remaining[0]
        group = [d for d in remaining if iou(best.box, d.box) >= threshold]
        remaining = [d for d in remaining if iou(best.box, d.box) < threshold]
        weights = np.array([d.score for d in group], dtype=np.float32)
        weights /= weights.sum()
        box = np.sum([np.array(d.box) * w for d, w in zip(group, weights, strict=True)], axis=0)
        points = np.sum([d.keypoints * w for d, w in zip(group, weights, strict=True)], axis=0)
        kept.append(
            Detection(best.score, (float(box[0]), float(box[1]), float(box[2]), float(box[3])), points)
        )
    return kept
