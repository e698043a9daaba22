"""Record the embedded recognizer's golden outputs: what today's engine answers, for tests to hold it to.

    git worktree add /tmp/golden-base HEAD        # a pristine copy of the engine to record from
    PYTHONPATH=/tmp/golden-base .venv/bin/python scripts/record_goldens.py [--crops DIR]

Before a model changes runtime (numpy -> ONNX Runtime, one LiteRT interpreter per thread) its
answers are written down here, on the inputs `tests/golden/inputs.py` rebuilds: the classifier's
logits and top-5 (and the objects finder's per-cell top class), the age and gender network's age
and male probability for each face crop, and the whole recognizer's faces (box, age range,
gender) and objects (name, box) per photo. `tests/golden/test_goldens.py` compares the current
engine against them with stated tolerances. Only outputs, keys and hashes are written, never a
photo. `--crops DIR` also writes each 112 px face crop there (raw RGB bytes, named by hash) for
`scripts/faceapi_goldens.mjs`, which asks face-api.js itself about the same crops.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parents[1]
GOLDEN = HERE / "tests" / "golden"

# Photos whose 1000 logits are stored in full (the others keep their top-5): a few KB each.
LOGIT_PHOTOS = (
    "shared:skimage/astronaut.png",
    "shared:skimage/chelsea.png",
    "shared:skimage/rocket.jpg",
    "shared:pillow/hopper.jpg",
    "eval:sklearn/china.jpg",
    "eval:imgaug/quokka.jpg",
    "eval:opencv/fruits.jpg",
    "eval:opencv/messi5.jpg",
    "eval:matplotlib/grace_hopper.jpg",
    "eval:insightface/t1.jpg",
    "eval:opencv/butterfly.jpg",
    "eval:opencv/squirrel_cls.jpg",
)
# Photos whose objects-finder map (per-cell top class and its logit) is stored.
CELL_PHOTOS = ("shared:skimage/chelsea.png", "shared:skimage/rocket.jpg", "eval:sklearn/china.jpg")


def _inputs() -> Any:
    """tests/golden/inputs.py by file path (the engine on sys.path may be another checkout's)."""
    spec = importlib.util.spec_from_file_location("golden_inputs", GOLDEN / "inputs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def npz_name(kind: str, key: str) -> str:
    return f"{kind}.{key.replace(':', '.').replace('/', '.')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=GOLDEN, help="where the fixtures go")
    parser.add_argument("--crops", type=Path, default=None, help="also write the face crops here")
    args = parser.parse_args(argv)
    inputs = _inputs()

    # The engine as it was before the ONNX switch (75140f2: a numpy classifier, a ModelStore), which
    # this checkout no longer has: imported by name, so it is typed as Any here.
    engine: Any = importlib.import_module("core.recognizers.local")
    age_gender: Any = importlib.import_module("core.recognizers.local.age_gender")
    classifier: Any = importlib.import_module("core.recognizers.local.classifier")
    objects: Any = importlib.import_module("core.recognizers.local.objects")
    from_npz: Any = importlib.import_module("core.recognizers.local.effnet").from_npz
    CLASSIFIER: Any = importlib.import_module("core.recognizers.local.model_files").CLASSIFIER
    Feature: Any = importlib.import_module("core.analysis_types").Feature
    LocalRecognizer = engine.LocalRecognizer

    recognizer = LocalRecognizer()
    store = recognizer._store  # the models the recognizer loaded
    network = store.load(CLASSIFIER, from_npz)
    faces_seen: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    original = age_gender.estimate

    def recording_estimate(image: Any, points: Any, store: Any) -> Any:
        box = age_gender.face_crop_box(points, *image.size)
        crop = age_gender.model_input(image, box)
        result = original(image, points, store)
        if crop is not None and result is not None:
            faces_seen.append({
                "key": current["key"], "photo_sha256": current["sha256"], "box": [float(v) for v in box],
                "input_sha256": inputs.sha256_array(crop), "age": result.age,
                "male_probability": result.male_probability, "crop": crop,
            })  # fmt: skip
        return result

    age_gender.estimate = recording_estimate
    arrays: dict[str, np.ndarray] = {}
    classified: dict[str, Any] = {}
    whole: dict[str, Any] = {}
    photos = [(key, None, image) for key, image in inputs.generated_images().items()]
    photos += [(key, path, inputs.prepared(path)) for key, path in inputs.photo_paths()]
    for key, path, image in photos:
        sha = inputs.sha256_file(path) if path is not None else None
        current.update(key=key, sha256=sha)
        pixels = classifier.model_input(image)
        logits = network.logits(pixels)
        probabilities = network.probabilities(pixels)
        top = np.argsort(-probabilities, kind="stable")[:5]
        classified[key] = {
            "photo_sha256": sha, "input_sha256": inputs.sha256_array(pixels),
            "top5": [[int(c), round(float(probabilities[c]), 6)] for c in top],
            "logits_stored": key.startswith("generated:") or key in LOGIT_PHOTOS,
        }  # fmt: skip
        if classified[key]["logits_stored"]:
            arrays[npz_name("logits", key)] = logits.astype(np.float32)
        if key.startswith("generated:") or key in CELL_PHOTOS:
            cells = network.cell_logits(network.features(objects.map_input(image)))
            arrays[npz_name("cell_class", key)] = cells.argmax(axis=2).astype(np.int16)
            arrays[npz_name("cell_logit", key)] = cells.max(axis=2).astype(np.float32)
        analysis = recognizer.analyze_image(image, frozenset({Feature.FACES, Feature.LABELS}))
        whole[key] = {
            "photo_sha256": sha,
            "faces": [
                {"box": [f.box.left, f.box.top, f.box.width, f.box.height], "confidence": f.confidence,
                 "age": [f.attributes.age_low, f.attributes.age_high], "gender": f.attributes.gender}
                for f in analysis.faces
            ],
            "objects": [
                {"name": o.name, "confidence": o.confidence,
                 "box": [o.box.left, o.box.top, o.box.width, o.box.height] if o.box else None}
                for o in analysis.objects
            ],
            "labels": [[label.name, label.confidence] for label in analysis.labels[:5]],
        }  # fmt: skip
        print(f"{key}: {len(analysis.faces)} faces, {len(analysis.objects)} objects", file=sys.stderr)
    recognizer.close()
    for key, face in inputs.generated_faces().items():
        estimate = age_gender._network(store).predict(face)  # the bare network
        faces_seen.append({
            "key": key, "photo_sha256": None, "box": None, "input_sha256": inputs.sha256_array(face),
            "age": estimate.age, "male_probability": estimate.male_probability, "crop": face,
        })  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "classifier.npz", allow_pickle=False, **arrays)
    _write(args.out / "classifier.json", classified)
    _write(args.out / "recognizer.json", whole)
    _write(args.out / "age_gender.json", [{k: v for k, v in f.items() if k != "crop"} for f in faces_seen])
    if args.crops is not None:
        args.crops.mkdir(parents=True, exist_ok=True)
        for face in faces_seen:
            (args.crops / f"{face['input_sha256']}.rgb").write_bytes(face["crop"].astype(np.uint8).tobytes())
        names = sorted({face["input_sha256"] for face in faces_seen})
        _write(args.crops / "index.json", names)
    print(f"{len(classified)} inputs, {len(faces_seen)} faces recorded in {args.out}", file=sys.stderr)
    return 0


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.append(str(HERE))
    raise SystemExit(main())
