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

Age range and gender come from face-api.js's AgeGenderNet (`age_gender`), given the face cut out
the way face-api.js cuts it: the box of the points a 68-point landmarker would give (eyebrows and
jaw line, taken from the mesh), grown by a fifth. Glasses and beards are left as None: no model
with a clear licence for them ships in a package these machines can install.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.analysis_types import Box, Emotion, Face, FaceAttributes, Landmark, Pose
from core.recognizers.local import age_gender, ssd
from core.recognizers.local.model_files import (
    EMOTION,
    FACE_DETECTOR_FULL,
    FACE_DETECTOR_SHORT,
    FACE_MESH,
    ModelFile,
    ModelStore,
)

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
EMOTION_SIZE = 64
# FER-2013's classes, in the order of the model's output.
EMOTIONS = ("ANGRY", "DISGUSTED", "FEAR", "HAPPY", "SAD", "SURPRISED", "CALM")
SMILE_THRESHOLD = 0.5
MOUTH_OPEN_RATIO = 0.04  # inner-lip gap / face height
EYES_OPEN_RATIO = 0.18  # lid gap / eye width

# Face mesh indices (MediaPipe canonical face model). "Left"/"right" below are as seen in the photo.
_EYE_LEFT = (33, 133, 159, 145)  # outer corner, inner corner, upper lid, lower lid
_EYE_RIGHT = (263, 362, 386, 374)
_NOSE_TIP = 1
_MOUTH_LEFT, _MOUTH_RIGHT = 61, 291
_LIP_UPPER, _LIP_LOWER = 13, 14
_FOREHEAD, _CHIN = 10, 152
# The mesh points that stand for a 68-point landmarker's eyebrows and jaw line (ear to ear under
# the chin): their box is the one face-api.js cuts out for its age and gender network.
_BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
_JAW: tuple[int, ...] = (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152)
_JAW += (377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356)
_AGE_POINTS = _BROWS + _JAW


@dataclass(frozen=True)
class _Spec:
    model: ModelFile
    size: int
    strides: tuple[int, ...]
    per_layer: int


_SHORT = _Spec(FACE_DETECTOR_SHORT, 128, (8, 16, 16, 16), 2)
_FULL = _Spec(FACE_DETECTOR_FULL, 192, (4,), 1)


def detect_faces(image: Image.Image, store: ModelStore, *, attributes: bool = True) -> tuple[Face, ...]:
    """Every face in the photo that the mesh confirms, best first, with landmarks and attributes."""
    faces = []
    for index, detection in enumerate(face_candidates(image, store)):
        x0, y0, x1, y1 = detection.box
        box = Box.clamped(x0, y0, x1 - x0, y1 - y0)
        if box.width <= 0 or box.height <= 0:
            continue
        if index < MAX_FACES:
            face = _describe(image, detection, box, store, with_attributes=attributes)
            if face is not None:
                faces.append(face)
        elif detection.score >= CROWD_SCORE:
            faces.append(Face(box=box, confidence=detection.score, landmarks=_detector_landmarks(detection)))
    return tuple(faces)


def face_candidates(image: Image.Image, store: ModelStore) -> list[ssd.Detection]:
    """What the two BlazeFace models see, merged, best first: candidates, not yet faces.

    Both models look at the whole photo scaled to their input (128 and 192 px), where a face a
    few percent of a group photo's width is a handful of pixels. So a photo large enough is also
    read by the full-range model in four overlapping quarter tiles (`_tiles`), each at 192 px:
    the same model, closer. The mesh still has to confirm every candidate.
    """
    found: list[ssd.Detection] = []
    for spec in (_SHORT, _FULL):
        found.extend(_detect(image, store, spec))
    width, height = image.size
    for tile in _tiles(width, height):
        found.extend(_tile_detections(image, store, tile))
    return sorted(ssd.weighted_nms(found, MERGE_IOU), key=lambda d: d.score, reverse=True)


def _detect(image: Image.Image, store: ModelStore, spec: _Spec) -> list[ssd.Detection]:
    model = store.load(spec.model, ssd.TfliteModel)
    frame = ssd.letterbox(image, spec.size)
    boxes, scores = model.run(frame.pixels)
    anchors = ssd.anchor_centres(spec.size, spec.strides, spec.per_layer)
    return ssd.decode(boxes, scores, anchors, spec.size, frame, MIN_SCORE)


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
    image: Image.Image, store: ModelStore, tile: tuple[int, int, int, int]
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
    for d in _detect(image.crop(tile), store, _FULL):
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
        Landmark(name, _clip(float(x)), _clip(float(y)))
        for name, (x, y) in zip(names, detection.keypoints[:4], strict=True)
    )


def _describe(
    image: Image.Image, detection: ssd.Detection, box: Box, store: ModelStore, *, with_attributes: bool
) -> Face | None:
    """Face mesh and emotion for one detection, or None when the mesh does not confirm a face there."""
    width, height = image.size
    mesh = store.load(FACE_MESH, ssd.TfliteModel)
    # Upright square crop around the face, 1.5x its box, turned so the eyes are level (as MediaPipe).
    eye_a, eye_b = detection.keypoints[0] * (width, height), detection.keypoints[1] * (width, height)
    angle = math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])
    x0, y0, x1, y1 = detection.box
    centre = ((x0 + x1) / 2 * width, (y0 + y1) / 2 * height)
    side = max((x1 - x0) * width, (y1 - y0) * height) * 1.5
    crop, to_photo = _rotated_crop(image, centre, side, angle, MESH_SIZE)
    outputs = mesh.run(np.asarray(crop, dtype=np.float32) / 255.0)
    points = outputs[0].reshape(-1, 3)
    presence = 1.0 / (1.0 + math.exp(-float(np.clip(outputs[1].reshape(-1)[0], -100, 100))))
    photo_xy = to_photo(points[:, :2])
    ratios = photo_xy / (width, height)
    if presence < PRESENCE or not _mesh_fits(ratios, detection.box):
        return None
    landmarks = _mesh_landmarks(ratios)
    if not with_attributes:
        return Face(box=box, confidence=detection.score, landmarks=landmarks)
    emotions = _emotions(image, box, store)
    estimate = age_gender.estimate(image, photo_xy[list(_AGE_POINTS)], store)
    attributes = _attributes(
        emotions,
        estimate=estimate,
        mouth_open=_gap(points, _LIP_UPPER, _LIP_LOWER) / max(_gap(points, _FOREHEAD, _CHIN), 1e-6)
        > MOUTH_OPEN_RATIO,
        eyes_open=_eyes_open(points),
        pose=_pose(points, angle),
    )
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
    crop = image.convert("RGB").transform(
        (size, size), Image.Transform.AFFINE, (cos, -sin, cx, sin, cos, cy), Image.Resampling.BILINEAR
    )

    def to_photo(uv: np.ndarray) -> np.ndarray:
        u, v = uv[:, 0], uv[:, 1]
        return np.stack([cos * u - sin * v + cx, sin * u + cos * v + cy], axis=1)

    return crop, to_photo


def _mesh_landmarks(ratios: np.ndarray) -> tuple[Landmark, ...]:
    """The Rekognition-style landmarks the annotation draws, from the 468 mesh points."""

    def mean(*indices: int) -> tuple[float, float]:
        xy = ratios[list(indices)].mean(axis=0)
        return _clip(float(xy[0])), _clip(float(xy[1]))

    named = {
        "eyeLeft": mean(*_EYE_LEFT),
        "eyeRight": mean(*_EYE_RIGHT),
        "nose": mean(_NOSE_TIP),
        "mouthLeft": mean(_MOUTH_LEFT),
        "mouthRight": mean(_MOUTH_RIGHT),
        "mouthUp": mean(0),
        "mouthDown": mean(17),
        "chinBottom": mean(_CHIN),
    }
    return tuple(Landmark(name, x, y) for name, (x, y) in named.items())


def _emotions(image: Image.Image, box: Box, store: ModelStore) -> tuple[Emotion, ...]:
    """FER-2013 emotions on the grey face box, as the `fer` package feeds its model (values -1..1)."""
    model = store.load(EMOTION, ssd.TfliteModel)
    x0, y0, x1, y1 = box.to_pixels(*image.size)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return ()
    crop = (
        image.crop((x0, y0, x1, y1))
        .convert("L")
        .resize((EMOTION_SIZE, EMOTION_SIZE), Image.Resampling.BILINEAR)
    )
    pixels = (np.asarray(crop, dtype=np.float32) / 255.0 - 0.5) * 2.0
    scores = model.run(pixels[:, :, np.newaxis])[0].reshape(-1)
    if not np.all(np.isfinite(scores)):
        return ()
    total = float(scores.sum()) or 1.0
    ranked = sorted(zip(EMOTIONS, scores, strict=True), key=lambda pair: float(pair[1]), reverse=True)
    return tuple(Emotion(name, _clip(float(score) / total)) for name, score in ranked)


def _attributes(
    emotions: tuple[Emotion, ...],
    *,
    estimate: age_gender.AgeGender | None = None,
    mouth_open: bool | None = None,
    eyes_open: bool | None = None,
    pose: Pose | None = None,
) -> FaceAttributes:
    happy = next((e.confidence for e in emotions if e.name == "HAPPY"), None)
    age_low, age_high = age_gender.age_range(estimate.age) if estimate is not None else (None, None)
    return FaceAttributes(
        age_low=age_low,
        age_high=age_high,
        gender=estimate.gender if estimate is not None else None,
        smiling=None if happy is None else happy >= SMILE_THRESHOLD,
        mouth_open=mouth_open,
        eyes_open=eyes_open,
        emotions=emotions,
        pose=pose,
    )


def _gap(points: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(points[a, :2] - points[b, :2]))


def _eyes_open(points: np.ndarray) -> bool:
    """Both eyes' lid gap against their width (the "eye aspect ratio")."""
    ratios = [
        _gap(points, upper, lower) / max(_gap(points, outer, inner), 1e-6)
        for outer, inner, upper, lower in (_EYE_LEFT, _EYE_RIGHT)
    ]
    return sum(ratios) / 2 > EYES_OPEN_RATIO


def _pose(points: np.ndarray, crop_angle: float) -> Pose:
    """Head pose in degrees from the mesh's 3-D points: roll from the eye line, yaw and pitch from depth."""
    across = points[_EYE_RIGHT[0]] - points[_EYE_LEFT[0]]
    down = points[_CHIN] - points[_FOREHEAD]
    roll = math.degrees(math.atan2(float(across[1]), float(across[0])) + crop_angle)
    yaw = math.degrees(math.atan2(float(across[2]), float(math.hypot(across[0], across[1]))))
    pitch = math.degrees(math.atan2(float(-down[2]), float(math.hypot(down[0], down[1]))))
    return Pose(roll=round(_wrap(roll), 1), yaw=round(yaw, 1), pitch=round(pitch, 1))


def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)
