"""Age and gender of a face, from face-api.js's AgeGenderNet run by ONNX Runtime.

The network (Vincent Mühler's face-api.js, MIT; the weights ship in the `@vladmandic/face-api`
npm tarball, MIT, a maintained fork) is a small Xception with two heads: the age in years and
the two gender probabilities. It takes a 112 px face, padded to a square with black as
face-api.js does, and costs a few milliseconds. The install step turns its TF.js files into an
ONNX graph (`core.model_build.age_gender`, which describes the layers); that graph does face-api.js's
normalisation itself, so this module only cuts the face out and reads the answer. The golden
tests hold the graph to what face-api.js itself answers on real crops (`tests/golden`).

Rekognition answers an age range; a single regression says less, so the range is the estimate
plus or minus `AGE_MARGIN` years or `AGE_MARGIN_SHARE` of it, whichever is wider (the model's
error grows with age), and gender is given only when the model is at least `GENDER_MIN` sure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.recognizers.local.inference import ModelRegistry, ModelSpec, OnnxModel
from core.recognizers.local.model_files import AGE_GENDER

__all__ = [
    "AGE_GENDER_MODEL",
    "AgeGender",
    "age_range",
    "estimate",
    "face_crop_box",
    "model_input",
    "predict",
]

INPUT_SIZE = 112
AGE_MARGIN = 4.0
AGE_MARGIN_SHARE = 0.15
GENDER_MIN = 0.6
BOX_PADDING = 0.2  # face-api.js pads the landmarks' box by a fifth of its size before cutting it out

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AgeGender:
    """One face's estimate: age in years, and the probability that the face is a man's."""

    age: float
    male_probability: float

    @property
    def gender(self) -> str | None:
        """Rekognition's words, or None when the model is not sure enough to say."""
        if self.male_probability >= GENDER_MIN:
            return "Male"
        if self.male_probability <= 1.0 - GENDER_MIN:
            return "Female"
        return None


def age_range(age: float) -> tuple[int, int]:
    """A Rekognition-like (low, high) range around a point estimate, never below 0."""
    margin = max(AGE_MARGIN, AGE_MARGIN_SHARE * age)
    return max(0, math.floor(age - margin)), max(1, math.ceil(age + margin))


def face_crop_box(
    points: npt.NDArray[np.floating], width: int, height: int
) -> tuple[float, float, float, float]:
    """The pixel box face-api.js would cut out: the landmarks' box grown by `BOX_PADDING`, in the photo."""
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    pad_x, pad_y = (right - left) * BOX_PADDING / 2, (bottom - top) * BOX_PADDING / 2
    return (
        max(float(left - pad_x), 0.0),
        max(float(top - pad_y), 0.0),
        min(float(right + pad_x), float(width)),
        min(float(bottom + pad_y), float(height)),
    )


def model_input(image: Image.Image, box: tuple[float, float, float, float]) -> Array | None:
    """The face cut out, padded to a centred square with black and scaled to 112 px (face-api.js's way)."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = image.crop((round(x0), round(y0), round(x1), round(y1))).convert("RGB")
    side = max(crop.size)
    square = Image.new("RGB", (side, side))
    square.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
    scaled = square.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(scaled, dtype=np.float32)


AGE_GENDER_MODEL = ModelSpec("age-gender", (AGE_GENDER,), OnnxModel)


def predict(face: Array, models: ModelRegistry) -> AgeGender:
    """Age and gender of a (112, 112, 3) RGB face, values 0..255."""
    if face.shape != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"expected a ({INPUT_SIZE}, {INPUT_SIZE}, 3) face, got {face.shape}")
    age, gender = models.get(AGE_GENDER_MODEL).predict(
        [np.ascontiguousarray(face[np.newaxis], dtype=np.float32)]
    )
    return AgeGender(age=max(float(age[0, 0]), 0.0), male_probability=float(gender[0, 0]))


def estimate(image: Image.Image, points: npt.NDArray[np.floating], models: ModelRegistry) -> AgeGender | None:
    """Age and gender for the face whose landmarks (pixels of `image`) are `points`; None if too small."""
    face = model_input(image, face_crop_box(points, *image.size))
    if face is None:
        return None
    return predict(face, models)
