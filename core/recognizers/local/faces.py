"""Faces with boxes, landmarks and a few attributes, from MediaPipe's BlazeFace and face mesh plus FER.

Detection runs BlazeFace's short-range model (faces that fill much of the photo) and its
full-range model (smaller faces, groups) on the whole photo and merges their answers, because
neither alone finds both the selfie and the group photo. Each face is then cut out upright (by
the angle of its eyes) for the 468-point face mesh, which gives the landmarks, whether the mouth
and eyes are open, and the head pose; a grey 64x64 crop goes to the FER emotion model, whose
"happy" score also answers "smiling".

A detection counts as a face only when the mesh agrees: its own face-presence score, run on the
crop, must pass PRESENCE, and its points must sit on the detector's box (centre inside it, extent
of a comparable size). BlazeFace alone fires on a quokka, an apple, a flower or a face printed on a
book cover; the mesh, a separately trained model looking at a larger, upright crop, does not.

The attributes of a confirmed face (emotions, age and gender, eyes, mouth, pose) are read in
`face_attributes`. Glasses and beards are left as None: no model with a clear licence for them
ships in a package these machines can install.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.analysis_types import Box, Face, Landmark
from core.recognizers.local import ssd
from core.recognizers.local.face_attributes import clip, describe, mesh_landmarks
from core.recognizers.local.inference import LiteRtModel, ModelRegistry, ModelSpec
from core.recognizers.local.model_files import FACE_DETECTOR_FULL, FACE_DETECTOR_SHORT, FACE_MESH
from core.recognizers.local.rgb import as_rgb

MIN_SCORE = 0.6  # MediaPipe's own threshold for both BlazeFace models
MERGE_IOU = 0.3
MAX_FACES = 40  # checked by the mesh, with attributes, for at most this many: a crowd must not take seconds
PRESENCE = 0.5  # the face mesh's own face-presence probability a face must reach
CROWD_SCORE = 0.8  # past MAX_FACES (no mesh check), only this sure a detection counts as a face
MESH_EXTENT = (0.5, 2.0)  # the mesh's points must span this share of the detector's box
MESH_SIZE = 192
TILE_SHARE = 0.6  # each of the four tiles spans this share of the width and the height
TILE_MIN_SIDE = 640  # photos whose long side is shorter are not tiled (a tile would be upscaled)
TILE_EDGE = 0.01  # a tile detection this close to an inner edge of its tile is cut off there


MESH = ModelSpec("face-mesh", (FACE_MESH,), LiteRtModel)


@dataclass(frozen=True)
class _Detector:
    """One BlazeFace model and the anchor layout its graph file describes."""

    model: ModelSpec[LiteRtModel]
    size: int
    strides: tuple[int, ...]
    per_layer: int


_SHORT = _Detector(ModelSpec("blazeface-short", (FACE_DETECTOR_SHORT,), LiteRtModel), 128, (8, 16, 16, 16), 2)
_FULL = _Detector(ModelSpec("blazeface-full", (FACE_DETECTOR_FULL,), LiteRtModel), 192, (4,), 1)


def detect_faces(image: Image.Image, models: ModelRegistry, *, attributes: bool = True) -> tuple[Face, ...]:
    """Every face in the photo that the mesh confirms, best first, with landmarks and attributes."""
    faces = []
    for index, detection in enumerate(face_candidates(image, models)):
        x0, y0, x1, y1 = detection.box
        box = Box.clamped(x0, y0, x1 - x0, y1 - y0)
        if box.width <= 0 or box.height <= 0:
            continue
        if index < MAX_FACES:
            face = _confirm(image, detection, box, models, with_attributes=attributes)
            if face is not None:
                faces.append(face)
        elif detection.score >= CROWD_SCORE:
            faces.append(Face(box=box, confidence=detection.score, landmarks=_detector_landmarks(detection)))
    return tuple(faces)


def face_candidates(image: Image.Image, models: ModelRegistry) -> list[ssd.Detection]:
    """What the two BlazeFace models see, merged, best first: candidates, not yet faces.

    Both models look at the whole photo scaled to their input (128 and 192 px), where a face a
    few percent of a group photo's width is a handful of pixels. So a photo large enough is also
    read by the full-range model in four overlapping quarter tiles (`_tiles`), each at 192 px:
    the same model, closer. The mesh still has to confirm every candidate.
    """
    found: list[ssd.Detection] = []
    for detector in (_SHORT, _FULL):
        found.extend(_detect(image, models, detector))
    width, height = image.size
    for tile in _tiles(width, height):
        found.extend(_tile_detections(image, models, tile))
    return sorted(ssd.weighted_nms(found, MERGE_IOU), key=lambda d: d.score, reverse=True)


def _detect(image: Image.Image, models: ModelRegistry, detector: _Detector) -> list[ssd.Detection]:
    frame = ssd.letterbox(image, detector.size)
    boxes, scores = models.get(detector.model).predict([frame.pixels[np.newaxis]])
    anchors = ssd.anchor_centres(detector.size, detector.strides, detector.per_layer)
    return ssd.decode(boxes[0], scores[0], anchors, detector.size, frame, MIN_SCORE)


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Four overlapping tiles (left, top, right, bottom) covering the photo, or none for a small one.

    Each tile spans `TILE_SHARE` of the width and height, so neighbours overlap by a fifth of the
    photo: a face smaller than that lies whole inside some tile, and a larger one is plain enough
    for the whole-photo pass.
    """
    if max(width, height) < TILE_MIN_SIDE:
        return []
    tile_w, tile_h = round(width * TILE_SHARE), round(height * TILE_SHARE)
    return [(x, y, x + tile_w, y + tile_h) for y in (0, height - tile_h) for x in (0, width - tile_w)]


def _tile_detections(
    image: Image.Image, models: ModelRegistry, tile: tuple[int, int, int, int]
) -> list[ssd.Detection]:
    """The full-range model's detections in one tile, in photo ratios; those cut by the tile's
    inner edges are dropped (the neighbouring tile, or the whole photo, sees them whole)."""
    left, top, right, bottom = tile
    width, height = image.size
    sx, sy = (right - left) / width, (bottom - top) / height  # tile ratios -> photo ratios
    ox, oy = left / width, top / height
    scale = np.array([sx, sy], dtype=np.float32)
    offset = np.array([ox, oy], dtype=np.float32)
    kept = []
    for d in _detect(image.crop(tile), models, _FULL):
        x0, y0, x1, y1 = d.box
        cut = (
            (x0 < TILE_EDGE and left > 0)
            or (x1 > 1 - TILE_EDGE and right < width)
            or (y0 < TILE_EDGE and top > 0)
            or (y1 > 1 - TILE_EDGE and bottom < height)
        )
        if cut:
            continue
        box = (ox + x0 * sx, oy + y0 * sy, ox + x1 * sx, oy + y1 * sy)
        kept.append(ssd.Detection(d.score, box, (d.keypoints * scale + offset).astype(np.float32)))
    return kept


def _detector_landmarks(detection: ssd.Detection) -> tuple[Landmark, ...]:
    """BlazeFace's six keypoints: eyes, nose tip, mouth centre (its ear points are too rough to show)."""
    names = ("eyeLeft", "eyeRight", "nose", "mouthCenter")
    return tuple(
        Landmark(name, clip(float(x)), clip(float(y)))
        for name, (x, y) in zip(names, detection.keypoints[:4], strict=True)
    )


def _confirm(
    image: Image.Image, detection: ssd.Detection, box: Box, models: ModelRegistry, *, with_attributes: bool
) -> Face | None:
    """The face mesh's verdict on one detection: a described face, or None when it sees no face there."""
    width, height = image.size
    # Upright square crop around the face, 1.5x its box, turned so the eyes are level (as MediaPipe).
    eye_a, eye_b = detection.keypoints[0] * (width, height), detection.keypoints[1] * (width, height)
    angle = math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])
    x0, y0, x1, y1 = detection.box
    centre = ((x0 + x1) / 2 * width, (y0 + y1) / 2 * height)
    side = max((x1 - x0) * width, (y1 - y0) * height) * 1.5
    crop, to_photo = _rotated_crop(image, centre, side, angle, MESH_SIZE)
    outputs = models.get(MESH).predict([(np.asarray(crop, dtype=np.float32) / 255.0)[np.newaxis]])
    points = outputs[0].reshape(-1, 3)
    presence = 1.0 / (1.0 + math.exp(-float(np.clip(outputs[1].reshape(-1)[0], -100, 100))))
    photo_xy = to_photo(points[:, :2])
    ratios = photo_xy / (width, height)
    if presence < PRESENCE or not _mesh_fits(ratios, detection.box):
        return None
    landmarks = mesh_landmarks(ratios)
    if not with_attributes:
        return Face(box=box, confidence=detection.score, landmarks=landmarks)
    attributes = describe(image, box, points, photo_xy, angle, models)
    return Face(box=box, confidence=detection.score, attributes=attributes, landmarks=landmarks)


def _mesh_fits(ratios: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """The mesh's points describe the same face as the detector's box: centred in it, of like size."""
    x0, y0, x1, y1 = box
    left, top = ratios.min(axis=0)
    right, bottom = ratios.max(axis=0)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    if not (x0 <= cx <= x1 and y0 <= cy <= y1):
        return False
    extent = max(right - left, bottom - top) / max(x1 - x0, y1 - y0, 1e-6)
    return bool(MESH_EXTENT[0] <= extent <= MESH_EXTENT[1])


def _rotated_crop(
    image: Image.Image, centre: tuple[float, float], side: float, angle: float, size: int
) -> tuple[Image.Image, Callable[[np.ndarray], np.ndarray]]:
    """A `size` square crop of `side` pixels around `centre`, rotated by `angle`, and its inverse map."""
    scale = side / size
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    half = size / 2
    # Output pixel (u, v) samples the photo at centre + R(angle) * ((u, v) - half) * scale.
    cx = centre[0] - cos * half + sin * half
    cy = centre[1] - sin * half - cos * half
    crop = as_rgb(image).transform(
        (size, size), Image.Transform.AFFINE, (cos, -sin, cx, sin, cos, cy), Image.Resampling.BILINEAR
    )

    def to_photo(uv: np.ndarray) -> np.ndarray:
        u, v = uv[:, 0], uv[:, 1]
        return np.stack([cos * u - sin * v + cx, sin * u + cos * v + cy], axis=1)

    return crop, to_photo
