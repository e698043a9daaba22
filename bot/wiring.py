"""The composition root: the one place that turns settings into working parts.

Entry points call these builders and pass the results down; nothing else constructs backends
or reads settings, so tests can build any part with explicit values instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import BackendChoice, Settings
from core.recognizers.base import NullRecognizer, Recognizer
from core.recognizers.rekognition import RekognitionRecognizer, aws_credentials_available


@dataclass(frozen=True)
class RecognizerChoice:
    """The recognizer to use and, when `auto` had to settle for less, a note saying why."""

    recognizer: Recognizer
    note: str | None = None


NO_BACKEND_NOTE = (
    "No recognizer is configured, so only EXIF is read and the photo prepared. "
    "Set AWS credentials (e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and AWS_REGION) "
    "to use Amazon Rekognition."
)


def build_rekognition(settings: Settings) -> RekognitionRecognizer:
    """Rekognition configured from the settings; credentials come from the standard AWS chain."""
    return RekognitionRecognizer(
        region=settings.rekognition_region,
        endpoint_url=settings.rekognition_endpoint_url,
        max_attempts=settings.rekognition_max_attempts,
        connect_timeout=settings.rekognition_connect_timeout,
        read_timeout=settings.rekognition_read_timeout,
        min_confidence=settings.rekognition_min_confidence,
        celebrities=settings.rekognition_celebrities,
    )


def build_recognizer(settings: Settings, choice: BackendChoice | None = None) -> RecognizerChoice:
    """Pick the backend: an explicit choice wins; `auto` uses Rekognition only when AWS credentials exist.

    `auto` never fails: a fresh install without a cloud account still prepares photos and reads EXIF.
    """
    wanted = choice or settings.backend
    if wanted == "none":
        return RecognizerChoice(NullRecognizer())
    if wanted == "rekognition" or aws_credentials_available():
        return RecognizerChoice(build_rekognition(settings))
    return RecognizerChoice(NullRecognizer(), NO_BACKEND_NOTE)
