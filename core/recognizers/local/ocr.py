"""Text lines with boxes and confidence, read by RapidOCR's bundled PP-OCRv6 small models.

The models are the ones the `rapidocr` wheel ships, copied into the models folder and hash
checked like every other model, and handed to RapidOCR by path so it never looks for (or tries to
download) anything else. Photos are read in parallel by one engine (see `TextReader`).
Recognised strings are attacker controlled and go through `clean_text` before anyone sees them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.analysis_types import Box, TextLine
from core.recognizers.local.inference import InferenceModel, ModelRegistry, ModelSpec
from core.recognizers.local.model_files import TEXT_DETECTOR, TEXT_ORIENTATION, TEXT_RECOGNIZER
from core.recognizers.local.rgb import as_rgb
from core.untrusted_text import clean_text

MIN_CONFIDENCE = 0.5
MIN_CHARACTERS = 2  # single letters and digits read off textures were the only false lines seen
MAX_LINES = 100  # Rekognition's DetectText limit is 100 words; more is noise in a summary
# The detector's input long side. RapidOCR's default (short side at least 736) upscales a 1920 px
# photo to 1309x736+ and costs over a second here; capping the long side at 736 reads text lines
# down to about 1.5 % of the photo height and halves the time. Orientation (upside-down lines) is
# skipped: it is rare in photos and costs a model run per line.
DET_LONG_SIDE = 736


class TextReader(InferenceModel[Any, npt.NDArray[np.uint8], Any]):
    """RapidOCR's engine over the three verified model files, run by ONNX Runtime with `threads`.

    One engine serves every thread without a lock: its ONNX sessions are thread-safe, it builds
    them on first use under its own locks, and the only thing RapidOCR 3.10 writes during a call is
    the detector's `preprocess_op`, replaced by an identical object on every call (read in
    `rapidocr/ch_ppocr_det/main.py`). `predict` takes a BGR uint8 array and returns RapidOCR's
    result (boxes, texts, scores).
    """

    def _load(self, paths: tuple[Path, ...]) -> Any:
        from rapidocr import RapidOCR  # imported late: only this backend needs it

        det, rec, cls = paths
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        engine: Any = RapidOCR(
            params={
                "Global.log_level": "error",
                "Global.use_cls": False,
                "Det.limit_type": "max",
                "Det.limit_side_len": DET_LONG_SIDE,
                "Det.model_path": str(det),
                "Rec.model_path": str(rec),
                "Cls.model_path": str(cls),
                "EngineConfig.onnxruntime.intra_op_num_threads": self.options.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        return engine

    def _run(self, state: Any, inputs: npt.NDArray[np.uint8]) -> Any:
        return state(inputs)


READER = ModelSpec("rapidocr", (TEXT_DETECTOR, TEXT_RECOGNIZER, TEXT_ORIENTATION), TextReader)


def read_text(image: Image.Image, models: ModelRegistry) -> tuple[TextLine, ...]:
    """Every text line RapidOCR reads with at least MIN_CONFIDENCE, top to bottom."""
    pixels = np.asarray(as_rgb(image))[:, :, ::-1].copy()  # RapidOCR expects BGR arrays
    result = models.get(READER).predict(pixels)
    if result.boxes is None or result.txts is None or result.scores is None:
        return ()
    width, height = image.size
    lines = []
    for quad, raw, score in zip(result.boxes, result.txts, result.scores, strict=False):
        text = clean_text(str(raw))
        if text is None or float(score) < MIN_CONFIDENCE or sum(c.isalnum() for c in text) < MIN_CHARACTERS:
            continue
        xs, ys = np.asarray(quad)[:, 0], np.asarray(quad)[:, 1]
        x0, y0 = float(xs.min()) / width, float(ys.min()) / height
        box = Box.clamped(x0, y0, float(xs.max()) / width - x0, float(ys.max()) / height - y0)
        lines.append(TextLine(text, min(max(float(score), 0.0), 1.0), box))
    lines.sort(key=lambda line: (round(line.box.top, 2), line.box.left))
    return tuple(lines[:MAX_LINES])
