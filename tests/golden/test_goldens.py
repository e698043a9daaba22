"""The engine against its golden outputs: what the classifier and the age and gender network answered
before they moved from numpy to ONNX Runtime, and what face-api.js itself answers.

Fixtures (written by `scripts/record_goldens.py` from the engine as it was, and by
`scripts/faceapi_goldens.cjs` from face-api.js in Node) hold outputs, photo keys and hashes only.
An input is compared only when it is present and byte for byte the one recorded (the generated
ones always are), so a bare checkout still runs the generated cases.

Tolerances (float32 on another runtime reorders sums; nothing else may change):
- classifier logits within `LOGIT_TOLERANCE` of each stored logit; the same top-5 classes in the
  same order, each probability within `PROBABILITY_TOLERANCE`; the objects map's per-cell top
  class the same wherever the recorded top logit led the runner-up clearly;
- age within `AGE_TOLERANCE` years and male probability within `GENDER_TOLERANCE`, against both
  the recorded engine and face-api.js;
- the whole recognizer: the same faces in any order (box edges within `BOX_TOLERANCE` of the
  photo's side, the same age range and gender) and the same objects and top-5 labels (names;
  boxes and confidences within `BOX_TOLERANCE` and `CONFIDENCE_TOLERANCE`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.analysis_types import Feature
from core.recognizers.local import LocalRecognizer, age_gender, classifier, objects
from core.recognizers.local.inference import ModelRegistry
from tests.golden import inputs

LOGIT_TOLERANCE = 1e-3
PROBABILITY_TOLERANCE = 1e-4
AGE_TOLERANCE = 0.05
GENDER_TOLERANCE = 0.005
BOX_TOLERANCE = 0.005
CONFIDENCE_TOLERANCE = 0.01
CELL_MARGIN = 0.05  # a recorded cell whose top two logits were closer than this may flip

HERE = Path(__file__).parent
CELL_PHOTOS = ("shared:skimage/chelsea.png", "shared:skimage/rocket.jpg", "eval:sklearn/china.jpg")


def _json(name: str) -> Any:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


CLASSIFIED: dict[str, Any] = _json("classifier.json")
FACES: list[dict[str, Any]] = _json("age_gender.json")
FACE_API: dict[str, Any] = _json("age_gender_faceapi.json")["crops"]
WHOLE: dict[str, Any] = _json("recognizer.json")
GENERATED = inputs.generated_images()


def npz_name(kind: str, key: str) -> str:
    return f"{kind}.{key.replace(':', '.').replace('/', '.')}"


def image_of(key: str, photo_sha256: str | None) -> Image.Image:
    """The recorded input, or a skip when it is absent or not the file it was recorded on."""
    if key in GENERATED:
        return GENERATED[key]
    path = inputs.path_of(key)
    if not path.is_file():
        pytest.skip(f"{key} is not here (fetch the eval photos / ../shared/data)")
    if inputs.sha256_file(path) != photo_sha256:
        pytest.skip(f"{key} is not the file the goldens were recorded on")
    return inputs.prepared(path)


@pytest.fixture(scope="module")
def stored() -> dict[str, np.ndarray]:
    with np.load(HERE / "classifier.npz", allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize("key", sorted(CLASSIFIED))
def test_classifier_matches_its_golden_logits_and_top5(
    key: str, local_store: ModelRegistry, stored: dict[str, np.ndarray]
) -> None:
    golden = CLASSIFIED[key]
    pixels = classifier.model_input(image_of(key, golden["photo_sha256"]))
    assert inputs.sha256_array(pixels) == golden["input_sha256"], "the crop changed, not the network"
    logits = classifier.logits(pixels, local_store)
    if golden["logits_stored"]:
        np.testing.assert_allclose(logits, stored[npz_name("logits", key)], rtol=0, atol=LOGIT_TOLERANCE)
    shifted = np.exp(logits.astype(np.float64) - logits.max())
    probabilities = shifted / shifted.sum()
    top = np.argsort(-probabilities, kind="stable")[:5]
    assert [int(c) for c in top] == [c for c, _ in golden["top5"]]
    assert probabilities[top] == pytest.approx([p for _, p in golden["top5"]], abs=PROBABILITY_TOLERANCE)


@pytest.mark.parametrize("key", [*sorted(k for k in CLASSIFIED if k.startswith("generated:")), *CELL_PHOTOS])
def test_objects_map_matches_its_golden_cells(
    key: str, local_store: ModelRegistry, stored: dict[str, np.ndarray]
) -> None:
    cells = classifier.cell_logits(
        objects.map_input(image_of(key, CLASSIFIED[key]["photo_sha256"])), local_store
    )
    recorded_class = stored[npz_name("cell_class", key)]
    recorded_logit = stored[npz_name("cell_logit", key)]
    assert cells.shape[:2] == recorded_class.shape
    np.testing.assert_allclose(cells.max(axis=2), recorded_logit, rtol=0, atol=LOGIT_TOLERANCE)
    ordered = np.sort(cells, axis=2)
    clear = ordered[:, :, -1] - ordered[:, :, -2] > CELL_MARGIN
    assert clear.mean() > 0.5, "most cells have a clear winner, or this compares nothing"
    assert np.array_equal(cells.argmax(axis=2)[clear], recorded_class[clear])


def _face_input(face: dict[str, Any]) -> np.ndarray:
    if face["key"] in inputs.generated_faces():
        return inputs.generated_faces()[face["key"]]
    crop = age_gender.model_input(image_of(face["key"], face["photo_sha256"]), tuple(face["box"]))
    assert crop is not None
    return crop


@pytest.mark.parametrize("face", FACES, ids=[f"{f['key']}@{f['input_sha256'][:8]}" for f in FACES])
def test_age_and_gender_match_the_golden_and_face_api_js(
    face: dict[str, Any], local_store: ModelRegistry
) -> None:
    crop = _face_input(face)
    assert inputs.sha256_array(crop) == face["input_sha256"], "the crop changed, not the network"
    estimate = age_gender.predict(crop, local_store)
    theirs = FACE_API[face["input_sha256"]]
    for reference in (face, theirs):
        assert estimate.age == pytest.approx(reference["age"], abs=AGE_TOLERANCE)
        assert estimate.male_probability == pytest.approx(reference["male_probability"], abs=GENDER_TOLERANCE)


def test_the_recorded_engine_agreed_with_face_api_js() -> None:
    """The fixture is the model's own answer: the numpy network the goldens came from matched it."""
    assert {f["input_sha256"] for f in FACES} <= set(FACE_API)
    for face in FACES:
        theirs = FACE_API[face["input_sha256"]]
        assert face["age"] == pytest.approx(theirs["age"], abs=AGE_TOLERANCE)
        assert face["male_probability"] == pytest.approx(theirs["male_probability"], abs=GENDER_TOLERANCE)


@pytest.fixture(scope="module")
def recognizer(local_store: ModelRegistry) -> Any:
    engine = LocalRecognizer(models_dir=local_store.directory)
    yield engine
    engine.close()


def _boxes_close(ours: list[float] | None, golden: list[float] | None) -> bool:
    if ours is None or golden is None:
        return ours is golden
    return bool(np.allclose(ours, golden, atol=BOX_TOLERANCE))


@pytest.mark.parametrize("key", sorted(WHOLE))
def test_recognizer_faces_objects_and_labels_match_the_goldens(key: str, recognizer: LocalRecognizer) -> None:
    golden = WHOLE[key]
    analysis = recognizer.analyze_image(
        image_of(key, golden["photo_sha256"]), frozenset({Feature.FACES, Feature.LABELS})
    )
    assert len(analysis.faces) == len(golden["faces"])
    # Paired by position: the order faces are listed in is presentation (reading order since
    # e9441da; best first when recorded), not what the models answered.
    faces = sorted(analysis.faces, key=lambda f: (f.box.left, f.box.top))
    wanted = sorted(golden["faces"], key=lambda f: (f["box"][0], f["box"][1]))
    for face, want in zip(faces, wanted, strict=True):
        assert _boxes_close([face.box.left, face.box.top, face.box.width, face.box.height], want["box"])
        assert [face.attributes.age_low, face.attributes.age_high] == want["age"]
        assert face.attributes.gender == want["gender"]
    assert [o.name for o in analysis.objects] == [o["name"] for o in golden["objects"]]
    for thing, want in zip(analysis.objects, golden["objects"], strict=True):
        box = [thing.box.left, thing.box.top, thing.box.width, thing.box.height] if thing.box else None
        assert _boxes_close(box, want["box"]), thing.name
        assert thing.confidence == pytest.approx(want["confidence"], abs=CONFIDENCE_TOLERANCE)
    assert [label.name for label in analysis.labels[:5]] == [name for name, _ in golden["labels"]]
    got = [label.confidence for label in analysis.labels[:5]]
    assert got == pytest.approx([c for _, c in golden["labels"]], abs=CONFIDENCE_TOLERANCE)
