"""Two photos on two threads never wait for each other on a model (issue 22).

Every model run of the real pipeline (each LiteRT `invoke`, each ONNX Runtime `run`, RapidOCR's
included) is made to wait inside the runtime until the other photo's thread is inside a model run
too. Both threads analyse the same photo, so they make the same runs in the same order and meet
at each one. If anything held a lock around a model run (one interpreter per model, one lock
around the text reader), the first thread would wait inside the run while holding it, the second
could never arrive, and the meeting would time out.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from core.analysis_types import Analysis, Feature
from core.recognizers.local import LocalRecognizer
from core.recognizers.local.inference import ModelRegistry

WAIT_S = 30.0  # generous: the machine is shared and a 1920 px photo takes a while between runs
SHARED_FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"


def _photo() -> Image.Image:
    """A real group photo when the shared data is there (faces reach the mesh and emotion models)."""
    candidates = sorted(SHARED_FACES.rglob("*.jpg")) if SHARED_FACES.is_dir() else []
    if candidates:
        image = Image.open(candidates[0]).convert("RGB")
        image.thumbnail((1920, 1920))
        return image
    image = Image.new("RGB", (1280, 720), (200, 220, 235))
    ImageDraw.Draw(image).text((100, 300), "OPEN 9-17", fill="black", font_size=90)
    return image


def _meeting(original: Callable[..., Any], barrier: threading.Barrier) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return original(*args, **kwargs)

    return run


# The text is read on a thread of its own beside the other features, so the two sets run apart:
# in one set, a run could otherwise meet the same photo's other thread instead of the other photo.
@pytest.mark.parametrize(
    "every",
    [frozenset({Feature.FACES, Feature.LABELS, Feature.MODERATION}), frozenset({Feature.TEXT})],
    ids=["faces-labels-moderation", "text"],
)
def test_two_photos_run_every_model_at_the_same_time(
    local_store: ModelRegistry, monkeypatch: pytest.MonkeyPatch, every: frozenset[Feature]
) -> None:
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    sessions = pytest.importorskip("onnxruntime.capi.onnxruntime_inference_collection")
    recognizer = LocalRecognizer(models_dir=local_store.directory, concurrent_photos=2)
    photo = _photo()
    alone = recognizer.analyze_image(photo, every)  # loads every model outside the meeting
    if SHARED_FACES.is_dir() and Feature.FACES in every:
        assert alone.faces, "precondition: faces reach the mesh, emotion and age models"
    barrier = threading.Barrier(2, timeout=WAIT_S)
    monkeypatch.setattr(interpreter.Interpreter, "invoke", _meeting(interpreter.Interpreter.invoke, barrier))
    monkeypatch.setattr(sessions.Session, "run", _meeting(sessions.Session.run, barrier))
    results: list[Analysis] = []
    errors: list[BaseException] = []

    def analyse() -> None:
        try:
            results.append(recognizer.analyze_image(photo, every))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=analyse) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recognizer.close()
    assert errors == []
    assert not barrier.broken, "a model run waited for the other photo's run to finish"
    # a failed model run is a feature error, not an exception: both answers are the lone one
    assert results == [alone, alone]


def _text_thread(monkeypatch: pytest.MonkeyPatch, cores: set[int]) -> str:
    """The name of the thread that read a photo's text, on a machine with `cores` (no models needed)."""
    import core.recognizers.local as local

    seen: list[str] = []

    def read_text(image: Image.Image, models: ModelRegistry) -> tuple[()]:
        seen.append(threading.current_thread().name)
        return ()

    monkeypatch.setattr(local, "read_text", read_text)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores, raising=False)
    recognizer = LocalRecognizer(models_dir=Path("/nonexistent"))
    recognizer.analyze_image(Image.new("RGB", (64, 64)), frozenset({Feature.TEXT}))
    recognizer.close()
    return seen[0]


def test_a_photo_alone_reads_its_text_beside_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _text_thread(monkeypatch, {0, 1}).startswith("local-text")


def test_with_no_core_to_spare_the_text_is_read_in_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _text_thread(monkeypatch, {0}) == threading.current_thread().name
