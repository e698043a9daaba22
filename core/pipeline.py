"""From photo bytes to an analysis and an annotated image, in three steps callers can schedule.

The steps are split by cost so the application can place them: `prepare_photo` and `render` are
CPU-bound and synchronous (a worker process pool runs them), `Recognizer.analyze` is I/O-bound and
async. `analyze_photo` chains them for simple callers such as the CLI.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.analysis_types import Analysis, Feature, Photo, PreparedPhoto
from core.annotate import annotate, encode_annotated
from core.limits import ImageLimits
from core.prepare import prepare_photo
from core.recognizers.base import Recognizer


@dataclass(frozen=True)
class PhotoResult:
    """What one analysed photo produced: the prepared image, what was found, and the annotated JPEG."""

    prepared: PreparedPhoto
    analysis: Analysis
    annotated_jpeg: bytes


def render(prepared: PreparedPhoto, analysis: Analysis, quality: int = 85) -> bytes:
    """Draw the analysis on exactly the image the recognizer saw and encode it without metadata."""
    return encode_annotated(annotate(prepared.image, analysis), quality=quality)


async def analyze_photo(
    photo: Photo,
    recognizer: Recognizer,
    features: frozenset[Feature],
    limits: ImageLimits,
) -> PhotoResult:
    """Prepare, recognise and render one photo, keeping the event loop free during CPU work.

    Only the features the backend can run are asked for, so a request for text on a backend
    without OCR is not an error: the summary says what the backend cannot do.
    """
    prepared = await asyncio.to_thread(prepare_photo, photo, limits)
    analysis = await recognizer.analyze(prepared, features & recognizer.capabilities)
    annotated = await asyncio.to_thread(render, prepared, analysis, limits.jpeg_quality)
    return PhotoResult(prepared=prepared, analysis=analysis, annotated_jpeg=annotated)
